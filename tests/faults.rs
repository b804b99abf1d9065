//! Faults, end to end: what the receiver, the network or the client gets
//! wrong, and what hookgate makes of it. The rule throughout: a delivery the
//! receiver did not answer `2xx` leaves its key free, so the sender's retry
//! goes through; one it did answer `2xx` is never forwarded again.
//!
//! Covered in `tests/gateway.rs` and not repeated here: a receiver that is
//! down (`upstream_down_is_502_and_the_key_is_released`), slower than the
//! timeout (`upstream_slow_is_504_and_the_key_is_released`) or closing
//! without an answer (`upstream_closing_without_an_answer_is_502`), and a
//! body that stops arriving (`slow_body_is_408_and_the_connection_closes`).

mod common;

use serde_json::json;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hookgate::server::RunningGateway;

const PATH: &str = "/webhooks/fynapse";

fn gateway_to(url: &str) -> RunningGateway {
    start_gateway(&config_yaml(free_port(), url, "", ""))
}

/// Polls `cond` every 20 ms for at most `limit`.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn receiver_down_then_back_on_the_same_gateway() {
    let port = free_port();
    let gw = gateway_to(&format!("http://127.0.0.1:{port}/hooks"));
    let body = event_body("evt-down", 100);
    for _ in 0..2 {
        // 502 each time, never 409: the key was released.
        let r = deliver(gw.addr, &body, "k-down");
        assert_eq!((r.status, r.error()), (502, "upstream_unreachable".into()));
    }
    let rx = RawReceiver::start_on(listen(format!("127.0.0.1:{port}").parse().unwrap()).unwrap());
    let r = deliver(gw.addr, &body, "k-down");
    assert_eq!(r.status, 200);
    assert!(r.header("hookgate-duplicate").is_none());
    let r = deliver(gw.addr, &body, "k-down");
    assert_eq!(r.header("hookgate-duplicate"), Some("true"));
    assert_eq!(rx.count(), 1);
}

#[test]
fn receiver_that_never_answers_is_504_and_the_connection_is_dropped() {
    let rx = RawReceiver::start();
    rx.respond(|_, n| {
        if n == 1 {
            RawAction::Hang
        } else {
            RawAction::Answer {
                delay: Duration::ZERO,
                bytes: raw_answer(200, &[], b"ok"),
            }
        }
    });
    let gw = start_gateway(
        &TestConfig::fynapse(free_port(), &rx.url("/hooks"))
            .dedupe_with("in_flight_timeout", json!("3s"))
            .yaml(),
    );
    let body = event_body("evt-hang", 100);
    let started = Instant::now();
    let r = deliver(gw.addr, &body, "k-hang");
    assert_eq!((r.status, r.error()), (504, "upstream_timeout".into()));
    assert!(
        started.elapsed() < Duration::from_millis(3500),
        "timeout is 2s"
    );
    // hookgate gives the connection up rather than leave it hanging.
    assert!(eventually(Duration::from_secs(10), || rx
        .hung_then_closed()
        == 1));
    // The receiver may still process it: the key stays in flight until the
    // reservation expires (in_flight_timeout after it was made), then the
    // sender's retry goes through.
    let r = deliver(gw.addr, &body, "k-hang");
    assert_eq!((r.status, r.error()), (409, "in_flight".into()));
    std::thread::sleep(Duration::from_millis(3300).saturating_sub(started.elapsed()));
    let r = deliver(gw.addr, &body, "k-hang");
    assert_eq!(r.status, 200, "the reservation expired");
    assert_eq!(r.body, b"ok");
    let r = deliver(gw.addr, &body, "k-hang");
    assert_eq!(r.header("hookgate-duplicate"), Some("true"));
    assert_eq!(rx.count(), 2);
}

#[test]
fn receiver_resetting_before_it_answers_is_502_and_the_key_is_released() {
    let rx = RawReceiver::start();
    rx.respond(|_, n| {
        if n == 1 {
            RawAction::Reset
        } else {
            RawAction::Answer {
                delay: Duration::ZERO,
                bytes: raw_answer(201, &[], b"created"),
            }
        }
    });
    let gw = gateway_to(&rx.url("/hooks"));
    let body = event_body("evt-reset", 100);
    let r = deliver(gw.addr, &body, "k-reset");
    assert_eq!((r.status, r.error()), (502, "upstream_unreachable".into()));
    let r = deliver(gw.addr, &body, "k-reset");
    assert_eq!((r.status, r.body.as_slice()), (201, &b"created"[..]));
    assert_eq!(
        deliver(gw.addr, &body, "k-reset").header("hookgate-duplicate"),
        Some("true")
    );
    assert_eq!(rx.count(), 2);
}

