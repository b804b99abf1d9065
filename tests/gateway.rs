//! End to end: the real gateway, a real receiver, real HTTP on loopback.
//! One test per behaviour of the request path and the status table (README).

mod common;

use serde_json::json;
use std::time::Duration;

use common::*;

const PATH: &str = "/webhooks/fynapse";

#[test]
fn valid_delivery_reaches_the_receiver_byte_for_byte() {
    let (gw, rx) = setup("");
    let body = event_body("evt-1", 2000);
    let headers = signed_headers(&body, "key-1");
    let r = post(gw.addr, &format!("{PATH}?source=test"), &headers, &body);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body, b"{\"received\":200}",
        "the receiver's answer comes back unchanged"
    );
    assert!(r.header("x-request-id").is_some());

    let got = rx.last();
    assert_eq!(sha(&got.body), sha(&body));
    assert_eq!(got.method, "POST");
    assert_eq!(got.target, "/hooks/balances?source=test");
    assert_eq!(
        got.header("webhook-signature"),
        Some(headers[1].1.clone()),
        "signature header intact"
    );
    assert_eq!(got.header("idempotency-key").as_deref(), Some("key-1"));
    assert_eq!(got.header("x-hookgate-route").as_deref(), Some("fynapse"));
    assert_eq!(got.header("x-hookgate-verified").as_deref(), Some("true"));
    assert_eq!(got.header("content-length"), Some(body.len().to_string()));
    assert_eq!(got.header("host"), Some(rx.addr.to_string()));
    assert_eq!(
        got.header("x-forwarded-host").as_deref(),
        Some("hooks.test")
    );
    assert_eq!(got.header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
}

#[test]
fn duplicate_is_answered_and_not_forwarded() {
    let (gw, rx) = setup("");
    let body = event_body("evt-dup", 300);
    assert_eq!(deliver(gw.addr, &body, "dup-key").status, 200);
    // A retry is signed anew by the sender: new timestamp, same key.
    std::thread::sleep(Duration::from_millis(1100));
    let r = deliver(gw.addr, &body, "dup-key");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("hookgate-duplicate"), Some("true"));
    assert_eq!(r.json()["status"], "duplicate");
    assert_eq!(rx.count(), 1);
    // Keys are per delivery: another key goes through.
    assert_eq!(deliver(gw.addr, &body, "other-key").status, 200);
    assert_eq!(rx.count(), 2);
}

#[test]
fn fifty_concurrent_first_deliveries_forward_exactly_one() {
    let (gw, rx) = setup("");
    rx.respond(|_, _| Reply {
        delay: Duration::from_millis(300),
        ..Reply::status(200)
    });
    let body = event_body("evt-race", 500);
    let addr = gw.addr;
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || deliver(addr, &body, "race-key"))
        })
        .collect();
    let statuses: Vec<u16> = threads
        .into_iter()
        .map(|t| t.join().unwrap().status)
        .collect();
    assert_eq!(rx.count(), 1, "statuses: {statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&409),
        "some must have seen the key in flight: {statuses:?}"
    );
}

#[test]
fn in_flight_key_gets_409_with_retry_after() {
    let (gw, rx) = setup("    idempotency: { key: \"header:Idempotency-Key\", retry_after: 7s }");
    rx.respond(|_, _| Reply {
        delay: Duration::from_millis(800),
        ..Reply::status(200)
    });
    let body = event_body("evt-409", 100);
    let addr = gw.addr;
    let b = body.clone();
    let first = std::thread::spawn(move || deliver(addr, &b, "slow-key"));
    std::thread::sleep(Duration::from_millis(300));
    let r = deliver(gw.addr, &body, "slow-key");
    assert_eq!(r.status, 409);
    assert_eq!(r.error(), "in_flight");
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(first.join().unwrap().status, 200);
    assert_eq!(rx.count(), 1);
}

