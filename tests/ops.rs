//! Operating hookgate: the admin listener's metrics and health, hot reload
//! on SIGHUP, TLS.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn get(addr: std::net::SocketAddr, path: &str) -> Response {
    Conn::open(addr).request(format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes())
}

/// The value of one sample line of a Prometheus text page, or 0.
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn metrics_count_a_known_mix_exactly() {
    let rx = Receiver::start();
    rx.respond(|r, _| {
        if r.header("idempotency-key").as_deref() == Some("fails") {
            Reply::status(500)
        } else {
            Reply::status(200)
        }
    });
    let admin = free_port();
    let yaml = config_yaml(free_port(), &rx.url("/in"), "", "")
        .replace("server:\n", &format!("server:\n  admin: \"127.0.0.1:{admin}\"\n"));
    let gw = start_gateway(&yaml);
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();

    for k in ["a", "b", "c"] {
        assert_eq!(deliver(gw.addr, &event_body(k, 100), k).status, 200);
    }
    for k in ["a", "b"] {
        assert_eq!(deliver(gw.addr, &event_body(k, 100), k).header("hookgate-duplicate"), Some("true"));
    }
    assert_eq!(deliver(gw.addr, &event_body("f", 100), "fails").status, 500);
    let body = event_body("x", 100);
    let mut forged = signed_headers(&body, "x");
    forged[1].1 = fynapse_signature("nope", &body, now());
    assert_eq!(post(gw.addr, "/webhooks/fynapse", &forged, &body).status, 401);
    assert_eq!(post(gw.addr, "/nowhere", &forged, &body).status, 404);
    // The admin endpoints are not on the public listener.
    assert_eq!(get(gw.addr, "/metrics").status, 404);

    // The log phase runs just after each answer: poll until the last counts.
    let deadline = Instant::now() + Duration::from_secs(5);
    let page = loop {
        let page = String::from_utf8(get(admin, "/metrics").body).unwrap();
        if sample(&page, r#"hookgate_requests_total{outcome="rejected",reason="no_route",route="-"}"#) >= 2.0
            || Instant::now() > deadline
        {
            break page;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let expect = [
        (r#"hookgate_requests_total{outcome="forwarded",reason="-",route="fynapse"}"#, 4.0),
        (r#"hookgate_requests_total{outcome="duplicate",reason="-",route="fynapse"}"#, 2.0),
        (r#"hookgate_requests_total{outcome="rejected",reason="signature_mismatch",route="fynapse"}"#, 1.0),
        (r#"hookgate_requests_total{outcome="rejected",reason="no_route",route="-"}"#, 2.0),
        (r#"hookgate_duplicates_total{route="fynapse"}"#, 2.0),
        (r#"hookgate_upstream_responses_total{class="2xx",route="fynapse"}"#, 3.0),
        (r#"hookgate_upstream_responses_total{class="5xx",route="fynapse"}"#, 1.0),
        (r#"hookgate_inflight_reservations{route="fynapse"}"#, 0.0),
        (r#"hookgate_request_duration_seconds_count{route="fynapse"}"#, 7.0),
        (r#"hookgate_upstream_duration_seconds_count{route="fynapse"}"#, 4.0),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&page, series), value, "{series}\n{page}");
    }
    assert!(page.contains("hookgate_dedupe_entries"), "{page}");

    assert_eq!(get(admin, "/healthz").status, 200);
    assert_eq!(get(admin, "/readyz").status, 200);
    assert_eq!(get(admin, "/nothing").status, 404);
}
