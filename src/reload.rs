//! Hot reload: on SIGHUP, read the config file again; refuse it whole if it
//! is invalid (the running config keeps serving), otherwise swap its routes
//! in atomically. The dedupe store, the upstream connection pool and the
//! requests in flight are untouched.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::signal::unix::{signal, SignalKind};

use crate::config::{self, Config};
use crate::gateway::Gateway;

/// Reloads `path` into `gateway` on SIGHUP. Run it as a Pingora background
/// service next to the gateway.
pub(crate) struct Reloader {
    path: PathBuf,
    gateway: Arc<Gateway>,
    running: Mutex<Config>,
}

impl Reloader {
    /// A reloader for the gateway started from `running`, read from `path`.
    pub(crate) fn new(path: PathBuf, gateway: Arc<Gateway>, running: Config) -> Self {
        Reloader {
            path,
            gateway,
            running: Mutex::new(running),
        }
    }

    /// Reads, validates and applies the file once. Returns whether it was
    /// applied.
    pub(crate) fn reload(&self) -> bool {
        let metrics = self.gateway.metrics();
        let new = match config::load(&self.path) {
            Ok(c) => c,
            Err(e) => {
                metrics.reloads.with_label_values(&["refused"]).inc();
                tracing::error!("reload refused, the running config keeps serving:\n{e}");
                return false;
            }
        };
        if let Ok(mut running) = self.running.lock() {
            for what in restart_only_changes(&running, &new) {
                tracing::warn!("reload: `{what}` changed; it takes effect only after a restart");
            }
            for (route, namespace) in forgotten_namespaces(&running, &new) {
                tracing::warn!(
                    route,
                    "reload: route `{route}` is gone and no route remembers its keys; set `idempotency.namespace: {namespace}` on the route that replaces it, or its deliveries may be forwarded again"
                );
            }
            self.gateway.reload(&new);
            for w in &new.warnings {
                tracing::warn!("{w}");
            }
            tracing::info!(routes = new.routes.len(), "config reloaded");
            *running = new;
        }
        metrics.reloads.with_label_values(&["ok"]).inc();
        true
    }
}

/// Routes of `old` whose dedupe namespace no route of `new` uses: their
/// delivered keys are no longer consulted.
fn forgotten_namespaces<'a>(old: &'a Config, new: &Config) -> Vec<(&'a str, &'a str)> {
    old.routes
        .iter()
        .filter(|o| !new.routes.iter().any(|n| n.name == o.name))
        .filter(|o| {
            !new.routes
                .iter()
                .any(|n| n.idempotency.namespace == o.idempotency.namespace)
        })
        .map(|o| (&*o.name, &*o.idempotency.namespace))
        .collect()
}

/// The settings a reload cannot apply to a running process.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&old.server, &new.server);
    let mut out = Vec::new();
    if a.listen != b.listen {
        out.push("server.listen");
    }
    if a.admin != b.admin {
        out.push("server.admin");
    }
    if a.threads != b.threads {
        out.push("server.threads");
    }
    if a.tls.is_some() != b.tls.is_some() {
        out.push("server.tls");
    }
    if a.grace_period != b.grace_period {
        out.push("server.grace_period");
    }
    if a.idle_timeout != b.idle_timeout
        || a.header_timeout != b.header_timeout
        || a.max_connections != b.max_connections
        || a.max_buffered != b.max_buffered
    {
        out.push("server.idle_timeout/header_timeout/max_connections/max_buffered");
    }
    let (c, d) = (&old.dedupe, &new.dedupe);
    if c.backend != d.backend
        || c.ttl != d.ttl
        || c.in_flight_timeout != d.in_flight_timeout
        || c.max_entries != d.max_entries
    {
        out.push("dedupe");
    }
    out
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen for SIGHUP, hot reload is off: {e}");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!(path = %self.path.display(), "SIGHUP: reloading");
                    self.reload();
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(routes: &[(&str, Option<&str>)]) -> Config {
        let mut yaml = String::from("routes:\n");
        for (i, (name, namespace)) in routes.iter().enumerate() {
            yaml.push_str(&format!(
                "  - name: {name}\n    path: /r{i}\n    upstream: {{ url: \"http://127.0.0.1:9/x\" }}\n    verify: {{ scheme: fynapse, secrets: [ {{ value: s }} ] }}\n"
            ));
            if let Some(ns) = namespace {
                yaml.push_str(&format!("    idempotency: {{ namespace: {ns} }}\n"));
            }
        }
        config::from_yaml(&yaml, "t").unwrap()
    }

    #[test]
    fn a_renamed_route_is_named_unless_its_namespace_lives_on() {
        let old = config(&[("a", None), ("b", None)]);
        assert_eq!(
            forgotten_namespaces(&old, &config(&[("a", None), ("c", None)])),
            [("b", "b")]
        );
        assert!(forgotten_namespaces(&old, &config(&[("a", None), ("c", Some("b"))])).is_empty());
        assert!(forgotten_namespaces(&old, &old).is_empty());
    }
}