#[test]
fn receiver_error_releases_the_key_and_the_retry_goes_through() {
    let (gw, rx) = setup("");
    rx.respond(|_, n| {
        if n == 1 {
            Reply {
                headers: vec![("Retry-After".into(), "120".into())],
                body: b"try later".to_vec(),
                ..Reply::status(500)
            }
        } else {
            Reply::status(200)
        }
    });
    let body = event_body("evt-500", 200);
    let r = deliver(gw.addr, &body, "k500");
    assert_eq!(r.status, 500, "the receiver's status is passed back");
    assert_eq!(r.body, b"try later");
    assert_eq!(r.header("retry-after"), Some("120"));
    let r = deliver(gw.addr, &body, "k500");
    assert_eq!(r.status, 200);
    assert!(r.header("hookgate-duplicate").is_none());
    assert_eq!(rx.count(), 2);
    let r = deliver(gw.addr, &body, "k500");
    assert_eq!(r.header("hookgate-duplicate"), Some("true"));
    assert_eq!(rx.count(), 2);
}

#[test]
fn forged_request_cannot_block_a_key() {
    let (gw, rx) = setup("");
    let body = event_body("evt-forge", 200);
    let mut forged = signed_headers(&body, "victim-key");
    forged[1].1 = fynapse_signature("attacker-secret", &body, now());
    let r = post(gw.addr, PATH, &forged, &body);
    assert_eq!(r.status, 401);
    assert_eq!(r.error(), "signature_mismatch");
    assert_eq!(
        rx.accepts(),
        0,
        "a forged request never reaches the receiver"
    );
    let r = deliver(gw.addr, &body, "victim-key");
    assert_eq!(r.status, 200);
    assert!(r.header("hookgate-duplicate").is_none());
    assert_eq!(rx.count(), 1);
}

#[test]
fn client_sent_hookgate_headers_never_reach_the_receiver() {
    let (gw, rx) = setup("");
    let body = event_body("evt-hdr", 100);
    let mut h = signed_headers(&body, "hdr-key");
    h.push(("X-Hookgate-Verified", "false".into()));
    h.push(("X-Hookgate-Route", "admin".into()));
    h.push(("x-hookgate-anything", "1".into()));
    assert_eq!(post(gw.addr, PATH, &h, &body).status, 200);
    let got = rx.last();
    let verified: Vec<_> = got.headers.get_all("x-hookgate-verified").iter().collect();
    assert_eq!(verified, vec!["true"]);
    let route: Vec<_> = got.headers.get_all("x-hookgate-route").iter().collect();
    assert_eq!(route, vec!["fynapse"]);
    assert!(got.headers.get("x-hookgate-anything").is_none());
}

#[test]
fn garbage_signatures_are_401_and_the_gateway_keeps_serving() {
    let (gw, rx) = setup("");
    let body = event_body("evt-garbage", 100);
    let t = now();
    let garbage = [
        String::new(),
        "v1=abcd".into(),
        format!("t={t},v1=zzzz"),
        format!("t={t},v1={}", "g".repeat(64)),
        format!("t={t},v1={}", "a".repeat(10 * 1024)),
        "t=\u{e9}t\u{e9},v1=\u{e9}".into(),
        ",,,,==,=".into(),
    ];
    for g in garbage {
        let h = vec![
            ("Content-Type", "application/json".to_string()),
            ("Webhook-Signature", g.clone()),
            ("Idempotency-Key", "g".to_string()),
        ];
        let r = post(gw.addr, PATH, &h, &body);
        assert_eq!(r.status, 401, "{g:?}");
        assert_eq!(r.error(), "malformed_signature", "{g:?}");
        assert!(!String::from_utf8_lossy(&r.body).contains(&g) || g.is_empty());
    }
    assert_eq!(rx.accepts(), 0);
    assert_eq!(deliver(gw.addr, &body, "after-garbage").status, 200);
}

#[test]
fn five_mib_body_is_verified_and_forwarded_intact() {
    let (gw, rx) = setup("");
    let body = event_body("evt-big", 5 << 20);
    assert_eq!(deliver(gw.addr, &body, "big-cl").status, 200);
    assert_eq!(sha(&rx.last().body), sha(&body));
    // The same size, chunked: the receiver gets it framed by Content-Length.
    let mut h = signed_headers(&body, "big-chunked");
    h.push(("Connection", "close".into()));
    let r = Conn::open(gw.addr).request(&chunked_request_bytes(PATH, &h, &body, 100_000));
    assert_eq!(r.status, 200);
    let got = rx.last();
    assert_eq!(sha(&got.body), sha(&body));
    assert_eq!(got.header("content-length"), Some(body.len().to_string()));
    assert!(got.header("transfer-encoding").is_none());
    // A forged 5 MiB body is read whole, refused, and never forwarded.
    let mut forged = signed_headers(&body, "big-forged");
    forged[1].1 = fynapse_signature("nope", &body, now());
    assert_eq!(post(gw.addr, PATH, &forged, &body).status, 401);
    assert_eq!(rx.count(), 2);
}

