//! A plain Pingora proxy, the load benchmark's baseline: a `ProxyHttp` whose
//! `upstream_peer` returns one keep-alive peer, with no checks at all. What
//! Pingora costs doing nothing, next to which hookgate's verifying,
//! deduping forward path is measured (`benches/load/run.sh`).
//!
//! ```sh
//! cargo run --release --example plain_proxy -- 127.0.0.1:8091 127.0.0.1:3000 1
//! ```
//! (listen address, upstream address, worker threads)

use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::upstreams::peer::HttpPeer;

/// Forwards every request to one upstream.
pub struct PlainProxy {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for PlainProxy {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _s: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parse = |i: usize| args.get(i).and_then(|a| a.parse::<SocketAddr>().ok());
    let (Some(listen), Some(upstream)) = (parse(1), parse(2)) else {
        eprintln!("usage: plain_proxy LISTEN UPSTREAM [THREADS]");
        std::process::exit(2);
    };
    let threads = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(1);
    let conf = ServerConf {
        threads,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut svc =
        pingora::proxy::http_proxy_service(&server.configuration, PlainProxy { upstream });
    svc.add_tcp(&listen.to_string());
    svc.threads = Some(threads);
    server.add_service(svc);
    server.run_forever();
}