#[test]
fn a_2xx_cut_off_mid_body_still_counts_as_delivered() {
    let rx = RawReceiver::start();
    rx.respond(|_, n| {
        if n == 1 {
            // Promises 100 bytes, sends 10, closes.
            let mut bytes = raw_answer(200, &[], &[b'x'; 100]);
            bytes.truncate(bytes.len() - 90);
            RawAction::AnswerThenClose(bytes)
        } else {
            RawAction::Answer {
                delay: Duration::ZERO,
                bytes: raw_answer(200, &[], b"again"),
            }
        }
    });
    let gw = gateway_to(&rx.url("/hooks"));
    let body = event_body("evt-cut", 100);
    let h = signed_headers(&body, "k-cut");
    let mut c = Conn::open(gw.addr);
    c.write(&request_bytes("POST", PATH, &h, &body)).unwrap();
    // The sender sees the header, then the connection ends early.
    assert!(c.read_response().is_err(), "the answer must come cut off");
    // The receiver said 2xx, so it has the delivery: the sender's retry is
    // answered as a duplicate and not forwarded.
    let r = deliver(gw.addr, &body, "k-cut");
    assert_eq!(r.header("hookgate-duplicate"), Some("true"), "{r:?}");
    assert_eq!(rx.count(), 1);
}