#[test]
fn bodies_around_pingoras_64k_replay_buffer() {
    let (gw, rx) = setup("");
    for (i, size) in [65_535usize, 65_536, 65_537, 200_000]
        .into_iter()
        .enumerate()
    {
        let body = event_body(&format!("evt-{size}"), size);
        assert_eq!(body.len(), size);
        let r = deliver(gw.addr, &body, &format!("k64-{i}"));
        assert_eq!(r.status, 200, "size {size}");
        assert_eq!(sha(&rx.last().body), sha(&body), "size {size}");
    }
}

#[test]
fn over_max_body_is_413_and_nothing_is_forwarded() {
    let (gw, rx) = setup("");
    let body = event_body("evt-huge", (8 << 20) + 100 * 1024);
    // Declared too large: answered before reading.
    let mut c = Conn::open(gw.addr);
    let h = signed_headers(&body, "huge");
    let head = request_bytes("POST", PATH, &h, b"");
    let head = String::from_utf8(head).unwrap().replace(
        "Content-Length: 0",
        &format!("Content-Length: {}", body.len()),
    );
    c.write(head.as_bytes()).unwrap();
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.error(), "body_too_large");
    assert_eq!(r.header("connection"), Some("close"));
    // Chunked, growing past the limit.
    let mut c = Conn::open(gw.addr);
    let bytes = chunked_request_bytes(PATH, &h, &body, 64 * 1024);
    // The gateway may close while we still write; the answer is what counts.
    let _ = c.write(&bytes);
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(rx.accepts(), 0);
    // Exactly max_body is fine.
    let body = event_body("evt-max", 8 << 20);
    assert_eq!(deliver(gw.addr, &body, "max").status, 200);
}

#[test]
fn every_rejection_row_of_the_status_table() {
    let (gw, rx) = setup("    events: [balance.extracted]");
    let body = event_body("evt-table", 200);
    let good = signed_headers(&body, "table-key");
    let t = now();

    let r = post(gw.addr, "/webhooks/other", &good, &body);
    assert_eq!((r.status, r.error()), (404, "no_route".into()));
    assert!(r.json().get("route").is_none());

    let r = Conn::open(gw.addr).request(&request_bytes(
        "GET",
        PATH,
        &[("Connection", "close".into())],
        b"",
    ));
    assert_eq!((r.status, r.error()), (405, "method_not_allowed".into()));
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.json()["route"], "fynapse");

    let mut h = good.clone();
    h[0].1 = "text/plain".into();
    let r = post(gw.addr, PATH, &h, &body);
    assert_eq!(
        (r.status, r.error()),
        (415, "unsupported_media_type".into())
    );
    let mut h = good.clone();
    h[0].1 = "Application/JSON; charset=utf-8".into();
    assert_eq!(
        post(gw.addr, PATH, &h, &body).status,
        200,
        "media type parameters and case are fine"
    );

    let h: Vec<_> = good
        .iter()
        .filter(|(k, _)| *k != "Webhook-Signature")
        .cloned()
        .collect();
    let r = post(gw.addr, PATH, &h, &body);
    assert_eq!((r.status, r.error()), (401, "missing_signature".into()));

    let mut h = good.clone();
    h[1].1 = "t=1,v1=nothex".into();
    assert_eq!(
        post(gw.addr, PATH, &h, &body).error(),
        "malformed_signature"
    );

    let mut tampered = body.clone();
    tampered[20] ^= 1;
    let r = post(gw.addr, PATH, &good, &tampered);
    assert_eq!((r.status, r.error()), (401, "signature_mismatch".into()));

    for skew in [-301, 301] {
        let mut h = good.clone();
        h[1].1 = fynapse_signature(SECRET, &body, t + skew);
        let r = post(gw.addr, PATH, &h, &body);
        assert_eq!(
            (r.status, r.error()),
            (401, "stale_timestamp".into()),
            "skew {skew}"
        );
    }

    let bad_json = b"{not json".to_vec();
    let r = post(gw.addr, PATH, &signed_headers(&bad_json, "j"), &bad_json);
    assert_eq!((r.status, r.error()), (400, "invalid_json".into()));

    let h: Vec<_> = good
        .iter()
        .filter(|(k, _)| *k != "Idempotency-Key")
        .cloned()
        .collect();
    let r = post(gw.addr, PATH, &h, &body);
    assert_eq!(
        (r.status, r.error()),
        (400, "missing_idempotency_key".into())
    );

    let other = br#"{"event_id":"e","event_type":"account.closed"}"#.to_vec();
    let r = post(gw.addr, PATH, &signed_headers(&other, "ev"), &other);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ignored");

    assert_eq!(
        rx.count(),
        1,
        "only the valid request (the media type check) reached the receiver"
    );
}

