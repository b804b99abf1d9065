//! Chaos: a sender that behaves like Fynapse delivers events through hookgate
//! to a receiver that fails at random, and at the end every event was
//! processed by the receiver exactly once: none lost, none twice.
//!
//! # The parts (all real, on loopback)
//!
//! - **Sender** (tokio tasks, raw HTTP/1.1, a fresh connection per attempt),
//!   Fynapse's policy with time compressed (one protocol second = 10 ms): a
//!   `2xx` ends the delivery; `400 401 402 405 406 410 413` are final (dead
//!   letter: the event would be lost, and the test fails); anything else,
//!   and any network error, is retried: 3 quick micro-retries, then up to 20
//!   attempts with exponential backoff and jitter. `Retry-After` is honoured
//!   (hookgate's `409` says 5 s, the receiver's `503` says 1 s). Each round
//!   is signed anew; one round in ten sends the same delivery twice at once;
//!   one request in twenty stops waiting after 300 ms (before hookgate's
//!   upstream timeout) and counts as a network error; and one delivered
//!   event in ten loses its acknowledgement and is delivered again.
//! - **hookgate**, one fynapse route, `upstream.timeout: 1s`,
//!   `in_flight_timeout: 2s`.
//! - **Receiver** (raw tokio sockets: it must be able to reset a connection)
//!   reads each request whole, then draws its fate, about 30% failing
//!   *before processing*: 7.5% `500`; 7.5% `503` with `Retry-After: 1`;
//!   7.5% reset (RST, no answer); 7.5% a stall of 1.5 × the upstream timeout.
//!   The rest process and answer `200` at once.
//!
//! # The slow case, decided
//!
//! The receiver is transactional: it commits (processes) a delivery only
//! while hookgate still waits for its answer, checking the connection just
//! before it commits. After a stall it finds hookgate gone (hookgate
//! answered `504`, kept the key in flight and closed the connection) and
//! rolls back; the sender's retries get `409` until the reservation expires
//! (`in_flight_timeout` after it was made), and the first one after that is
//! the one that gets processed.
//!
//! # What is proven
//!
//! For every event: the sender ended it with a `2xx` (nothing dead-lettered,
//! nothing out of attempts) and the receiver committed it exactly once;
//! hookgate relayed at most one receiver `2xx` for it (none when the sender
//! had stopped waiting), and each one it relayed is a commit of that event
//! (tied by `X-Hookgate-Request-Id`); every other `2xx` the sender saw was
//! hookgate's own `duplicate`. So hookgate's `2xx` always stands on the
//! receiver's (nothing lost), and a delivery the receiver answered `2xx` in
//! time is never forwarded again (nothing twice) — through double sends,
//! impatient senders, lost acknowledgements and every receiver failure.
//!
//! # What hookgate cannot prevent
//!
//! A receiver that processes and then answers after `upstream.timeout` (or
//! whose answer is lost on the way) has the delivery, but hookgate has
//! answered `504`; once the reservation expires (`in_flight_timeout` after
//! it was made) the sender's retry is forwarded and processed again.
//! hookgate cannot tell a late answer from none (`tests/gateway.rs`
//! `upstream_slow_is_504_and_the_key_stays_in_flight_until_it_expires` shows
//! it). The receiver here avoids it by checking before it commits, but the
//! check and the answer are not atomic: on a machine loaded enough to delay
//! an answer written in time by a whole second, it can still happen. Such a
//! commit is recognisable: hookgate answered that very request non-`2xx`.
//! The test counts those as `late` and, for that event only, accepts
//! `processed == 1 + late`; any other duplicate fails it. `late` is expected
//! to be 0 and is reported.
//!
//! # Running it
//!
//! `cargo test --test chaos` runs the short version (400 events). The long
//! one (5000 events, or `CHAOS_EVENTS`) is ignored by default:
//!
//! ```sh
//! cargo test --test chaos -- --ignored --nocapture
//! CHAOS_EVENTS=20000 CHAOS_SEED=42 cargo test --test chaos -- --ignored --nocapture
//! ```
//!
//! Every run prints its seed; `CHAOS_SEED` replays the same fates (though
//! not the same interleaving).

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// One protocol second, compressed.
const SECOND: Duration = Duration::from_millis(10);
/// hookgate's upstream timeout in this test.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(1);
/// hookgate's `in_flight_timeout`: longer than the upstream timeout (the
/// config refuses less), short next to the sender's compressed retry
/// schedule, as a minute is next to Fynapse's 72 hours.
const IN_FLIGHT_TIMEOUT: Duration = Duration::from_secs(2);
/// Statuses Fynapse does not retry.
const FINAL: [u16; 7] = [400, 401, 402, 405, 406, 410, 413];
/// 3 micro-retries, then 20 attempts.
const MAX_ROUNDS: u32 = 23;
/// At most this many requests in flight from the sender.
const SENDER_CONCURRENCY: usize = 64;

