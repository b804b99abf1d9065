//! Gateways started from typed test configs, as `hookgate run` starts them.
//!
//! A [`TestConfig`] is built from values, not text: routes are JSON objects
//! (JSON is YAML) that a test adjusts by key, so no test depends on the
//! indentation of another's YAML.

use serde_json::{json, Value};

use super::*;

/// The standard test route: `fynapse` at `/webhooks/fynapse`, two secrets
/// (rotation), 5 minutes of tolerance, 8 MiB bodies.
pub fn fynapse_route(upstream_url: &str) -> Value {
    json!({
        "name": "fynapse",
        "path": "/webhooks/fynapse",
        "upstream": { "url": upstream_url, "connect_timeout": "1s", "timeout": "2s" },
        "verify": {
            "scheme": "fynapse",
            "secrets": [ { "value": "other-secret" }, { "value": SECRET } ],
            "tolerance": "5m"
        },
        "max_body": "8MiB"
    })
}

/// A whole test config.
#[derive(Clone, Debug)]
pub struct TestConfig {
    pub server: Value,
    pub dedupe: Value,
    pub routes: Vec<Value>,
}

impl TestConfig {
    /// Two threads on `127.0.0.1:port`, a 2 s body timeout, a small memory
    /// store, and no routes yet.
    pub fn new(port: u16) -> Self {
        TestConfig {
            server: json!({
                "listen": [format!("127.0.0.1:{port}")],
                "threads": 2,
                "body_timeout": "2s"
            }),
            dedupe: json!({ "ttl": "1h", "in_flight_timeout": "60s", "max_entries": 10000 }),
            routes: Vec::new(),
        }
    }

    /// With the standard fynapse route to `upstream_url`.
    pub fn fynapse(port: u16, upstream_url: &str) -> Self {
        Self::new(port).route(fynapse_route(upstream_url))
    }

    pub fn route(mut self, route: Value) -> Self {
        self.routes.push(route);
        self
    }

    /// Sets `key` of the first route (`"events"`, `"idempotency"`, …).
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.routes[0][key] = value;
        self
    }

    pub fn server_with(mut self, key: &str, value: Value) -> Self {
        self.server[key] = value;
        self
    }

    pub fn dedupe_with(mut self, key: &str, value: Value) -> Self {
        self.dedupe[key] = value;
        self
    }

    pub fn yaml(&self) -> String {
        let doc = json!({ "server": self.server, "dedupe": self.dedupe, "routes": self.routes });
        serde_json::to_string_pretty(&doc).unwrap()
    }
}

/// Parses a YAML fragment into a value, for tests that state their route
/// keys as YAML.
pub fn yaml_value(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The standard config, plus `route_extra` (YAML keys of the fynapse
/// route) and `more_routes` (a YAML list of routes).
pub fn config_yaml(port: u16, upstream_url: &str, route_extra: &str, more_routes: &str) -> String {
    extended(
        TestConfig::fynapse(port, upstream_url),
        route_extra,
        more_routes,
    )
    .yaml()
}

fn extended(mut c: TestConfig, route_extra: &str, more_routes: &str) -> TestConfig {
    if !route_extra.trim().is_empty() {
        let Value::Object(extra) = yaml_value(&dedent(route_extra)) else {
            panic!("route_extra is not a mapping: {route_extra}");
        };
        for (k, v) in extra {
            c.routes[0][k] = v;
        }
    }
    if !more_routes.trim().is_empty() {
        let Value::Array(more) = yaml_value(&dedent(more_routes)) else {
            panic!("more_routes is not a list: {more_routes}");
        };
        c.routes.extend(more);
    }
    c
}

/// `text` with its common leading indentation removed.
fn dedent(text: &str) -> String {
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| l.get(indent..).unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A gateway with a memory store sized by the config (as `hookgate run`
/// builds one).
pub fn start_gateway(yaml: &str) -> RunningGateway {
    let config = hookgate::config::from_yaml(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"));
    let d = &config.dedupe;
    let store = Arc::new(MemoryStore::new(d.max_entries, d.ttl, d.in_flight_timeout));
    let gateway = Arc::new(Gateway::new(&config, store));
    hookgate::server::spawn(&config, gateway).unwrap_or_else(|e| panic!("{e}"))
}

/// A gateway with the dedupe store its config asks for
/// (`Gateway::from_config`), as `hookgate run` builds it.
pub fn start_gateway_with_configured_store(yaml: &str) -> RunningGateway {
    let config = hookgate::config::from_yaml(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"));
    let gateway = Arc::new(Gateway::from_config(&config).unwrap_or_else(|e| panic!("{e}")));
    hookgate::server::spawn(&config, gateway).unwrap_or_else(|e| panic!("{e}"))
}

/// Gateway + receiver with the standard fynapse route and `route_extra`.
pub fn setup(route_extra: &str) -> (RunningGateway, Receiver) {
    let rx = Receiver::start();
    let gw = start_gateway(&config_yaml(
        free_port(),
        &rx.url("/hooks/balances"),
        route_extra,
        "",
    ));
    (gw, rx)
}

/// [`config_yaml`] with `dedupe` (the YAML lines of a `dedupe:` block) as
/// its `dedupe:` section.
pub fn config_yaml_with_dedupe(
    port: u16,
    upstream_url: &str,
    route_extra: &str,
    more_routes: &str,
    dedupe: &str,
) -> String {
    let mut c = extended(
        TestConfig::fynapse(port, upstream_url),
        route_extra,
        more_routes,
    );
    c.dedupe = yaml_value(&dedent(dedupe));
    c.yaml()
}