#[test]
fn rejections_never_echo_secrets_signatures_or_body() {
    let (gw, _rx) = setup("");
    let body = br#"{"event_type":"balance.extracted","secret_marker":"BODY-MARKER"}"#.to_vec();
    let mut h = signed_headers(&body, "KEY-MARKER");
    h[1].1 = format!("t={},v1={}", now(), "ab".repeat(32));
    let r = post(gw.addr, PATH, &h, &body);
    assert_eq!(r.status, 401);
    let text = format!("{:?}{}", r.headers, String::from_utf8_lossy(&r.body));
    for marker in ["BODY-MARKER", "KEY-MARKER", &"ab".repeat(32), SECRET] {
        assert!(!text.contains(marker), "{marker} echoed: {text}");
    }
}

#[test]
fn unlisted_event_can_be_rejected_with_422() {
    let (gw, rx) = setup("    events: [balance.extracted]\n    unlisted_events: reject");
    let other = br#"{"event_type":"account.closed"}"#.to_vec();
    let r = post(gw.addr, PATH, &signed_headers(&other, "e422"), &other);
    assert_eq!((r.status, r.error()), (422, "event_not_allowed".into()));
    assert_eq!(rx.count(), 0);
}

#[test]
fn json_pointer_idempotency_key() {
    let (gw, rx) = setup("    idempotency: { key: \"json:/event_id\" }");
    let body = event_body("evt-json-key", 100);
    let h: Vec<_> = signed_headers(&body, "")
        .into_iter()
        .filter(|(k, _)| *k != "Idempotency-Key")
        .collect();
    assert_eq!(post(gw.addr, PATH, &h, &body).status, 200);
    std::thread::sleep(Duration::from_millis(1100));
    let h: Vec<_> = signed_headers(&body, "")
        .into_iter()
        .filter(|(k, _)| *k != "Idempotency-Key")
        .collect();
    let r = post(gw.addr, PATH, &h, &body);
    assert_eq!(r.header("hookgate-duplicate"), Some("true"));
    assert_eq!(rx.count(), 1);
}

#[test]
fn slow_body_is_408_and_the_connection_closes() {
    let (gw, rx) = setup("");
    let body = event_body("evt-slow", 1000);
    let h = signed_headers(&body, "slow-body");
    let bytes = request_bytes("POST", PATH, &h, &body);
    let mut c = Conn::open(gw.addr);
    // Everything but the last 10 bytes, then nothing: body_timeout is 2s.
    c.write(&bytes[..bytes.len() - 10]).unwrap();
    let started = std::time::Instant::now();
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.error()), (408, "body_timeout".into()));
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        c.read_response().is_err(),
        "the connection is closed after a 408"
    );
    assert_eq!(rx.accepts(), 0);
}

#[test]
fn upstream_down_is_502_and_the_key_is_released() {
    let port = free_port();
    let gw = start_gateway(&config_yaml(
        free_port(),
        &format!("http://127.0.0.1:{port}/x"),
        "",
        "",
    ));
    let body = event_body("evt-502", 100);
    let r = deliver(gw.addr, &body, "k502");
    assert_eq!((r.status, r.error()), (502, "upstream_unreachable".into()));
    // The key was released: once the receiver is up, the retry goes through.
    let rx = Receiver::start();
    let gw2 = start_gateway(&config_yaml(free_port(), &rx.url("/x"), "", ""));
    assert_eq!(deliver(gw2.addr, &body, "k502").status, 200);
    // And on the first gateway too (still down): 502 again, not 409.
    assert_eq!(deliver(gw.addr, &body, "k502").status, 502);
}