#[test]
fn a_body_trickled_past_body_timeout_is_408_and_the_connection_closes() {
    let (gw, rx) = setup("");
    let body = event_body("evt-trickle", 1000);
    let bytes = request_bytes("POST", PATH, &signed_headers(&body, "k-trickle"), &body);
    let split = bytes.len() - body.len();
    let mut c = Conn::open(gw.addr);
    c.write(&bytes[..split]).unwrap();
    // One byte every 50 ms: never idle for long, but the whole body would
    // take 50 s. body_timeout (2 s) bounds the whole read, not each wait.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut s = c.stream();
        let rest = bytes[split..].to_vec();
        std::thread::spawn(move || {
            for b in rest {
                if stop.load(Ordering::SeqCst) || s.write_all(&[b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let started = Instant::now();
    let r = c.read_response().unwrap();
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert_eq!((r.status, r.error()), (408, "body_timeout".into()));
    assert!(
        elapsed > Duration::from_millis(1500) && elapsed < Duration::from_millis(3500),
        "{elapsed:?}"
    );
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed(Duration::from_secs(5)));
    assert_eq!(rx.accepts(), 0);
    // The key was never touched.
    let r = deliver(gw.addr, &body, "k-trickle");
    assert_eq!(r.status, 200);
    assert!(r.header("hookgate-duplicate").is_none());
    assert_eq!(rx.count(), 1);
}

#[test]
fn a_client_gone_mid_body_forwards_nothing_and_leaves_the_key_untouched() {
    let (gw, rx) = setup("");
    let body = event_body("evt-gone", 4000);
    let h = signed_headers(&body, "k-gone");
    let by_length = request_bytes("POST", PATH, &h, &body);
    let chunked = chunked_request_bytes(PATH, &h, &body, 500);
    for bytes in [&by_length, &chunked] {
        for reset in [false, true] {
            let mut c = Conn::open(gw.addr);
            c.write(&bytes[..bytes.len() / 2]).unwrap();
            if reset {
                c.reset();
            } else {
                drop(c);
            }
        }
    }
    // Give the gateway time to see all four go; nothing may come of them.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.accepts(), 0);
    // The key was never reserved: the full delivery goes through, once.
    let r = deliver(gw.addr, &body, "k-gone");
    assert_eq!(r.status, 200);
    assert!(r.header("hookgate-duplicate").is_none());
    assert_eq!(
        deliver(gw.addr, &body, "k-gone").header("hookgate-duplicate"),
        Some("true")
    );
    assert_eq!(rx.count(), 1);
    assert_eq!(rx.last().body, body);
}

#[test]
fn a_client_gone_while_the_receiver_works_still_settles_the_key() {
    let (gw, rx) = setup("");
    rx.respond(|_, _| Reply {
        delay: Duration::from_millis(600),
        ..Reply::status(200)
    });
    let body = event_body("evt-impatient", 100);
    let mut c = Conn::open(gw.addr);
    c.write(&request_bytes(
        "POST",
        PATH,
        &signed_headers(&body, "k-impatient"),
        &body,
    ))
    .unwrap();
    assert!(eventually(Duration::from_secs(10), || rx.count() == 1));
    // The sender crashes while the receiver processes.
    c.reset();
    // Its retry: 409 while the receiver still works, then a duplicate,
    // because the receiver answered 2xx. Never a second forward.
    let mut statuses = vec![];
    let settled = eventually(Duration::from_secs(10), || {
        let r = deliver(gw.addr, &body, "k-impatient");
        statuses.push(r.status);
        r.status != 409 || {
            std::thread::sleep(Duration::from_millis(100));
            false
        }
    });
    assert!(settled, "{statuses:?}");
    let last = deliver(gw.addr, &body, "k-impatient");
    assert_eq!(
        last.header("hookgate-duplicate"),
        Some("true"),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 409 || *s == 200),
        "{statuses:?}"
    );
    assert_eq!(rx.count(), 1);
}

#[test]
fn a_header_flood_is_refused_and_the_gateway_keeps_serving() {
    let (gw, rx) = setup("");
    let body = event_body("evt-flood", 100);
    let good = signed_headers(&body, "k-flood");

    // More header lines than Pingora parses (256).
    let mut h = good.clone();
    for i in 0..300 {
        h.push(("X-Flood", format!("{i}")));
    }
    let r = exchange_raw(gw.addr, &request_bytes("POST", PATH, &h, &body));
    assert!(r.as_ref().is_none_or(|r| r.status == 400), "{r:?}");

    // A header block over Pingora's 1 MiB.
    let mut h = good.clone();
    h.push(("X-Huge", "a".repeat(2 << 20)));
    let r = exchange_raw(gw.addr, &request_bytes("POST", PATH, &h, &body));
    assert!(r.as_ref().is_none_or(|r| r.status == 400), "{r:?}");

    // Within Pingora's limits (200 × 4 KiB) the request reaches hookgate,
    // which refuses a forged signature before reading the body.
    let mut h = good.clone();
    h[1].1 = fynapse_signature("attacker", &body, now());
    for i in 0..200 {
        h.push(("X-Big", format!("{i}-{}", "b".repeat(4096))));
    }
    let r = exchange_raw(gw.addr, &request_bytes("POST", PATH, &h, &body));
    assert_eq!(r.map(|r| r.status), Some(401));

    // Connections that never finish their header (slowloris) hold no
    // worker: a valid delivery goes through while they hang.
    let hanging: Vec<Conn> = (0..100)
        .map(|i| {
            let mut c = Conn::open(gw.addr);
            c.write(format!("POST {PATH} HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: ").as_bytes())
                .unwrap();
            c
        })
        .collect();
    assert_eq!(rx.accepts(), 0);
    let r = deliver(gw.addr, &body, "k-flood");
    assert_eq!(r.status, 200);
    assert_eq!(rx.count(), 1);
    drop(hanging);
    assert_eq!(
        deliver(gw.addr, &body, "k-flood").header("hookgate-duplicate"),
        Some("true")
    );
    assert_eq!(rx.count(), 1);
}

/// How many deliveries to fire at once: 2000, fewer if the open-file limit
/// could not hold four sockets for each (client, gateway's two, receiver).
fn burst_size() -> usize {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse::<usize>().ok())
        })
        .unwrap_or(1024);
    2000.min(limit.saturating_sub(256) / 4).max(100)
}

#[test]
fn thousands_of_concurrent_first_deliveries_are_each_forwarded_once() {
    let rx = Receiver::start();
    // A generous upstream timeout: this test is about counting, and a
    // loaded machine must not turn a slow answer into a 504 and a retry.
    let yaml = TestConfig::fynapse(free_port(), &rx.url("/h"))
        .with(
            "upstream",
            json!({ "url": rx.url("/h"), "connect_timeout": "10s", "timeout": "60s" }),
        )
        .dedupe_with("in_flight_timeout", json!("90s"))
        .yaml();
    let gw = start_gateway(&yaml);
    let n = burst_size();
    let requests: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let body = event_body(&format!("evt-burst-{i}"), 300);
            let mut h = signed_headers(&body, &format!("burst-{i}"));
            h.push(("Connection", "close".into()));
            request_bytes("POST", PATH, &h, &body)
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = gw.addr;
    let answers: Vec<_> = rt.block_on(async {
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|req| {
                tokio::spawn(async move { post_async(addr, &req, Duration::from_secs(120)).await })
            })
            .collect();
        let mut out = vec![];
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let statuses: Vec<u16> = answers
        .iter()
        .map(|a| a.as_ref().map_or(0, |r| r.status))
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "not all 200: {:?}",
        statuses.iter().filter(|s| **s != 200).collect::<Vec<_>>()
    );
    assert!(answers
        .iter()
        .all(|a| a.as_ref().unwrap().header("hookgate-duplicate").is_none()));
    let mut keys: Vec<String> = rx
        .all()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "each key once");
    assert_eq!(rx.count(), n, "and nothing twice");
    let store = gw.gateway.store().clone();
    rt.block_on(store.sync());
    assert_eq!(
        store.entry_count(),
        Some(2 * n as u64),
        "all settled as delivered, each under its key and its signature"
    );
    // Every one of them is now a duplicate.
    for i in (0..n).step_by(n / 20) {
        let r = deliver(
            gw.addr,
            &event_body(&format!("evt-burst-{i}"), 300),
            &format!("burst-{i}"),
        );
        assert_eq!(r.header("hookgate-duplicate"), Some("true"));
    }
    assert_eq!(rx.count(), n);
}

