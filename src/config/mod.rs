//! The config layer: YAML text in, a validated [`Config`] out, or every
//! problem found, each with the key and the line at fault.
//!
//! Two stages, as River does it: `file` mirrors the YAML exactly (strict:
//! unknown and duplicate keys are errors; durations, sizes, addresses and
//! closed sets of words already typed), then one builder per concern
//! (`server`, `dedupe`, `route`, `verification`) applies the
//! [`defaults`], resolves secrets and upstream addresses, and checks the
//! rules that span several keys. The result is plain data; the gateway
//! turns it into runtime objects (peers, connection pools) itself.

mod choices;
mod dedupe;
pub mod defaults;
mod file;
mod keys;
mod lint;
mod redis;
mod route;
mod server;
mod units;
pub(crate) mod value;
mod verification;
pub use redis::RedisConfig;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use dedupe::{redact_url, Backend, BackendKind, Dedupe, OnStoreError};
pub use route::{
    BodyChecks, Forward, Idempotency, KeySource, PathMatch, Route, UnlistedEvent, Upstream,
};
pub use server::{LogFormat, Server, Tls};
pub use verification::Verification;

/// A whole, validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listener and process settings.
    pub server: Server,
    /// Dedupe store settings.
    pub dedupe: Dedupe,
    /// The routes, in file order.
    pub routes: Vec<Arc<Route>>,
    /// Things that work but deserve a look (inline secrets, no dedupe).
    pub warnings: Vec<String>,
    /// `alerts.failing_after`: how many signature mismatches in a row, with
    /// no verified request between them, mark a route as failing.
    pub failing_after: u32,
    /// What an offline load did not check (secret variables and files,
    /// upstream DNS); empty for a full load.
    pub skipped: Vec<String>,
}

/// How a config is loaded.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Check everything that does not need the production environment:
    /// secret variables and files are not read (their routes get no keys)
    /// and upstream hosts are not resolved (their address is unspecified).
    /// Such a config is for `check`, never for serving.
    pub offline: bool,
}

/// The development config shipped inside the binary: `hookgate run` with no
/// `--config` uses it. It listens on 127.0.0.1:8080 and forwards to
/// 127.0.0.1:3000 with an inline dev secret.
pub const EMBEDDED_DEV_CONFIG: &str = include_str!("../../conf/dev.yaml");

/// One thing wrong with a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key at fault, as a path (`routes[0].upstream.url`).
    pub key: String,
    /// 1-based line and column, when known.
    pub line: Option<(u64, u64)>,
    /// What is wrong, in words. Never contains a secret.
    pub message: String,
}

impl Problem {
    pub(crate) fn at(key: &str, (line, col): (u64, u64), message: String) -> Self {
        Problem {
            key: key.to_string(),
            line: (line > 0).then_some((line, col)),
            message,
        }
    }

