//! Hostile input, end to end: request smuggling shapes, path tricks and a
//! flood of unique keys, against the real gateway and a real receiver.
//!
//! The rule for every framing trick: the request is either refused (Pingora's
//! `400`, or the connection closed without an answer) and the receiver gets
//! nothing, or it is normalised and the receiver gets exactly one request,
//! framed by a `Content-Length` equal to the body it carries, with no
//! `Transfer-Encoding`. Never two readings of one request.

mod common;

use serde_json::json;
use std::time::Duration;

use common::*;

const PATH: &str = "/webhooks/fynapse";

/// A signed request head for `body` (without the framing headers, which
/// `framing` supplies), ending with the blank line.
fn signed_head(version: &str, framing: &str, body: &[u8], key: &str) -> Vec<u8> {
    let sig = fynapse_signature(SECRET, body, signing_time(key));
    format!(
        "POST {PATH} {version}\r\nHost: hooks.test\r\nContent-Type: application/json\r\n\
         Webhook-Signature: {sig}\r\nIdempotency-Key: {key}\r\n{framing}\r\n"
    )
    .into_bytes()
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n0\r\n\r\n");
    out
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn ambiguous_framing_is_refused_and_nothing_is_forwarded() {
    let (gw, rx) = setup("");
    let body = event_body("evt-smuggle", 100);
    let n = body.len();
    let te = "Transfer-Encoding: chunked\r\n";
    let shapes: Vec<(&str, &str, String, Vec<u8>)> = vec![
        (
            "two different Content-Length lines",
            "HTTP/1.1",
            format!("Content-Length: {n}\r\nContent-Length: {}\r\n", n + 1),
            body.clone(),
        ),
        (
            "a Content-Length list that disagrees",
            "HTTP/1.1",
            format!("Content-Length: {n}, {}\r\n", n + 1),
            body.clone(),
        ),
        (
            "Content-Length with a leading +",
            "HTTP/1.1",
            format!("Content-Length: +{n}\r\n"),
            body.clone(),
        ),
        (
            "negative Content-Length",
            "HTTP/1.1",
            "Content-Length: -1\r\n".into(),
            body.clone(),
        ),
        (
            "hex Content-Length",
            "HTTP/1.1",
            format!("Content-Length: 0x{n:x}\r\n"),
            body.clone(),
        ),
        (
            "Content-Length with an inner space",
            "HTTP/1.1",
            "Content-Length: 1 00\r\n".into(),
            body.clone(),
        ),
        (
            "obs-fold in Content-Length",
            "HTTP/1.1",
            format!("Content-Length:\r\n {n}\r\n"),
            body.clone(),
        ),
        (
            "obs-fold in another header",
            "HTTP/1.1",
            format!("Content-Length: {n}\r\nX-Folded: a\r\n\tb\r\n"),
            body.clone(),
        ),
        (
            "Transfer-Encoding: chunked with junk after it",
            "HTTP/1.1",
            "Transfer-Encoding: chunked, junk\r\n".into(),
            chunked(&body),
        ),
        (
            "Transfer-Encoding: xchunked",
            "HTTP/1.1",
            "Transfer-Encoding: xchunked\r\n".into(),
            chunked(&body),
        ),
        (
            "chunked, then identity on a second line",
            "HTTP/1.1",
            format!("{te}Transfer-Encoding: identity\r\n"),
            chunked(&body),
        ),
        (
            "a space before the colon",
            "HTTP/1.1",
            "Transfer-Encoding : chunked\r\n".into(),
            chunked(&body),
        ),
        (
            "Transfer-Encoding on HTTP/1.0",
            "HTTP/1.0",
            te.into(),
            chunked(&body),
        ),
        (
            "a chunk size that is not hex",
            "HTTP/1.1",
            te.into(),
            b"zz\r\nabc\r\n0\r\n\r\n".to_vec(),
        ),
        (
            "a chunk size that overflows",
            "HTTP/1.1",
            te.into(),
            b"fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n".to_vec(),
        ),
        (
            "a negative chunk size",
            "HTTP/1.1",
            te.into(),
            b"-5\r\nabcde\r\n0\r\n\r\n".to_vec(),
        ),
    ];
    for (i, (name, version, framing, payload)) in shapes.into_iter().enumerate() {
        let head = signed_head(version, &framing, &body, &format!("refused-{i}"));
        let r = exchange_raw(gw.addr, &join(&[&head, &payload]));
        assert!(
            r.as_ref().is_none_or(|r| r.status == 400),
            "{name}: {:?}",
            r.map(|r| r.status)
        );
        assert_eq!(rx.accepts(), 0, "{name} reached the receiver");
    }
    // The gateway keeps serving, and none of those keys was touched.
    assert_eq!(deliver(gw.addr, &body, "refused-0").status, 200);
    assert_eq!(rx.count(), 1);
}

#[test]
fn reconcilable_framing_is_forwarded_once_with_one_content_length() {
    let (gw, rx) = setup("");
    let body = event_body("evt-normalised", 100);
    let n = body.len();
    let mut chunk_ext = format!("{n:x};name=value\r\n").into_bytes();
    chunk_ext.extend_from_slice(&body);
    chunk_ext.extend_from_slice(b"\r\n0\r\n\r\n");
    let shapes: Vec<(&str, String, Vec<u8>)> = vec![
        (
            // Transfer-Encoding wins (RFC 9112 §6.3); Content-Length is dropped.
            "Content-Length then Transfer-Encoding",
            "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n".into(),
            chunked(&body),
        ),
        (
            "Transfer-Encoding then a larger Content-Length",
            format!(
                "Transfer-Encoding: chunked\r\nContent-Length: {}\r\n",
                n + 50
            ),
            chunked(&body),
        ),
        (
            "two identical Content-Length lines",
            format!("Content-Length: {n}\r\nContent-Length: {n}\r\n"),
            body.clone(),
        ),
        (
            // RFC 9110 §8.6: a list of identical values is that value. The
            // gateway used to answer this 413 (final for Fynapse) while
            // Pingora framed the body by it.
            "an identical Content-Length list",
            format!("Content-Length: {n}, {n}\r\n"),
            body.clone(),
        ),
        (
            "a chunk extension",
            "Transfer-Encoding: chunked\r\n".into(),
            chunk_ext,
        ),
        (
            "Transfer-Encoding in upper case after a tab",
            "Transfer-Encoding:\tCHUNKED\r\n".into(),
            chunked(&body),
        ),
    ];
    for (i, (name, framing, payload)) in shapes.into_iter().enumerate() {
        let before = rx.count();
        let head = signed_head("HTTP/1.1", &framing, &body, &format!("normal-{i}"));
        let r = exchange_raw(gw.addr, &join(&[&head, &payload]));
        assert_eq!(r.map(|r| r.status), Some(200), "{name}");
        let got = rx.all();
        assert_eq!(got.len(), before + 1, "{name}: forwarded exactly once");
        let got = got.last().unwrap();
        assert_eq!(got.body, body, "{name}");
        assert_eq!(got.header("content-length"), Some(n.to_string()), "{name}");
        assert!(got.header("transfer-encoding").is_none(), "{name}");
    }
}

#[test]
fn a_request_smuggled_behind_conflicting_framing_never_reaches_the_receiver() {
    let (gw, rx) = setup("");
    let body = event_body("evt-outer", 100);
    let inner = event_body("evt-inner", 50);
    // A complete, validly signed request hidden where a front end reading
    // the other framing would see it.
    let smuggled = request_bytes("POST", PATH, &signed_headers(&inner, "smuggled"), &inner);
    for (i, framing) in [
        // CL.TE: a reader trusting Content-Length would stop after 4 bytes.
        "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n".to_string(),
        // TE.CL: a reader trusting Content-Length would read past the end.
        format!(
            "Transfer-Encoding: chunked\r\nContent-Length: {}\r\n",
            chunked(&body).len() + smuggled.len()
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let head = signed_head("HTTP/1.1", &framing, &body, &format!("outer-{i}"));
        let mut c = Conn::open(gw.addr);
        c.write(&join(&[&head, &chunked(&body), &smuggled]))
            .unwrap();
        let r = c.read_response().unwrap();
        assert_eq!(r.status, 200, "{framing:?}");
        assert_eq!(r.header("connection"), Some("close"), "{framing:?}");
        assert!(
            c.is_closed(Duration::from_secs(5)),
            "{framing:?}: the connection must close after a request with both framings"
        );
    }
    let keys: Vec<_> = rx
        .all()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap())
        .collect();
    assert_eq!(keys, ["outer-0", "outer-1"]);
    assert!(rx.all().iter().all(|r| r.body == body));
    // The smuggled key was never reserved: sent openly, it goes through once.
    assert_eq!(deliver(gw.addr, &inner, "smuggled").status, 200);
    assert_eq!(rx.count(), 3);
}

#[test]
fn requests_pipelined_behind_a_body_are_never_forwarded_unverified() {
    let (gw, rx) = setup("");
    let body = event_body("evt-pipe", 100);
    let mut forged = signed_headers(&body, "pipe-forged");
    forged[1].1 = fynapse_signature("attacker", &body, now());
    let mut c = Conn::open(gw.addr);
    c.write(&join(&[
        &request_bytes("POST", PATH, &signed_headers(&body, "pipe-1"), &body),
        &request_bytes("POST", PATH, &forged, &body),
        &request_bytes("POST", PATH, &signed_headers(&body, "pipe-3"), &body),
    ]))
    .unwrap();
    let mut statuses = vec![];
    while let Ok(r) = c.read_response() {
        statuses.push(r.status);
    }
    // Pingora 0.9 answers the first and closes (no pipelining); a later
    // version may answer each in turn. Either way each request is read by
    // its own framing and verified on its own.
    assert_eq!(statuses.first(), Some(&200), "{statuses:?}");
    assert!(statuses.get(1).is_none_or(|s| *s == 401), "{statuses:?}");
    let keys: Vec<_> = rx
        .all()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap())
        .collect();
    assert!(!keys.iter().any(|k| k == "pipe-forged"), "{keys:?}");
    assert_eq!(keys[0], "pipe-1");
    assert!(keys.len() <= 2 && keys.iter().filter(|k| *k == "pipe-3").count() <= 1);
    assert!(rx.all().iter().all(|r| r.body == body));
}