#[test]
fn a_request_that_timed_out_is_never_sent_again() {
    // Many idle pooled connections, then many requests that the receiver
    // sits on past the upstream timeout. hookgate answers 504 and must not
    // send the same request again on another connection: the receiver has
    // it, and may be processing it.
    let rx = RawReceiver::start();
    rx.respond(|req, _| {
        if req
            .header("idempotency-key")
            .is_some_and(|k| k.starts_with("slow"))
        {
            RawAction::Hang
        } else {
            RawAction::Answer {
                delay: Duration::ZERO,
                bytes: raw_answer(200, &[], b"ok"),
            }
        }
    });
    let gw = gateway_to(&rx.url("/hooks"));
    let body = event_body("evt-timeout", 100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let n = 100;
    let burst = |prefix: &str| {
        let requests: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let mut h = signed_headers(&body, &format!("{prefix}-{i}"));
                h.push(("Connection", "close".into()));
                request_bytes("POST", PATH, &h, &body)
            })
            .collect();
        let addr = gw.addr;
        rt.block_on(async {
            let tasks: Vec<_> = requests
                .into_iter()
                .map(|r| {
                    tokio::spawn(async move { post_async(addr, &r, Duration::from_secs(30)).await })
                })
                .collect();
            let mut statuses = vec![];
            for t in tasks {
                statuses.push(t.await.unwrap().map_or(0, |r| r.status));
            }
            statuses
        })
    };
    assert!(burst("warm").iter().all(|s| *s == 200));
    let statuses = burst("slow");
    assert!(statuses.iter().all(|s| *s == 504), "{statuses:?}");
    let slow = || {
        rx.all()
            .into_iter()
            .filter(|r| r.header("idempotency-key").unwrap().starts_with("slow"))
            .collect::<Vec<_>>()
    };
    // Wait until hookgate has let go of every hung connection.
    assert!(eventually(Duration::from_secs(20), || {
        rx.hung_then_closed() >= slow().len()
    }));
    let mut ids: Vec<String> = slow()
        .iter()
        .map(|r| r.header("x-hookgate-request-id").unwrap().to_string())
        .collect();
    let read = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(read, ids.len(), "a timed-out request was sent again");
    assert_eq!(read, n);
}

#[test]
fn a_request_written_whole_is_never_sent_again_when_the_connection_closes() {
    // The receiver answers the first request, so the connection goes back to
    // the pool; on that reused connection it reads the second request whole
    // and closes without answering. Pingora would call that retryable; the
    // receiver has the request, so hookgate answers 502 and sends nothing
    // again: the sender's retry is the durability.
    let rx = RawReceiver::start();
    rx.respond(|_, n| match n {
        2 => RawAction::AnswerThenClose(Vec::new()),
        _ => RawAction::Answer {
            delay: Duration::ZERO,
            bytes: raw_answer(200, &[], b"ok"),
        },
    });
    let gw = gateway_to(&rx.url("/hooks"));
    let body = event_body("evt-close", 100);
    assert_eq!(deliver(gw.addr, &body, "k-first").status, 200);
    let r = deliver(gw.addr, &body, "k-closed");
    assert_eq!((r.status, r.error()), (502, "upstream_unreachable".into()));
    let seen = |key: &str| {
        rx.all()
            .iter()
            .filter(|r| r.header("idempotency-key") == Some(key))
            .count()
    };
    assert_eq!(seen("k-closed"), 1, "sent once, never again");
    assert_eq!(
        rx.state.accepts.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    // The key was released: the sender's retry is forwarded.
    assert_eq!(deliver(gw.addr, &body, "k-closed").status, 200);
    assert_eq!(seen("k-closed"), 2);
}