    pub(crate) fn new(key: &str, message: String) -> Self {
        Problem {
            key: key.to_string(),
            line: None,
            message,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some((l, c)) if c > 0 => write!(f, "line {l}, column {c}: ")?,
            Some((l, _)) => write!(f, "line {l}: ")?,
            None => {}
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

pub(crate) type Problems = Vec<Problem>;

/// Why a config was refused: every problem found, and the file it came from.
#[derive(Debug, Clone)]
pub struct ConfigError {
    /// The file (or `<embedded>`).
    pub origin: String,
    /// At least one problem.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {p}", self.origin)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Parses and validates config text. `origin` names it in errors.
pub fn from_yaml(text: &str, origin: &str) -> Result<Config, ConfigError> {
    from_yaml_with(text, origin, LoadOptions::default())
}

/// [`from_yaml`] with load options (`check --offline`).
pub fn from_yaml_with(text: &str, origin: &str, opts: LoadOptions) -> Result<Config, ConfigError> {
    let err = |problems| ConfigError {
        origin: origin.to_string(),
        problems: lint::with_snippets(text, problems),
    };
    let problems = lint::lint(text);
    if !problems.is_empty() {
        return Err(ConfigError {
            origin: origin.to_string(),
            problems,
        });
    }
    let parsed: file::File = serde_saphyr::from_str(text).map_err(|e| {
        let line = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        let message = e.without_snippet().to_string();
        // The plain message repeats the position; the Problem carries it.
        let first = message.lines().next().unwrap_or("invalid YAML");
        let message = match first.rfind(" at line ") {
            Some(i) if line.0 > 0 => &first[..i],
            _ => first,
        };
        // The message names the key (`unknown field `x``); there is no path.
        err(vec![Problem::at("", line, message.to_string())])
    })?;
    let mut problems = Vec::new();
    let config = build(parsed, opts, &mut problems);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(err(problems))
    }
}

/// Builds the whole config, collecting every problem rather than stopping
/// at the first: the result is meaningful only when `p` stays empty.
fn build(f: file::File, opts: LoadOptions, p: &mut Problems) -> Config {
    let mut warnings = Vec::new();
    let mut load = Load {
        offline: opts.offline,
        skipped: Vec::new(),
    };
    let failing_after = build_failing_after(f.alerts.as_ref(), p);
    let server = server::build_server(f.server, p);
    let in_flight_at = f
        .dedupe
        .as_ref()
        .and_then(|d| d.in_flight_timeout.as_ref())
        .map(|t| t.at);
    let dedupe = dedupe::build_dedupe(f.dedupe, &mut warnings, p);
    if f.routes.value.is_empty() {
        p.push(Problem::at(
            "routes",
            value::pos(&f.routes),
            "at least one route is needed".into(),
        ));
    }
    let mut routes: Vec<Arc<Route>> = Vec::new();
    let mut seen_names: Vec<(String, u64)> = Vec::new();
    let mut seen_paths: Vec<(Option<String>, PathMatch, u64)> = Vec::new();
    for (i, r) in f.routes.value.into_iter().enumerate() {
        let key = format!("routes[{i}]");
        let name_line = r.value.name.referenced.line();
        let name = r.value.name.value.clone();
        if let Some((_, line)) = seen_names.iter().find(|(n, _)| *n == name) {
            p.push(Problem::at(
                &format!("{key}.name"),
                value::pos(&r.value.name),
                format!("duplicate route name `{name}` (first at line {line})"),
            ));
        }
        seen_names.push((name, name_line));
        let timeout_at = r.value.upstream.timeout.as_ref().map(|t| t.at);
        let Some(route) = route::build_route(&key, r, &mut load, &mut warnings, p) else {
            continue;
        };
        check_in_flight_outlives_upstream(&dedupe, &route, &key, in_flight_at.or(timeout_at), p);
        let clash = seen_paths
            .iter()
            .find(|(h, m, _)| *h == route.host && *m == route.path);
        if let Some((_, _, line)) = clash {
            p.push(Problem::at(
                &format!("{key}.path"),
                (name_line, 0),
                format!("duplicate path {:?} (first at line {line})", route.path),
            ));
        }
        seen_paths.push((route.host.clone(), route.path.clone(), name_line));
        routes.push(Arc::new(route));
    }
    Config {
        server,
        dedupe,
        routes,
        warnings,
        failing_after,
        skipped: load.skipped,
    }
}

/// The load options as the builders see them, and what they skipped.
pub(super) struct Load {
    /// [`LoadOptions::offline`].
    pub offline: bool,
    /// What was not checked, said on stderr by `check --offline`.
    pub skipped: Vec<String>,
}

/// `alerts.failing_after`: 1 or more, 20 when absent.
fn build_failing_after(a: Option<&file::Alerts>, p: &mut Problems) -> u32 {
    let Some(n) = a.and_then(|a| a.failing_after.as_ref()) else {
        return defaults::FAILING_AFTER;
    };
    match u32::try_from(n.value) {
        Ok(v) if v > 0 => v,
        _ => {
            p.push(Problem::at(
                "alerts.failing_after",
                value::pos(n),
                "must be a whole number from 1 to 4294967295".into(),
            ));
            defaults::FAILING_AFTER
        }
    }
}

/// A reservation must outlive the upstream exchange it guards: if it
/// expired while the receiver still worked, the sender's retry would be
/// forwarded as a second copy.
fn check_in_flight_outlives_upstream(
    dedupe: &Dedupe,
    route: &Route,
    key: &str,
    at: Option<(u64, u64)>,
    p: &mut Problems,
) {
    let (in_flight, timeout) = (dedupe.in_flight_timeout, route.upstream.timeout);
    if route.idempotency.source != KeySource::None && in_flight <= timeout {
        p.push(Problem::at(
            "dedupe.in_flight_timeout",
            at.unwrap_or((0, 0)),
            format!(
                "{in_flight:?} must be longer than {key}.upstream.timeout ({timeout:?}): a reservation that expires while the receiver still works lets the sender's retry through as a second copy"
            ),
        ));
    }
}

/// Reads, parses and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, LoadOptions::default())
}

/// [`load`] with load options (`check --offline`).
pub fn load_with(path: &Path, opts: LoadOptions) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: origin.clone(),
        problems: vec![Problem::new("(file)", format!("cannot read: {e}"))],
    })?;
    from_yaml_with(&text, &origin, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
server:
  listen: ["127.0.0.1:8080"]
routes:
  - name: fynapse
    path: /webhooks/fynapse
    upstream:
      url: http://127.0.0.1:3000/hooks
    verify:
      scheme: fynapse
      secrets:
        - value: dev-secret
"#;

    fn problems(yaml: &str) -> Vec<Problem> {
        from_yaml(yaml, "t.yaml")
            .expect_err("should be refused")
            .problems
    }

    fn one(yaml: &str) -> Problem {
        let p = problems(yaml);
        assert_eq!(p.len(), 1, "{p:?}");
        p.into_iter().next().unwrap()
    }

    #[test]
    fn good_config_gets_defaults() {
        let c = from_yaml(GOOD, "t.yaml").unwrap();
        let r = &c.routes[0];
        assert_eq!(r.max_body, 1 << 20);
        assert_eq!(r.content_types, vec!["application/json"]);
        assert_eq!(
            r.verify.tolerance,
            Some(std::time::Duration::from_secs(300))
        );
        assert_eq!(
            r.idempotency.source,
            KeySource::Scheme(Some(http::HeaderName::from_static("idempotency-key")))
        );
        assert!(r.idempotency.required);
        assert_eq!(r.upstream.path, "/hooks");
        assert_eq!(c.dedupe.max_entries, 1_000_000);
        assert!(c.warnings.iter().any(|w| w.contains("inline")));
    }

    #[test]
    fn embedded_dev_config_is_valid() {
        from_yaml(EMBEDDED_DEV_CONFIG, "<embedded>").unwrap();
    }

    /// The reference config's commented example routes (URL-signed, public
    /// key, shared token) load once uncommented.
    #[test]
    fn reference_config_example_routes_load() {
        let reference = include_str!("../../conf/hookgate.yaml");
        let (_, tail) = reference
            .split_once("# Other kinds of sender")
            .expect("the examples' marker");
        let examples: String = tail
            .lines()
            .filter_map(|l| l.strip_prefix("  # "))
            .filter(|l| l.starts_with("- ") || l.starts_with("  "))
            .map(|l| format!("  {l}\n"))
            .collect();
        let yaml = format!("routes:\n{examples}")
            .replace("{ env: TWILIO_AUTH_TOKEN }", "{ value: t }")
            .replace("{ env: GITLAB_WEBHOOK_TOKEN }", "{ value: t }");
        let c = from_yaml(&yaml, "examples").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let names: Vec<&str> = c.routes.iter().map(|r| &*r.name).collect();
        assert_eq!(
            names,
            ["twilio-sms", "discord-interactions", "gitlab-events"]
        );
        assert!(c.routes[0].verify.public_url.is_some());
        assert!(c.routes[1].verify.handshake);
    }

    #[test]
    fn unknown_key_names_the_line() {
        let p = one(&GOOD.replace(
            "    path: /webhooks/fynapse",
            "    path: /webhooks/fynapse\n    pth: /x",
        ));
        assert_eq!(p.line.map(|l| l.0), Some(7), "{p}");
        assert!(p.message.contains("pth"), "{p}");
    }

    #[test]
    fn duplicate_name_and_path() {
        let twice = format!(
            "{GOOD}{}",
            &GOOD[GOOD.find("  - name").unwrap()..].replace("routes:\n", "")
        );
        let p = problems(&twice);
        assert!(
            p.iter().any(|p| p.key == "routes[1].name"
                && p.line.map(|l| l.0) == Some(13)
                && p.message.contains("duplicate route name")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|p| p.key == "routes[1].path" && p.message.contains("duplicate path")),
            "{p:?}"
        );
    }

    #[test]
    fn missing_env_and_file() {
        let p = one(&GOOD.replace(
            "- value: dev-secret",
            "- env: HOOKGATE_TEST_SURELY_UNSET_VAR",
        ));
        assert_eq!(
            (p.key.as_str(), p.line.map(|l| l.0)),
            ("routes[0].verify.secrets[0].env", Some(12))
        );
        let p = one(&GOOD.replace("- value: dev-secret", "- file: /nonexistent/secret"));
        assert_eq!(p.key, "routes[0].verify.secrets[0].file");
        assert!(p.message.contains("/nonexistent/secret"));
    }

    #[test]
    fn huge_secret_files_are_refused_without_reading_them_whole() {
        let p = one(&GOOD.replace("- value: dev-secret", "- file: /dev/zero"));
        assert_eq!(p.key, "routes[0].verify.secrets[0].file");
        assert!(p.message.contains("64 KiB"), "{p}");
    }

    #[test]
    fn bad_url_duration_size() {
        let p = one(&GOOD.replace("http://127.0.0.1:3000/hooks", "not a url"));
        assert_eq!(
            (p.key.as_str(), p.line.map(|l| l.0)),
            ("routes[0].upstream.url", Some(8))
        );
        let p = one(&GOOD.replace(
            "      url: http://127.0.0.1:3000/hooks",
            "      url: http://127.0.0.1:3000/hooks\n      timeout: 30 seconds",
        ));
        assert_eq!(
            (p.key.as_str(), p.line.map(|l| l.0)),
            ("routes[0].upstream.timeout", Some(9))
        );
        let p = one(&GOOD.replace(
            "    path: /webhooks/fynapse",
            "    path: /webhooks/fynapse\n    max_body: 1 gigabyte",
        ));
        assert_eq!(
            (p.key.as_str(), p.line.map(|l| l.0)),
            ("routes[0].max_body", Some(7))
        );
        let p = one(&GOOD.replace(
            "    path: /webhooks/fynapse",
            "    path: /webhooks/fynapse\n    max_body: 65MiB",
        ));
        assert!(p.message.contains("64MiB"));
    }

    fn with_dedupe(dedupe: &str) -> String {
        GOOD.replace("routes:\n", &format!("dedupe:\n{dedupe}routes:\n"))
    }

    #[test]
    fn redis_backend_with_defaults() {
        let c = from_yaml(
            &with_dedupe("  backend: redis\n  redis:\n    url: redis://127.0.0.1:6380/2\n"),
            "t.yaml",
        )
        .unwrap();
        assert_eq!(
            c.dedupe.backend,
            Backend::Redis(RedisConfig {
                target: crate::dedupe::RedisTarget::Single("redis://127.0.0.1:6380/2".into()),
                tls: Default::default(),
                prefix: "hookgate:".into(),
                timeout: std::time::Duration::from_secs(1),
                connections: 2,
                on_error: OnStoreError::FailClosed,
                wait_replicas: 0,
            })
        );
        assert_eq!(c.dedupe.on_error(), OnStoreError::FailClosed);
        let c = from_yaml(
            &with_dedupe(
                "  backend: redis\n  redis:\n    url: valkey://cache:6379\n    prefix: \"hg:prod:\"\n    timeout: 250ms\n    connections: 4\n    on_error: fail_open\n",
            ),
            "t.yaml",
        )
        .unwrap();
        let Backend::Redis(RedisConfig {
            prefix,
            timeout,
            connections,
            on_error,
            ..
        }) = &c.dedupe.backend
        else {
            panic!("{:?}", c.dedupe.backend)
        };
        assert_eq!(
            (prefix.as_str(), *timeout, *connections, *on_error),
            (
                "hg:prod:",
                std::time::Duration::from_millis(250),
                4,
                OnStoreError::FailOpen
            )
        );
        assert_eq!(c.dedupe.on_error(), OnStoreError::FailOpen);
    }

    #[test]
    fn redis_backend_errors_name_key_and_line() {
        let p = one(&with_dedupe("  backend: redis\n"));
        assert_eq!(
            (p.key.as_str(), p.line.map(|l| l.0)),
            ("dedupe.redis", Some(5)),
            "{p}"
        );
        let cases = [
            ("    url: http://127.0.0.1:6379\n", "dedupe.redis.url", 7),
            ("    url: not a url\n", "dedupe.redis.url", 7),
            (
                "    url: rediss://127.0.0.1:6379\n    cert: c.pem\n",
                "dedupe.redis.cert",
                8,
            ),
            (
                "    url: redis://127.0.0.1\n    on_error: shrug\n",
                "dedupe.redis.on_error",
                8,
            ),
            (
                "    url: redis://127.0.0.1\n    connections: 0\n",
                "dedupe.redis.connections",
                8,
            ),
            (
                "    url: redis://127.0.0.1\n    timeout: 0s\n",
                "dedupe.redis.timeout",
                8,
            ),
            (
                "    url: redis://127.0.0.1\n    timeout: soon\n",
                "dedupe.redis.timeout",
                8,
            ),
        ];
        for (redis, key, line) in cases {
            let p = one(&with_dedupe(&format!(
                "  backend: redis\n  redis:\n{redis}"
            )));
            assert_eq!(
                (p.key.as_str(), p.line.map(|l| l.0)),
                (key, Some(line)),
                "{p}"
            );
        }
        // Unknown keys in the block are refused like everywhere else.
        let p = one(&with_dedupe(
            "  backend: redis\n  redis:\n    url: redis://127.0.0.1\n    pool: 3\n",
        ));
        assert!(p.message.contains("pool"), "{p}");
    }

    #[test]
    fn redis_password_never_appears_in_errors_or_debug() {
        let yaml = with_dedupe(
            "  backend: redis\n  redis:\n    url: redis://:hunter2@127.0.0.1:6379\n    on_error: nope\n",
        );
        let text = from_yaml(&yaml, "t.yaml").unwrap_err().to_string();
        assert!(!text.contains("hunter2"), "{text}");
        let yaml = with_dedupe("  backend: redis\n  redis:\n    url: http://:hunter2@h\n");
        let text = from_yaml(&yaml, "t.yaml").unwrap_err().to_string();
        assert!(!text.contains("hunter2"), "{text}");
        let yaml = with_dedupe("  backend: redis\n  redis:\n    url: redis://:hunter2@h\n");
        let c = from_yaml(&yaml, "t.yaml").unwrap();
        let debug = format!("{:?}", c.dedupe);
        assert!(
            !debug.contains("hunter2") && debug.contains("***"),
            "{debug}"
        );
    }

    #[test]
    fn redis_block_without_redis_backend_warns() {
        let c = from_yaml(
            &with_dedupe("  redis:\n    url: redis://127.0.0.1\n"),
            "t.yaml",
        )
        .unwrap();
        assert_eq!(c.dedupe.backend, Backend::Memory);
        assert!(
            c.warnings.iter().any(|w| w.contains("dedupe.redis")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn in_flight_timeout_must_outlive_the_upstream_timeout() {
        let yaml = with_dedupe("  in_flight_timeout: 30s\n").replace(
            "      url: http://127.0.0.1:3000/hooks",
            "      url: http://127.0.0.1:3000/hooks\n      timeout: 60s",
        );
        let p = one(&yaml);
        assert_eq!(p.key, "dedupe.in_flight_timeout", "{p}");
        assert_eq!(p.line.map(|l| l.0), Some(5), "{p}");
        assert!(
            p.message.contains("30s") && p.message.contains("routes[0].upstream.timeout (60s)"),
            "{p}"
        );
        // Without dedupe on the route, there is no reservation to outlive.
        let yaml = yaml.replace(
            "        - value: dev-secret",
            "        - value: dev-secret\n    idempotency: { key: none }",
        );
        from_yaml(&yaml, "t.yaml").unwrap();
    }

    #[test]
    fn yaml_syntax_error_has_a_line() {
        let p = one("routes:\n  - name: [unclosed\n");
        assert!(p.line.is_some(), "{p}");
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let bad = GOOD.replace("url: http://127.0.0.1:3000/hooks", "url: nope");
        let text = from_yaml(&bad, "t.yaml").unwrap_err().to_string();
        assert!(!text.contains("dev-secret"), "{text}");
    }
}
