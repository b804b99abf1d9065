//! Exhaustion, end to end (issue 12, items 8 and 9): idle keep-alive
//! connections, slow and partial headers, too many connections, and bodies
//! that together would hold more memory than `server.max_buffered`.
//!
//! Deadlines here are short (1–2 s) and every wait is bounded generously
//! above them: the tests assert what happens (closed, `408`, `503`), never
//! how fast.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;

use common::*;
use hookgate::server::RunningGateway;

const PATH: &str = "/webhooks/fynapse";

/// A gateway and receiver with the standard route and these `server:` keys.
fn setup_with(server: &[(&str, serde_json::Value)], max_body: &str) -> (RunningGateway, Receiver) {
    let rx = Receiver::start();
    let mut c = TestConfig::fynapse(free_port(), &rx.url("/hooks/balances"))
        .with("max_body", json!(max_body));
    for (k, v) in server {
        c = c.server_with(k, v.clone());
    }
    (start_gateway(&c.yaml()), rx)
}

/// The head of a signed delivery of `body`, declaring `framing`.
fn signed_head(body: &[u8], key: &str, framing: &str) -> Vec<u8> {
    let sig = fynapse_signature(SECRET, body, now());
    format!(
        "POST {PATH} HTTP/1.1\r\nHost: hooks.test\r\nContent-Type: application/json\r\n\
         Webhook-Signature: {sig}\r\nIdempotency-Key: {key}\r\n{framing}\r\n"
    )
    .into_bytes()
}

fn forged(key: &str) -> Vec<u8> {
    let body = event_body(key, 200);
    let headers = vec![
        ("Content-Type", "application/json".to_string()),
        (
            "Webhook-Signature",
            format!("t={},v1={}", now(), "ab".repeat(32)),
        ),
        ("Idempotency-Key", key.to_string()),
    ];
    request_bytes("POST", PATH, &headers, &body)
}

/// Reads until the end of the stream (or `limit`): what the gateway wrote
/// before closing, and whether it closed.
fn read_to_close(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = vec![];
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (out, false)
            }
            Err(_) => return (out, true),
        }
    }
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_any_answer() {
    let (gw, rx) = setup_with(
        &[
            ("idle_timeout", json!("1s")),
            ("header_timeout", json!("5s")),
        ],
        "1MiB",
    );
    // After a forged request's 401, the connection is kept, then closed.
    let mut c = Conn::open(gw.addr);
    assert_eq!(c.request(&forged("forged-1")).status, 401);
    assert!(c.is_closed(Duration::from_secs(10)), "idle after a 401");

    // After a delivery, the same; and a request within the idle time is
    // served on the same connection.
    let mut c = Conn::open(gw.addr);
    let body = event_body("evt-idle-1", 300);
    let r = c.request(&request_bytes(
        "POST",
        PATH,
        &signed_headers(&body, "idle-1"),
        &body,
    ));
    assert_eq!(r.status, 200);
    let body = event_body("evt-idle-2", 300);
    let r = c.request(&request_bytes(
        "POST",
        PATH,
        &signed_headers(&body, "idle-2"),
        &body,
    ));
    assert_eq!(r.status, 200, "a prompt second request is served");
    assert!(c.is_closed(Duration::from_secs(10)), "idle after a 200");
    assert_eq!(rx.count(), 2);
}