#[test]
fn chaos_short() {
    let events = std::env::var("CHAOS_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    run(events, Duration::from_secs(120));
}

#[test]
#[ignore = "long: thousands of events; see the module doc for the command"]
fn chaos_long() {
    let events = std::env::var("CHAOS_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    run(events, Duration::from_secs(30 * 60));
}

// ---------------------------------------------------------------- randomness

/// SplitMix64: small, seedable, good enough to draw fates.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

// ---------------------------------------------------------------- receiver

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Fate {
    Ok,
    Error500,
    Unavailable503,
    Reset,
    Stall,
}

impl Fate {
    /// Per mille: 700 ok, then 75 each.
    fn draw(rng: &mut Rng) -> Fate {
        match rng.below(1000) {
            0..700 => Fate::Ok,
            700..775 => Fate::Error500,
            775..850 => Fate::Unavailable503,
            850..925 => Fate::Reset,
            _ => Fate::Stall,
        }
    }
}

/// What the receiver saw and did.
#[derive(Default)]
struct Ledger {
    /// Requests read whole, per idempotency key.
    forwarded: HashMap<String, u32>,
    /// Commits: (idempotency key, hookgate's request id).
    commits: Vec<(String, String)>,
    fates: HashMap<Fate, u64>,
    /// Commits abandoned because hookgate had stopped waiting.
    rolled_back: u64,
}

struct ChaosReceiver {
    addr: SocketAddr,
    ledger: Arc<Mutex<Ledger>>,
    _accept: AcceptLoop,
}

impl ChaosReceiver {
    fn start(seed: u64) -> ChaosReceiver {
        let std_listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let l = ledger.clone();
        let mut conn = 0u64;
        let accept = AcceptLoop::start(std_listener, move |stream| {
            conn += 1;
            let rng = Rng::new(seed ^ conn.wrapping_mul(0x2545_F491_4F6C_DD1D));
            tokio::spawn(serve(stream, l.clone(), rng));
        });
        ChaosReceiver {
            addr,
            ledger,
            _accept: accept,
        }
    }
}

async fn serve(mut stream: tokio::net::TcpStream, ledger: Arc<Mutex<Ledger>>, mut rng: Rng) {
    use tokio::io::AsyncWriteExt;
    let mut buf = vec![];
    while let Some(req) = read_raw_request(&mut stream, &mut buf).await {
        let key = req.header("idempotency-key").unwrap_or("").to_string();
        let request_id = req
            .header("x-hookgate-request-id")
            .unwrap_or("")
            .to_string();
        let fate = Fate::draw(&mut rng);
        {
            let mut l = ledger.lock().unwrap();
            *l.forwarded.entry(key.clone()).or_default() += 1;
            *l.fates.entry(fate).or_default() += 1;
        }
        let answer = match fate {
            Fate::Ok | Fate::Stall => {
                if fate == Fate::Stall {
                    tokio::time::sleep(UPSTREAM_TIMEOUT * 3 / 2).await;
                }
                // Commit only while hookgate still waits for the answer.
                let mut l = ledger.lock().unwrap();
                if !peer_waiting(&stream, &mut buf) {
                    l.rolled_back += 1;
                    return;
                }
                l.commits.push((key, request_id));
                raw_answer(200, &[], b"{\"processed\":true}")
            }
            Fate::Error500 => raw_answer(500, &[], b"{\"error\":\"boom\"}"),
            Fate::Unavailable503 => raw_answer(503, &[("Retry-After", "1")], b"{}"),
            Fate::Reset => {
                let _ = stream.set_zero_linger();
                return;
            }
        };
        if stream.write_all(&answer).await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------- sender

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Delivered,
    DeadLetter(u16),
    OutOfAttempts,
    OutOfTime,
}

/// One attempt as the sender saw it.
#[derive(Clone, Debug)]
struct Attempt {
    /// 0: no answer (network error).
    status: u16,
    duplicate: bool,
    request_id: Option<String>,
    /// `Retry-After`, in (protocol) seconds.
    retry_after: Option<u32>,
}

#[derive(Debug)]
struct EventLog {
    key: String,
    attempts: Vec<Attempt>,
    end: End,
}

struct Sender {
    gateway: SocketAddr,
    deadline: Instant,
    limit: Arc<tokio::sync::Semaphore>,
    double_sends: AtomicU64,
    impatient: AtomicU64,
    lost_acks: AtomicU64,
}

impl Sender {
    /// Usually patient; one request in twenty gives up after 300 ms, before
    /// hookgate's upstream timeout.
    fn patience(&self, rng: &mut Rng) -> Duration {
        if rng.below(20) == 0 {
            self.impatient.fetch_add(1, Ordering::Relaxed);
            Duration::from_millis(300)
        } else {
            Duration::from_secs(30)
        }
    }

    /// One request; the sender waits for its answer at most `patience`.
    async fn attempt(&self, bytes: &[u8], delay: Duration, patience: Duration) -> Attempt {
        tokio::time::sleep(delay).await;
        let _permit = self.limit.acquire().await.unwrap();
        match post_async(self.gateway, bytes, patience).await {
            Ok(r) => Attempt {
                status: r.status,
                duplicate: r.header("hookgate-duplicate") == Some("true"),
                request_id: r.header("x-request-id").map(str::to_string),
                retry_after: r.header("retry-after").and_then(|v| v.parse().ok()),
            },
            Err(_) => Attempt {
                status: 0,
                duplicate: false,
                request_id: None,
                retry_after: None,
            },
        }
    }

    /// Delivers one event the way Fynapse does, until it ends.
    async fn deliver(&self, key: String, body: Vec<u8>, mut rng: Rng) -> EventLog {
        let mut attempts = vec![];
        let mut ack_lost = false;
        for round in 0..MAX_ROUNDS {
            if Instant::now() > self.deadline {
                return EventLog {
                    key,
                    attempts,
                    end: End::OutOfTime,
                };
            }
            let mut h = signed_headers(&body, &key);
            h.push(("Connection", "close".into()));
            let bytes = request_bytes("POST", "/webhooks/fynapse", &h, &body);
            let answers = if rng.below(10) == 0 {
                // The same delivery twice at once (the second a few ms late).
                self.double_sends.fetch_add(1, Ordering::Relaxed);
                let (p1, p2) = (self.patience(&mut rng), self.patience(&mut rng));
                let lag = Duration::from_millis(rng.below(5));
                let (a, b) = tokio::join!(
                    self.attempt(&bytes, Duration::ZERO, p1),
                    self.attempt(&bytes, lag, p2)
                );
                vec![a, b]
            } else {
                let p = self.patience(&mut rng);
                vec![self.attempt(&bytes, Duration::ZERO, p).await]
            };
            attempts.extend(answers.iter().cloned());
            if answers.iter().any(|a| (200..300).contains(&a.status)) {
                // At least once: now and then the acknowledgement is lost on
                // the sender's side (a crash before it was recorded), and
                // the delivery goes out again.
                if !ack_lost && rng.below(10) == 0 {
                    ack_lost = true;
                    self.lost_acks.fetch_add(1, Ordering::Relaxed);
                } else {
                    return EventLog {
                        key,
                        attempts,
                        end: End::Delivered,
                    };
                }
            }
            if let Some(a) = answers.iter().find(|a| FINAL.contains(&a.status)) {
                return EventLog {
                    key,
                    attempts,
                    end: End::DeadLetter(a.status),
                };
            }
            let backoff = if round < 3 {
                Duration::from_millis(1)
            } else {
                SECOND * (1 << (round - 3).min(6))
            };
            let jitter = 0.5 + rng.below(1000) as f64 / 1000.0;
            let retry_after = answers
                .iter()
                .filter_map(|a| a.retry_after)
                .max()
                .map_or(Duration::ZERO, |s| SECOND * s);
            tokio::time::sleep(backoff.mul_f64(jitter).max(retry_after)).await;
        }
        EventLog {
            key,
            attempts,
            end: End::OutOfAttempts,
        }
    }
}

// ---------------------------------------------------------------- the run

fn gateway_yaml(port: u16, receiver: SocketAddr) -> String {
    format!(
        r#"
server:
  listen: ["127.0.0.1:{port}"]
  threads: 2
  body_timeout: 10s
dedupe:
  ttl: 1h
  in_flight_timeout: {}ms
  max_entries: 1000000
routes:
  - name: fynapse
    path: /webhooks/fynapse
    upstream:
      url: http://{receiver}/hooks/balances
      connect_timeout: 1s
      timeout: {}ms
    verify:
      scheme: fynapse
      secrets: [ {{ value: {SECRET} }} ]
      tolerance: 5m
    idempotency: {{ key: "header:Idempotency-Key", required: true }}
    events: [balance.extracted]
"#,
        IN_FLIGHT_TIMEOUT.as_millis(),
        UPSTREAM_TIMEOUT.as_millis()
    )
}

fn run(events: usize, limit: Duration) {
    let seed = seed();
    eprintln!("chaos: {events} events, CHAOS_SEED={seed}");
    let receiver = ChaosReceiver::start(seed);
    let gw = start_gateway(&gateway_yaml(free_port(), receiver.addr));
    let started = Instant::now();
    let sender = Arc::new(Sender {
        gateway: gw.addr,
        deadline: started + limit,
        limit: Arc::new(tokio::sync::Semaphore::new(SENDER_CONCURRENCY)),
        double_sends: AtomicU64::new(0),
        impatient: AtomicU64::new(0),
        lost_acks: AtomicU64::new(0),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let logs: Vec<EventLog> = rt.block_on(async {
        let tasks: Vec<_> = (0..events)
            .map(|i| {
                let sender = sender.clone();
                let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let key = format!("evt-{i:06}-{:08x}", rng.next() as u32);
                let body = event_body(&key, 200 + rng.below(1800) as usize);
                tokio::spawn(async move {
                    // Events occur over time, not all at once.
                    tokio::time::sleep(Duration::from_millis(2) * i as u32).await;
                    sender.deliver(key, body, rng).await
                })
            })
            .collect();
        let mut logs = vec![];
        for t in tasks {
            logs.push(t.await.unwrap());
        }
        logs
    });
    let elapsed = started.elapsed();
    // Stalled receiver tasks may still be sleeping: they roll back, but let
    // them finish before reading the ledger.
    std::thread::sleep(UPSTREAM_TIMEOUT * 2);
    drop(gw);
    drop(rt);
    let ledger = std::mem::take(&mut *receiver.ledger.lock().unwrap());
    drop(receiver);

    let tally = Tally::new(&logs, &ledger, &sender);
    eprintln!("{}", tally.report(events, elapsed));
    assert!(tally.problems.is_empty(), "{}", tally.problems.join("\n"));
}

#[derive(Default)]
struct Tally {
    attempts: usize,
    double_sends: u64,
    impatient: u64,
    lost_acks: u64,
    statuses: HashMap<String, usize>,
    forwarded: u64,
    processed_once: usize,
    lost: usize,
    duplicated: usize,
    late: usize,
    max_attempts: usize,
    max_forwarded: u32,
    fates: Vec<(Fate, u64)>,
    rolled_back: u64,
    problems: Vec<String>,
}

impl Tally {
    fn new(logs: &[EventLog], ledger: &Ledger, sender: &Sender) -> Tally {
        let mut t = Tally {
            double_sends: sender.double_sends.load(Ordering::Relaxed),
            impatient: sender.impatient.load(Ordering::Relaxed),
            lost_acks: sender.lost_acks.load(Ordering::Relaxed),
            forwarded: ledger.forwarded.values().map(|n| u64::from(*n)).sum(),
            rolled_back: ledger.rolled_back,
            ..Tally::default()
        };
        let mut fates: Vec<_> = ledger.fates.iter().map(|(f, n)| (*f, *n)).collect();
        fates.sort_by_key(|(f, _)| format!("{f:?}"));
        t.fates = fates;

        // hookgate's answer to each request it forwarded, by request id.
        let mut answer_to: HashMap<&str, &Attempt> = HashMap::new();
        for log in logs {
            for a in &log.attempts {
                if let Some(id) = &a.request_id {
                    answer_to.insert(id, a);
                }
            }
        }
        let mut commits: HashMap<&str, Vec<&str>> = HashMap::new();
        for (key, id) in &ledger.commits {
            commits.entry(key).or_default().push(id);
        }
        for log in logs {
            t.attempts += log.attempts.len();
            t.max_attempts = t.max_attempts.max(log.attempts.len());
            for a in &log.attempts {
                let label = match (a.status, a.duplicate) {
                    (0, _) => "no answer".to_string(),
                    (s, true) => format!("{s} duplicate"),
                    (s, false) => s.to_string(),
                };
                *t.statuses.entry(label).or_default() += 1;
            }
            let forwarded = ledger.forwarded.get(&log.key).copied().unwrap_or(0);
            t.max_forwarded = t.max_forwarded.max(forwarded);
            let ids = commits.get(log.key.as_str()).cloned().unwrap_or_default();
            let processed = ids.len();
            // Commits whose answer hookgate did not get in time: it answered
            // that very request with something else.
            let late = ids
                .iter()
                .filter(|id| {
                    answer_to
                        .get(*id)
                        .is_some_and(|a| !(200..300).contains(&a.status))
                })
                .count();
            let relayed_2xx: Vec<&Attempt> = log
                .attempts
                .iter()
                .filter(|a| (200..300).contains(&a.status) && !a.duplicate)
                .collect();
            let mut problem = |what: String| {
                t.problems.push(format!(
                    "{}: {what}; attempts {:?}; forwarded {forwarded}; commits {ids:?}",
                    log.key,
                    log.attempts
                        .iter()
                        .map(|a| (a.status, a.duplicate))
                        .collect::<Vec<_>>()
                ))
            };
            if log.end != End::Delivered {
                problem(format!("ended {:?}", log.end));
            }
            if processed == 0 {
                t.lost += 1;
                problem("never processed: lost".into());
            } else if processed == 1 {
                t.processed_once += 1;
            } else {
                t.duplicated += 1;
            }
            t.late += late;
            if processed > 1 + late {
                problem(format!(
                    "processed {processed} times, only {late} of them explained by a late answer"
                ));
            }
            // One receiver 2xx reaches the sender through hookgate, or none
            // if the sender stopped waiting for it (then a duplicate ends it).
            if relayed_2xx.len() > 1 {
                problem(format!(
                    "hookgate relayed {} receiver 2xx answers, not 1",
                    relayed_2xx.len()
                ));
            }
            for a in relayed_2xx {
                let committed = a.request_id.as_deref().is_some_and(|id| ids.contains(&id));
                if !committed {
                    problem(format!(
                        "hookgate answered {} for request {:?}, which the receiver never committed",
                        a.status, a.request_id
                    ));
                }
            }
        }
        t
    }

    fn report(&self, events: usize, elapsed: Duration) -> String {
        let mut statuses: Vec<_> = self.statuses.iter().collect();
        statuses.sort();
        format!(
            "chaos tally after {elapsed:.1?}:\n  \
             sent {events} events; attempts {} ({} double sends, {} impatient, {} acks lost; \
             at most {} for one event)\n  \
             sender saw: {}\n  \
             receiver: forwarded {} (at most {} for one event); fates {}; rolled back {}\n  \
             processed once {}, lost {}, duplicated {} (late answers {}); problems {}",
            self.attempts,
            self.double_sends,
            self.impatient,
            self.lost_acks,
            self.max_attempts,
            statuses
                .iter()
                .map(|(s, n)| format!("{s} ×{n}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.forwarded,
            self.max_forwarded,
            self.fates
                .iter()
                .map(|(f, n)| format!("{f:?} ×{n}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.rolled_back,
            self.processed_once,
            self.lost,
            self.duplicated,
            self.late,
            self.problems.len(),
        )
    }
}
