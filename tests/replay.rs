//! Replays: a captured delivery sent again with a fresh idempotency key.
//!
//! No signature covers the idempotency key (`Idempotency-Key`,
//! `X-GitHub-Delivery`, …), so a key alone cannot stop a replay: the matched
//! signature is a second dedupe identity. A signature that was delivered
//! (the receiver answered `2xx`) or is in flight is never forwarded again,
//! whatever key it carries; one released after a failure may come again.

mod common;

use std::time::Duration;

use common::*;
use hookgate::verify::{GitHub, Scheme};
use serde_json::json;

const PATH: &str = "/webhooks/fynapse";

/// `headers` with the idempotency key replaced.
fn with_key(headers: &[(&'static str, String)], key: &str) -> Vec<(&'static str, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            if *n == "Idempotency-Key" {
                (*n, key.to_string())
            } else {
                (*n, v.clone())
            }
        })
        .collect()
}

fn metric(admin: std::net::SocketAddr, series: &str) -> f64 {
    let page = String::from_utf8(get(admin, "/metrics").body).unwrap();
    page.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_delivered_signature_is_never_forwarded_again_under_a_new_key() {
    let rx = Receiver::start();
    let admin = free_port();
    let gw = start_gateway(
        &TestConfig::fynapse(free_port(), &rx.url("/hooks/balances"))
            .server_with("admin", json!(format!("127.0.0.1:{admin}")))
            .yaml(),
    );
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    let body = event_body("evt-replay", 200);
    let captured = signed_headers(&body, "k-original");
    assert_eq!(post(gw.addr, PATH, &captured, &body).status, 200);
    for fresh in ["k-forged-1", "k-forged-2"] {
        let r = post(gw.addr, PATH, &with_key(&captured, fresh), &body);
        assert_eq!(r.status, 200, "answered like a duplicate");
        assert_eq!(r.header("hookgate-duplicate"), Some("true"));
    }
    assert_eq!(rx.count(), 1, "the receiver got it once");
    // The forged keys were not consumed: the sender may still use them.
    let other = event_body("evt-other", 200);
    assert_eq!(deliver(gw.addr, &other, "k-forged-1").status, 200);
    assert_eq!(rx.count(), 2);
    let series = r#"hookgate_requests_total{outcome="duplicate",reason="replayed_signature",route="fynapse"}"#;
    assert_eq!(metric(admin, series), 2.0);
}

#[test]
fn a_signature_in_flight_is_refused_409_under_a_new_key() {
    let rx = Receiver::start();
    rx.respond(|_, n| Reply {
        delay: if n == 1 {
            Duration::from_millis(1200)
        } else {
            Duration::ZERO
        },
        ..Reply::status(200)
    });
    let gw = start_gateway(&TestConfig::fynapse(free_port(), &rx.url("/h")).yaml());
    let body = event_body("evt-inflight", 200);
    let captured = signed_headers(&body, "k-slow");
    let (addr, b, h) = (gw.addr, body.clone(), captured.clone());
    let first = std::thread::spawn(move || post(addr, PATH, &h, &b));
    while rx.count() == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = post(gw.addr, PATH, &with_key(&captured, "k-copy"), &body);
    assert_eq!((r.status, r.error()), (409, "in_flight".into()));
    assert!(r.header("retry-after").is_some());
    assert_eq!(first.join().unwrap().status, 200);
    // The copy's key was released when its signature conflicted.
    let r = post(gw.addr, PATH, &with_key(&captured, "k-copy"), &body);
    assert_eq!(
        r.header("hookgate-duplicate"),
        Some("true"),
        "still a replay"
    );
    assert_eq!(
        deliver(gw.addr, &event_body("x", 100), "k-copy").status,
        200
    );
    assert_eq!(rx.count(), 2);
}

#[test]
fn a_signature_released_after_a_failure_may_come_again() {
    let rx = Receiver::start();
    rx.respond(|_, n| Reply::status(if n == 1 { 500 } else { 200 }));
    let gw = start_gateway(&TestConfig::fynapse(free_port(), &rx.url("/h")).yaml());
    let body = event_body("evt-retry", 200);
    let captured = signed_headers(&body, "k-1");
    assert_eq!(post(gw.addr, PATH, &captured, &body).status, 500);
    let r = post(gw.addr, PATH, &with_key(&captured, "k-2"), &body);
    assert_eq!(r.status, 200);
    assert!(r.header("hookgate-duplicate").is_none());
    assert_eq!(rx.count(), 2);
}

#[test]
fn github_deliveries_replayed_with_new_delivery_ids_reach_the_receiver_once() {
    let rx = Receiver::start();
    let route = json!({
        "name": "github",
        "path": "/webhooks/github",
        "upstream": { "url": rx.url("/gh") },
        "verify": { "scheme": "github", "secrets": [ { "value": SECRET } ] }
    });
    let gw = start_gateway(&TestConfig::new(free_port()).route(route).yaml());
    let key = GitHub.derive_key(SECRET).unwrap();
    let body = br#"{"action":"opened","number":1}"#;
    let signed = GitHub.sign(&key, body, 0, "11111111-1111-1111-1111-111111111111");
    for (i, id) in [
        "11111111-1111-1111-1111-111111111111",
        "22222222-2222-2222-2222-222222222222",
        "33333333-3333-3333-3333-333333333333",
    ]
    .iter()
    .enumerate()
    {
        let mut h: Vec<(&str, String)> = vec![("Content-Type", "application/json".into())];
        for (n, v) in &signed {
            if n.eq_ignore_ascii_case("x-github-delivery") {
                h.push(("X-GitHub-Delivery", id.to_string()));
            } else {
                h.push((n.as_str(), v.clone()));
            }
        }
        let r = post(gw.addr, "/webhooks/github", &h, body);
        assert_eq!(r.status, 200, "attempt {i}");
        assert_eq!(
            r.header("hookgate-duplicate").is_some(),
            i > 0,
            "attempt {i}"
        );
    }
    assert_eq!(rx.count(), 1);
}