#[test]
fn a_header_must_arrive_whole_within_header_timeout() {
    let (gw, rx) = setup_with(
        &[
            ("idle_timeout", json!("30s")),
            ("header_timeout", json!("1s")),
        ],
        "1MiB",
    );
    // A connection that sends nothing is closed without an answer.
    let mut s = TcpStream::connect(gw.addr).unwrap();
    let (bytes, closed) = read_to_close(&mut s, Duration::from_secs(10));
    assert!(
        closed && bytes.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );

    // A partial header: 408 header_timeout, then closed.
    let mut c = Conn::open(gw.addr);
    c.write(b"POST /webhooks/fynapse HTTP/1.1\r\nHost: hooks.test\r\n")
        .unwrap();
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.error().as_str()), (408, "header_timeout"));
    assert!(r.header("x-request-id").is_some());
    assert!(c.is_closed(Duration::from_secs(10)));

    // A header trickled a byte at a time, each read well within any per-read
    // timeout: the whole header is what is bounded.
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let head = signed_head(b"{}", "slow", "Content-Length: 2\r\n");
    let mut sent = 0;
    for b in &head {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        sent += 1;
        // Waits 100 ms for an answer (or the end) between bytes.
        if TcpStream::peek(&s, &mut [0u8; 1]).is_ok() {
            break;
        }
    }
    assert!(sent < head.len(), "the whole header went through");
    let (bytes, closed) = read_to_close(&mut s, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("header_timeout") && closed, "{text}");

    // On a kept connection, the deadline runs from the next request's first
    // byte: a prompt delivery, then a partial header.
    let mut c = Conn::open(gw.addr);
    let body = event_body("evt-header-1", 300);
    let r = c.request(&request_bytes(
        "POST",
        PATH,
        &signed_headers(&body, "h-1"),
        &body,
    ));
    assert_eq!(r.status, 200);
    c.write(b"POST /webhooks/fynapse HTTP/1.1\r\n").unwrap();
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.error().as_str()), (408, "header_timeout"));
    assert_eq!(rx.count(), 1);

    // Headers that arrive in time are unaffected.
    assert_eq!(
        deliver(gw.addr, &event_body("evt-header-2", 300), "h-2").status,
        200
    );
}

#[test]
fn max_connections_bounds_the_open_client_connections() {
    let (gw, rx) = setup_with(
        &[
            ("max_connections", json!(3)),
            ("idle_timeout", json!("60s")),
            ("header_timeout", json!("60s")),
        ],
        "1MiB",
    );
    // Three connections that send nothing hold every place.
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(gw.addr).unwrap())
        .collect();
    // Once the gateway has taken them (accepted and started serving, which a
    // loaded machine may delay), a fourth is closed on arrival. Until then a
    // fourth may still find a place: try again, for a bounded time.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let mut extra = TcpStream::connect(gw.addr).unwrap();
        let (bytes, closed) = read_to_close(&mut extra, Duration::from_secs(3));
        if closed {
            assert!(bytes.is_empty(), "closed without an answer");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a fourth connection is closed on arrival"
        );
    }
    assert_eq!(rx.count(), 0);

    // A place freed is a place taken again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = event_body("evt-conn", 300);
    loop {
        let mut c = TcpStream::connect(gw.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut h = signed_headers(&body, "conn-1");
        h.push(("Connection", "close".into()));
        let _ = c.write_all(&request_bytes("POST", PATH, &h, &body));
        let mut raw = vec![];
        let _ = c.read_to_end(&mut raw);
        if raw.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "no place was freed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(rx.count(), 1);
}

/// Sends `body`'s head and all but its last `held_back` bytes; the gateway
/// holds the request (and its lease) until the rest comes.
fn start_upload(addr: SocketAddr, body: &[u8], key: &str, held_back: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let head = signed_head(body, key, &format!("Content-Length: {}\r\n", body.len()));
    s.write_all(&head).unwrap();
    s.write_all(&body[..body.len() - held_back]).unwrap();
    s
}

fn finish_upload(mut s: TcpStream, body: &[u8], held_back: usize) -> Response {
    s.write_all(&body[body.len() - held_back..]).unwrap();
    read_response_from(&mut std::io::BufReader::new(s)).unwrap()
}

#[test]
fn bodies_held_at_once_are_bounded_by_max_buffered() {
    let (gw, rx) = setup_with(
        &[
            ("max_buffered", json!("1MiB")),
            ("body_timeout", json!("20s")),
        ],
        "8MiB",
    );
    // One upload of 700 KiB, held open: its whole length is leased.
    let a_body = event_body("evt-held", 700 << 10);
    let a = start_upload(gw.addr, &a_body, "held", 10);
    std::thread::sleep(Duration::from_millis(200));

    // Another 700 KiB would pass 1 MiB: 503 overloaded + Retry-After,
    // answered from the head alone (no body byte sent).
    let b_body = event_body("evt-second", 700 << 10);
    let mut c = Conn::open(gw.addr);
    c.write(&signed_head(
        &b_body,
        "second",
        &format!("Content-Length: {}\r\n", b_body.len()),
    ))
    .unwrap();
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.error().as_str()), (503, "overloaded"));
    assert_eq!(r.header("retry-after"), Some("5"));

    // A chunked body is leased as it grows: refused once it would pass.
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    s.write_all(&signed_head(
        &b_body,
        "chunked",
        "Transfer-Encoding: chunked\r\n",
    ))
    .unwrap();
    for piece in b_body.chunks(32 << 10) {
        let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
        chunk.extend_from_slice(piece);
        chunk.extend_from_slice(b"\r\n");
        if s.write_all(&chunk).is_err() {
            break;
        }
        if TcpStream::peek(&s, &mut [0u8; 1]).is_ok_and(|n| n > 0) {
            break;
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let r = read_response_from(&mut std::io::BufReader::new(s)).unwrap();
    assert_eq!((r.status, r.error().as_str()), (503, "overloaded"));
    assert_eq!(rx.count(), 0, "nothing forwarded");

    // The held upload completes and is forwarded; its lease is given back,
    // so the refused one now goes through.
    assert_eq!(finish_upload(a, &a_body, 10).status, 200);
    // (The lease ends with the request, just after its answer: allow that
    // moment.)
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut r = deliver(gw.addr, &b_body, "second");
    while r.status == 503 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        r = deliver(gw.addr, &b_body, "second");
    }
    assert_eq!(r.status, 200);
    assert_eq!(rx.count(), 2);
}

