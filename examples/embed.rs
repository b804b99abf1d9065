//! Embedding hookgate in your own Pingora proxy.
//!
//! `AppProxy` is "your" proxy: it routes everything to your app by its own
//! rules. For one path it hands the request to hookgate's [`Gateway`], which
//! verifies, dedupes and forwards it to the route's upstream, and answers.
//! Everything else is proxied by Pingora as usual.
//!
//! ```sh
//! APP=127.0.0.1:3000 cargo run --example embed    # listens on 127.0.0.1:8090
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use hookgate::gateway::{Gateway, RequestCtx};
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, ShutdownSignalWatch};
use pingora::upstreams::peer::HttpPeer;

/// Your proxy, with hookgate inside.
pub struct AppProxy {
    hookgate: Arc<Gateway>,
    app: SocketAddr,
}

/// Your per-request state, holding hookgate's.
pub struct AppCtx {
    webhook: Option<RequestCtx>,
}

#[async_trait]
impl ProxyHttp for AppProxy {
    type CTX = AppCtx;

    fn new_ctx(&self) -> AppCtx {
        AppCtx { webhook: None }
    }

    async fn request_filter(&self, s: &mut Session, ctx: &mut AppCtx) -> Result<bool> {
        // Your routing decides which requests are webhooks.
        if s.req_header().uri.path().starts_with("/webhooks/") {
            let hook = ctx.webhook.insert(self.hookgate.new_ctx());
            // hookgate answers every request it is given (Ok(true)).
            return self.hookgate.handle(s, hook).await;
        }
        Ok(false)
    }

    async fn upstream_peer(&self, _s: &mut Session, _ctx: &mut AppCtx) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.app, false, String::new())))
    }

    async fn logging(&self, s: &mut Session, e: Option<&Error>, ctx: &mut AppCtx) {
        if let Some(hook) = &ctx.webhook {
            self.hookgate.logging(s, e, hook);
        }
    }
}

/// The webhook routes, in hookgate's YAML. Only `routes` (and `dedupe`)
/// matter here: listeners are yours.
pub fn routes_yaml(receiver: &str, secret: &str) -> String {
    format!(
        "routes:
  - name: fynapse
    path: /webhooks/fynapse
    upstream: {{ url: \"http://{receiver}/hooks/balances\" }}
    verify: {{ scheme: fynapse, secrets: [ {{ value: \"{secret}\" }} ] }}
"
    )
}

/// Builds and runs the server on `listen` until `shutdown` fires.
pub fn run(
    listen: &str,
    app: SocketAddr,
    yaml: &str,
    shutdown: Box<dyn ShutdownSignalWatch>,
) -> Result<(), String> {
    let config = hookgate::config::from_yaml(yaml, "embedded routes").map_err(|e| e.to_string())?;
    let hookgate = Arc::new(Gateway::from_config(&config).map_err(|e| e.to_string())?);
    let mut server = Server::new_with_opt_and_conf(None, ServerConf::default());
    server.bootstrap();
    let mut svc =
        pingora::proxy::http_proxy_service(&server.configuration, AppProxy { hookgate, app });
    svc.add_tcp(listen);
    server.add_service(svc);
    server.run(RunArgs {
        shutdown_signal: shutdown,
    });
    Ok(())
}

#[allow(dead_code)]
fn main() {
    let app: SocketAddr = std::env::var("APP")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)));
    let yaml = routes_yaml(&app.to_string(), "dev-secret-change-me");
    if let Err(e) = run(
        "127.0.0.1:8090",
        app,
        &yaml,
        Box::new(pingora::server::UnixShutdownSignalWatch),
    ) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
