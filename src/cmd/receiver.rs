//! A tiny receiver for `hookgate demo` and dev mode: answers `200` to every
//! request and remembers what it saw (never the body, only its size).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

/// What the receiver saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Path and query.
    pub target: String,
    /// `Idempotency-Key`, if any.
    pub key: Option<String>,
    /// `X-Hookgate-Verified`, if any.
    pub verified: Option<String>,
    /// Body length.
    pub len: usize,
}

/// The receiver. Clone it to read what it saw.
#[derive(Clone, Default)]
pub struct DevReceiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    print: bool,
}

impl DevReceiver {
    /// A receiver that prints one line per request when `print`.
    pub fn new(print: bool) -> Self {
        DevReceiver {
            seen: Arc::default(),
            print,
        }
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl ServeHttp for DevReceiver {
    async fn response(&self, s: &mut ServerSession) -> http::Response<Vec<u8>> {
        let mut len = 0;
        while let Ok(Some(chunk)) = s.read_request_body().await {
            len += chunk.len();
        }
        let h = s.req_header();
        let get = |n: &str| {
            h.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let seen = Seen {
            target: h.uri.to_string(),
            key: get("idempotency-key"),
            verified: get("x-hookgate-verified"),
            len,
        };
        if self.print {
            println!(
                "receiver: {} {} bytes, Idempotency-Key {}, X-Hookgate-Verified {}",
                seen.target,
                seen.len,
                seen.key.as_deref().unwrap_or("-"),
                seen.verified.as_deref().unwrap_or("-")
            );
        }
        if let Ok(mut v) = self.seen.lock() {
            v.push(seen);
        }
        let body = br#"{"received":true}"#.to_vec();
        http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .body(body)
            .unwrap_or_default()
    }
}