#[test]
fn upstream_slow_is_504_and_the_key_stays_in_flight_until_it_expires() {
    let rx = Receiver::start();
    let yaml = TestConfig::fynapse(free_port(), &rx.url("/hooks/balances"))
        .dedupe_with("in_flight_timeout", json!("4s"))
        .yaml();
    let gw = start_gateway(&yaml);
    rx.respond(|_, n| Reply {
        delay: if n == 1 {
            Duration::from_secs(6)
        } else {
            Duration::ZERO
        },
        ..Reply::status(200)
    });
    let body = event_body("evt-504", 100);
    let started = std::time::Instant::now();
    let r = deliver(gw.addr, &body, "k504");
    assert_eq!((r.status, r.error()), (504, "upstream_timeout".into()));
    assert!(
        started.elapsed() < Duration::from_millis(3500),
        "upstream.timeout is 2s"
    );
    // The receiver may still be working on it: the sender's retry is told
    // to come back later, and nothing is forwarded.
    let r = deliver(gw.addr, &body, "k504");
    assert_eq!((r.status, r.error()), (409, "in_flight".into()));
    assert!(r.header("retry-after").is_some());
    assert_eq!(rx.count(), 1);
    // Once in_flight_timeout has passed since the reservation, the key is
    // free again and the retry goes through.
    std::thread::sleep(Duration::from_millis(4300).saturating_sub(started.elapsed()));
    let r = deliver(gw.addr, &body, "k504");
    assert_eq!(r.status, 200);
    assert!(r.header("hookgate-duplicate").is_none());
    // This receiver records a request before it answers, so it now holds the
    // delivery twice: one that processes and answers after in_flight_timeout
    // is the duplicate hookgate cannot prevent (it cannot tell a late answer
    // from none). tests/chaos.rs states what is and is not guaranteed.
    assert_eq!(rx.count(), 2);
}

#[test]
fn ambiguous_or_oversized_idempotency_keys_are_refused() {
    let (gw, rx) = setup("");
    let body = event_body("evt-keys", 100);
    let with_keys = |keys: &[&str]| {
        // Signed at a time of its own per case, so no case replays another.
        let mut h: Vec<(&str, String)> = signed_headers(&body, &keys.join("|"))
            .into_iter()
            .filter(|(n, _)| *n != "Idempotency-Key")
            .collect();
        for k in keys {
            h.push(("Idempotency-Key", k.to_string()));
        }
        post(gw.addr, PATH, &h, &body)
    };
    let long = "k".repeat(257);
    for keys in [
        &["k-one", "k-two"][..],
        &["k-one, k-two"],
        &[long.as_str()],
        &["k\tx"],
    ] {
        let r = with_keys(keys);
        assert_eq!(
            (r.status, r.error()),
            (400, "invalid_idempotency_key".into()),
            "{keys:?}"
        );
    }
    assert_eq!(rx.count(), 0, "nothing forwarded");
    // One key said twice is one key.
    assert_eq!(with_keys(&["k-same", "k-same"]).status, 200);
    assert_eq!(
        with_keys(&["k-same"]).header("hookgate-duplicate"),
        Some("true")
    );
    assert_eq!(with_keys(&[&"k".repeat(256)]).status, 200);
    assert_eq!(rx.count(), 2);
}

#[test]
fn headers_hookgate_relied_on_are_forwarded_even_if_named_in_connection() {
    let (gw, rx) = setup("");
    let body = event_body("evt-conn", 100);
    let mut h = signed_headers(&body, "k-conn");
    h.push((
        "Connection",
        "Idempotency-Key, Webhook-Signature, X-Other".into(),
    ));
    h.push(("X-Other", "hop".into()));
    let r = post(gw.addr, PATH, &h, &body);
    assert_eq!(r.status, 200);
    let got = rx.last();
    assert_eq!(got.header("idempotency-key").as_deref(), Some("k-conn"));
    assert!(got.header("webhook-signature").is_some());
    // Other headers named in Connection are hop-by-hop, as before.
    assert_eq!(got.header("x-other"), None);
}