#[test]
fn path_tricks_match_only_what_they_should() {
    let rx = Receiver::start();
    let more = format!(
        r#"
  - name: prefixed
    path_prefix: /hooks/
    upstream: {{ url: "{}" }}
    verify: {{ scheme: fynapse, secrets: [ {{ value: {SECRET} }} ] }}
"#,
        rx.url("/in/")
    );
    let gw = start_gateway(&config_yaml(
        free_port(),
        &rx.url("/hooks/balances"),
        "",
        &more,
    ));
    let body = event_body("evt-path", 100);
    let send = |target: &str, key: &str| {
        exchange_raw(
            gw.addr,
            &request_bytes("POST", target, &signed_headers(&body, key), &body),
        )
        .map(|r| (r.status, String::from_utf8_lossy(&r.body).into_owned()))
    };
    let refused = [
        "/webhooks/fynapse/../admin",
        "/webhooks/./fynapse",
        "//webhooks/fynapse",
        "/webhooks//fynapse",
        "/webhooks%2Ffynapse",
        "/webhooks%2ffynapse",
        "/webhooks/fynapse%2F..%2Fadmin",
        "/webhooks/fynapse/",
        "/WEBHOOKS/fynapse",
        "/webhooks/fynapse;x",
        "/webhooks/fynapse%00",
        "/webhooks/fynaps%65",
        "webhooks/fynapse",
        "*",
        "http://hooks.test//webhooks/fynapse",
        "/hooks/../admin",
        "/hooks/a/../../admin",
        "/hooks/%2e%2e/admin",
        "/hooks/.%2E/admin",
        "/hooks/%2E/x",
        "/hooks/a%2fb",
        "/hooks/a%5cb",
        "/hooks/a\\..\\b",
        "/hooks//a",
        "/hooks///etc/passwd",
        "/hooks/a//b",
        "/hooks",
        // Path parameters: Tomcat, Jetty and Spring read `..;` as `..`.
        "/hooks/..;/admin",
        "/hooks/a;x=1/b",
        "/hooks/..%3b/admin",
        "/hooks/..%3B/admin",
        "/hooks/a;",
    ];
    for (i, p) in refused.iter().enumerate() {
        let r = send(p, &format!("refused-{i}"));
        assert_eq!(r, Some((404, r#"{"error":"no_route"}"#.into())), "{p}");
    }
    assert_eq!(rx.accepts(), 0, "no trick reached the receiver");
    // An authority that disagrees with Host is refused by Pingora.
    let r = send("http://elsewhere.test/webhooks/fynapse", "authority");
    assert_eq!(r.map(|r| r.0), Some(400));
    assert_eq!(rx.accepts(), 0);

    // What must match, and where it goes. Queries are passed on verbatim:
    // they never change the upstream path.
    let matched = [
        ("/webhooks/fynapse", "/hooks/balances"),
        ("/webhooks/fynapse?x=1", "/hooks/balances?x=1"),
        (
            "/webhooks/fynapse?next=/../admin&a=%2F",
            "/hooks/balances?next=/../admin&a=%2F",
        ),
        ("/webhooks/fynapse?", "/hooks/balances?"),
        ("/webhooks/fynapse#fragment", "/hooks/balances"),
        ("http://hooks.test/webhooks/fynapse", "/hooks/balances"),
        ("/hooks/tenant/7", "/in/tenant/7"),
        ("/hooks/a/b?c=../../d", "/in/a/b?c=../../d"),
        ("/hooks/a%20b", "/in/a%20b"),
        ("/hooks/", "/in/"),
    ];
    for (i, (p, upstream)) in matched.iter().enumerate() {
        let before = rx.count();
        let r = send(p, &format!("matched-{i}"));
        assert_eq!(r.map(|r| r.0), Some(200), "{p}");
        assert_eq!(rx.count(), before + 1, "{p}");
        assert_eq!(rx.last().target, *upstream, "{p}");
    }
}

#[test]
fn a_flood_of_unique_keys_keeps_the_cache_within_max_entries() {
    let rx = Receiver::start();
    let yaml = TestConfig::fynapse(free_port(), &rx.url("/h"))
        .dedupe_with("max_entries", json!(100))
        .yaml();
    let gw = start_gateway(&yaml);
    let store = gw.gateway.store().clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = event_body("evt-flood", 200);

    // Forged requests never touch the cache, however many.
    let mut c = Conn::open(gw.addr);
    for i in 0..300 {
        let mut h = signed_headers(&body, &format!("forged-{i}"));
        h[1].1 = fynapse_signature("attacker", &body, now());
        assert_eq!(
            c.request(&request_bytes("POST", PATH, &h, &body)).status,
            401
        );
    }
    rt.block_on(store.sync());
    assert_eq!(store.entry_count(), Some(0));

    // Valid ones, 6 × max_entries of them: each is forwarded once and the
    // cache stays within its bound (oldest keys are evicted first).
    let n = 600;
    for i in 0..n {
        let r = c.request(&request_bytes(
            "POST",
            PATH,
            &signed_headers(&body, &format!("flood-{i}")),
            &body,
        ));
        assert_eq!(r.status, 200, "flood-{i}");
        assert!(r.header("hookgate-duplicate").is_none());
        if i % 100 == 99 {
            rt.block_on(store.sync());
            let count = store.entry_count().unwrap();
            assert!(count <= 100, "after {} keys: {count} entries", i + 1);
        }
    }
    assert_eq!(rx.count(), n);
    rt.block_on(store.sync());
    let count = store.entry_count().unwrap();
    assert!((1..=100).contains(&count), "{count}");
    // The newest key is still remembered.
    let r = c.request(&request_bytes(
        "POST",
        PATH,
        &signed_headers(&body, &format!("flood-{}", n - 1)),
        &body,
    ));
    assert_eq!(r.header("hookgate-duplicate"), Some("true"));
    assert_eq!(rx.count(), n);
}
