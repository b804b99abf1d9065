//! The examples, run: the bare verifier on the shipped capture, and the
//! embedding example serving verified requests inside "your" proxy.

mod common;

use hookgate::Reason;

#[path = "../examples/embed.rs"]
mod embed;
#[path = "../examples/verify_files.rs"]
mod verify_files;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::*;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::sync::Notify;

#[test]
fn bare_verifier_accepts_the_shipped_capture() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let headers = std::fs::read_to_string(root.join("fynapse.headers")).unwrap();
    let body = std::fs::read(root.join("fynapse.json")).unwrap();
    let v =
        verify_files::verify_capture(&headers, &body, "whsec_test_secret", 1_700_000_030).unwrap();
    assert_eq!(v.timestamp, Some(1_700_000_000));
    let stale = verify_files::verify_capture(&headers, &body, "whsec_test_secret", 1_700_000_301);
    assert_eq!(Reason::from(stale.unwrap_err()).label(), "stale_timestamp");
    let mut tampered = body.clone();
    tampered[0] = b' ';
    let bad = verify_files::verify_capture(&headers, &tampered, "whsec_test_secret", 1_700_000_030);
    assert_eq!(Reason::from(bad.unwrap_err()).label(), "signature_mismatch");
}

struct Stop(Arc<Notify>);

#[async_trait]
impl ShutdownSignalWatch for Stop {
    async fn recv(&self) -> ShutdownSignal {
        self.0.notified().await;
        ShutdownSignal::FastShutdown
    }
}

#[test]
fn embedded_gateway_serves_verified_requests_in_your_proxy() {
    let rx = Receiver::start();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let yaml = embed::routes_yaml(&rx.addr.to_string(), SECRET);
    let stop = Arc::new(Notify::new());
    let watch = Box::new(Stop(stop.clone()));
    let app = rx.addr;
    let l = listen.clone();
    let server = std::thread::spawn(move || embed::run(&l, app, &yaml, watch));
    let addr: std::net::SocketAddr = listen.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "embedded proxy did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    let body = event_body("evt-embed", 500);
    let r = deliver(addr, &body, "embed-1");
    assert_eq!(r.status, 200, "{r:?}");
    let got = rx.last();
    assert_eq!(got.target, "/hooks/balances");
    assert_eq!(got.header("x-hookgate-verified").as_deref(), Some("true"));
    assert_eq!(sha(&got.body), sha(&body));
    assert_eq!(
        deliver(addr, &body, "embed-1").header("hookgate-duplicate"),
        Some("true")
    );

    let mut forged = signed_headers(&body, "embed-2");
    forged[1].1 = fynapse_signature("wrong", &body, now());
    assert_eq!(post(addr, "/webhooks/fynapse", &forged, &body).status, 401);
    assert_eq!(rx.count(), 1);

    // Everything else is your proxy's business: proxied, not verified.
    let r = post(
        addr,
        "/app/orders",
        &[("Content-Type", "text/plain".into())],
        b"hello",
    );
    assert_eq!(r.status, 200);
    assert_eq!(rx.last().target, "/app/orders");
    assert!(rx.last().header("x-hookgate-verified").is_none());

    stop.notify_one();
    server.join().unwrap().unwrap();
}