#[test]
fn upstream_closing_without_an_answer_is_502() {
    // A "receiver" that accepts, reads a little and closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let mut s = s;
            let mut buf = [0u8; 1024];
            let _ = std::io::Read::read(&mut s, &mut buf);
            drop(s);
        }
    });
    let gw = start_gateway(&config_yaml(
        free_port(),
        &format!("http://{addr}/x"),
        "",
        "",
    ));
    let body = event_body("evt-close", 100);
    let r = deliver(gw.addr, &body, "kclose");
    assert_eq!((r.status, r.error()), (502, "upstream_unreachable".into()));
}

#[test]
fn monitor_mode_forwards_failures_marked_unverified() {
    let rx = Receiver::start();
    let mut config = TestConfig::fynapse(free_port(), &rx.url("/m"));
    config.routes[0]["verify"]["enforce"] = json!(false);
    let yaml = config.yaml();
    let gw = start_gateway(&yaml);
    let body = event_body("evt-monitor", 100);
    let mut h = signed_headers(&body, "mon");
    h[1].1 = fynapse_signature("wrong", &body, now());
    h.push(("X-Hookgate-Verified", "true".into()));
    assert_eq!(post(gw.addr, PATH, &h, &body).status, 200);
    assert_eq!(
        rx.last().header("x-hookgate-verified").as_deref(),
        Some("false")
    );
    // A forged request in monitor mode never touches the cache: the same key,
    // validly signed, is not a duplicate.
    let r = deliver(gw.addr, &body, "mon");
    assert!(r.header("hookgate-duplicate").is_none());
    assert_eq!(
        rx.last().header("x-hookgate-verified").as_deref(),
        Some("true")
    );
    // Unsigned requests are forwarded too.
    let h: Vec<_> = signed_headers(&body, "mon2")
        .into_iter()
        .filter(|(k, _)| *k != "Webhook-Signature")
        .collect();
    assert_eq!(post(gw.addr, PATH, &h, &body).status, 200);
    assert_eq!(rx.count(), 3);
}

#[test]
fn keep_alive_survives_a_401_and_carries_a_big_request() {
    let (gw, rx) = setup("");
    let body = event_body("evt-ka", 300_000);
    let mut c = Conn::open(gw.addr);
    let mut forged = signed_headers(&body, "ka");
    forged[1].1 = fynapse_signature("nope", &body, now());
    let r = c.request(&request_bytes("POST", PATH, &forged, &body));
    assert_eq!(r.status, 401);
    let r = c.request(&request_bytes(
        "POST",
        PATH,
        &signed_headers(&body, "ka"),
        &body,
    ));
    assert_eq!(r.status, 200);
    let r = c.request(&request_bytes(
        "POST",
        PATH,
        &signed_headers(&body, "ka2"),
        &body,
    ));
    assert_eq!(r.status, 200);
    assert_eq!(rx.count(), 2);
}

#[test]
fn expect_100_continue_is_answered() {
    let (gw, rx) = setup("");
    let body = event_body("evt-expect", 5000);
    let mut h = signed_headers(&body, "expect");
    h.push(("Expect", "100-continue".into()));
    h.push(("Connection", "close".into()));
    let bytes = request_bytes("POST", PATH, &h, &body);
    let split = bytes.len() - body.len();
    let mut c = Conn::open(gw.addr);
    c.write(&bytes[..split]).unwrap();
    // The gateway answers 100 before the body is sent.
    let interim = c.read_head();
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    c.write(&bytes[split..]).unwrap();
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 200);
    assert!(
        rx.last().header("expect").is_none(),
        "Expect is hop-by-hop here: hookgate answered it"
    );
}

#[test]
fn several_routes_and_prefixes() {
    let rx = Receiver::start();
    let more = format!(
        r#"
  - name: prefixed
    path_prefix: /hooks/
    upstream: {{ url: "{}" }}
    verify: {{ scheme: fynapse, secrets: [ {{ value: prefix-secret }} ] }}
    idempotency: {{ key: none }}
    forward:
      strip_signature: true
      headers: {{ X-Webhook-Source: fynapse }}
"#,
        rx.url("/in/")
    );
    let gw = start_gateway(&config_yaml(free_port(), &rx.url("/a"), "", &more));
    let body = event_body("evt-prefix", 100);
    let h = vec![
        ("Content-Type", "application/json".to_string()),
        (
            "Webhook-Signature",
            fynapse_signature("prefix-secret", &body, now()),
        ),
    ];
    let r = post(gw.addr, "/hooks/tenant-7/balances?x=1", &h, &body);
    assert_eq!(r.status, 200);
    let got = rx.last();
    assert_eq!(got.target, "/in/tenant-7/balances?x=1");
    assert!(got.header("webhook-signature").is_none(), "strip_signature");
    assert_eq!(got.header("x-webhook-source").as_deref(), Some("fynapse"));
    assert_eq!(got.header("x-hookgate-route").as_deref(), Some("prefixed"));
    // The fynapse secret does not open the prefixed route.
    let h = signed_headers(&body, "x");
    assert_eq!(post(gw.addr, "/hooks/a", &h, &body).status, 401);
    // Dot segments never reach the receiver.
    assert_eq!(post(gw.addr, "/hooks/../admin", &h, &body).status, 404);
}

