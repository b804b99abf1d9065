//! The admin listener: `GET /metrics` (Prometheus text), `GET /healthz`
//! (the process answers), `GET /readyz` (the config is loaded and every
//! public listener accepts connections). It runs on its own address
//! (`server.admin`), never on the public listeners.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::gateway::Gateway;

/// The admin endpoints of one gateway.
pub(crate) struct Admin {
    gateway: Arc<Gateway>,
    listeners: Vec<SocketAddr>,
}

impl Admin {
    /// Admin endpoints for `gateway`, whose public listeners are `listeners`.
    pub(crate) fn new(gateway: Arc<Gateway>, listeners: Vec<SocketAddr>) -> Self {
        Admin { gateway, listeners }
    }

    /// Whether every public listener accepts a connection now.
    async fn listeners_up(&self) -> bool {
        for addr in &self.listeners {
            // A wildcard listener is reached on loopback.
            let mut a = *addr;
            if a.ip().is_unspecified() {
                a.set_ip(match a.ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                });
            }
            let connect = tokio::net::TcpStream::connect(a);
            match tokio::time::timeout(Duration::from_millis(500), connect).await {
                Ok(Ok(_)) => {}
                _ => return false,
            }
        }
        true
    }
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .header("cache-control", "no-store")
        .body(body)
        .unwrap_or_default()
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, s: &mut ServerSession) -> http::Response<Vec<u8>> {
        let req = s.req_header();
        if req.method != http::Method::GET {
            return reply(405, "text/plain", b"method not allowed\n".to_vec());
        }
        match req.uri.path() {
            "/metrics" => {
                let m = self.gateway.metrics();
                m.observe_store(self.gateway.store().as_ref());
                reply(200, "text/plain; version=0.0.4", m.encode())
            }
            "/healthz" => reply(200, "text/plain", b"ok\n".to_vec()),
            "/readyz" => {
                if self.listeners_up().await {
                    reply(200, "text/plain", b"ready\n".to_vec())
                } else {
                    reply(503, "text/plain", b"listeners not up\n".to_vec())
                }
            }
            _ => reply(404, "text/plain", b"not found\n".to_vec()),
        }
    }
}