/// This process's resident set, in KiB (the gateway runs in it).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The figure in BENCHMARKS.md: forged uploads of 16 MiB, each stopped one
/// byte short, against `max_buffered: 64MiB`; RSS before, while they are
/// held, and after they ended.
/// `cargo test --test exhaustion -- --ignored --nocapture rss`
#[test]
#[ignore = "a measurement: prints RSS figures"]
fn rss_under_slow_uploads_stays_within_max_buffered() {
    let (gw, _rx) = setup_with(
        &[
            ("max_buffered", json!("64MiB")),
            ("body_timeout", json!("30s")),
            ("threads", json!(2)),
        ],
        "16MiB",
    );
    let body = vec![b'x'; 16 << 20];
    let before = rss_kib();
    let uploads = 32;
    let mut held = vec![];
    let mut refused = 0;
    for _ in 0..uploads {
        let mut s = TcpStream::connect(gw.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let head = format!(
            "POST {PATH} HTTP/1.1\r\nHost: hooks.test\r\nContent-Type: application/json\r\n\
             Webhook-Signature: t={},v1={}\r\nContent-Length: {}\r\n\r\n",
            now(),
            "ab".repeat(32),
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        // An overloaded answer arrives before the body; stop there.
        if TcpStream::peek(&s, &mut [0u8; 1]).is_ok_and(|n| n > 0) {
            refused += 1;
            continue;
        }
        let _ = s.write_all(&body[..body.len() - 1]);
        held.push(s);
    }
    std::thread::sleep(Duration::from_secs(1));
    let during = rss_kib();
    drop(held);
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib();
    println!(
        "uploads {uploads} of 16 MiB (one byte short), max_buffered 64 MiB: \
         held {}, refused {refused}; RSS before {} MiB, during {} MiB, after {} MiB",
        uploads - refused,
        before >> 10,
        during >> 10,
        after >> 10
    );
    assert!(refused >= uploads - 4, "at most 4 x 16 MiB fit in 64 MiB");
    assert!(
        during < before + (64 << 10) + (64 << 10),
        "RSS {during} KiB"
    );
    assert!(after < before + (16 << 10), "RSS after {after} KiB");
    drop(gw);
}