#[test]
fn a_full_memory_store_never_evicts_a_delivery_in_flight() {
    let rx = Receiver::start();
    rx.respond(|r, _| Reply {
        delay: if r
            .header("idempotency-key")
            .is_some_and(|k| k.starts_with("slow"))
        {
            Duration::from_millis(1500)
        } else {
            Duration::ZERO
        },
        ..Reply::status(200)
    });
    let admin = free_port();
    let yaml = TestConfig::fynapse(free_port(), &rx.url("/hooks/balances"))
        .server_with("admin", json!(format!("127.0.0.1:{admin}")))
        .dedupe_with("max_entries", json!(6))
        .yaml();
    let gw = start_gateway(&yaml);
    let addr = gw.addr;
    let body = event_body("evt-full", 100);
    let b = body.clone();
    let first = std::thread::spawn(move || deliver(addr, &b, "slow-1"));
    while rx.count() == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Each delivery holds two identities (its key and its signature). More
    // new deliveries than the store holds: delivered ones make room, the
    // reservations stay.
    for i in 0..6 {
        assert_eq!(deliver(addr, &body, &format!("fast-{i}")).status, 200);
    }
    let r = deliver(addr, &body, "slow-1");
    assert_eq!(
        (r.status, r.error()),
        (409, "in_flight".into()),
        "a duplicate in flight"
    );
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    let page = String::from_utf8(get(admin, "/metrics").body).unwrap();
    assert!(page.contains("hookgate_dedupe_evictions_total 8"), "{page}");
    // A store full of deliveries in flight refuses a new one, to be retried.
    let b = body.clone();
    let second = std::thread::spawn(move || deliver(addr, &b, "slow-2"));
    let b = body.clone();
    let third = std::thread::spawn(move || deliver(addr, &b, "slow-3"));
    while rx.count() < 9 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = deliver(addr, &body, "fast-late");
    assert_eq!((r.status, r.error()), (503, "dedupe_unavailable".into()));
    assert!(r.header("retry-after").is_some());
    for t in [first, second, third] {
        assert_eq!(t.join().unwrap().status, 200);
    }
    assert_eq!(rx.count(), 9, "nothing forwarded twice");
}

#[test]
fn a_renamed_route_keeps_its_keys_through_its_namespace() {
    let rx = Receiver::start();
    let port = free_port();
    let config = TestConfig::fynapse(port, &rx.url("/hooks/balances"));
    let gw = start_gateway(&config.yaml());
    let body = event_body("evt-rename", 100);
    assert_eq!(deliver(gw.addr, &body, "k-rename").status, 200);
    let reload = |c: TestConfig| {
        let c = hookgate::config::from_yaml(&c.yaml(), "t.yaml").unwrap();
        gw.gateway.reload(&c);
    };
    // Renamed, keeping its namespace: the delivery is still known.
    let mut renamed = config.clone();
    renamed.routes[0]["name"] = json!("fynapse-v2");
    renamed.routes[0]["idempotency"] = json!({ "namespace": "fynapse" });
    reload(renamed);
    let r = deliver(gw.addr, &body, "k-rename");
    assert_eq!(r.header("hookgate-duplicate"), Some("true"), "{r:?}");
    assert_eq!(rx.count(), 1);
    // Renamed without it: a new namespace, so the key is new there.
    let mut renamed = config.clone();
    renamed.routes[0]["name"] = json!("fynapse-v3");
    reload(renamed);
    assert_eq!(deliver(gw.addr, &body, "k-rename").status, 200);
    assert_eq!(rx.count(), 2);
}
