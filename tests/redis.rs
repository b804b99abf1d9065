//! The Redis dedupe backend against a real `redis-server`: two gateway
//! replicas sharing it, restarts of a replica and of Redis, both `on_error`
//! policies, and the store's token rules.
//!
//! Each test starts its own `redis-server` on its own loopback port, so the
//! tests run in parallel. Without `redis-server` installed they fail.

mod common;

use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis_server::RedisServer;
use common::*;
use hookgate::dedupe::{DedupeKey, DedupeStore, RedisOptions, RedisStore, Reservation};
use hookgate::server::RunningGateway;

const PREFIX: &str = "hgtest:";

/// A `dedupe:` block on `redis` with `on_error` and `in_flight_timeout`.
fn redis_dedupe(redis: &RedisServer, on_error: &str, in_flight: &str) -> serde_json::Value {
    json!({
        "backend": "redis",
        "ttl": "1h",
        "in_flight_timeout": in_flight,
        "redis": {
            "url": redis.url(),
            "prefix": PREFIX,
            "timeout": "500ms",
            "connections": 2,
            "on_error": on_error
        }
    })
}

/// The standard config on `rx`, deduping in `redis`.
fn redis_config(port: u16, rx: &Receiver, dedupe: serde_json::Value) -> String {
    let mut c = TestConfig::fynapse(port, &rx.url("/hooks/balances"));
    c.dedupe = dedupe;
    c.yaml()
}

/// One gateway replica on `redis`, forwarding to `rx`, built like
/// `hookgate run` builds it (`server::store_for`).
fn replica(redis: &RedisServer, rx: &Receiver, on_error: &str) -> RunningGateway {
    start_gateway_with_configured_store(&redis_config(
        free_port(),
        rx,
        redis_dedupe(redis, on_error, "30s"),
    ))
}

fn store(redis: &RedisServer, ttl: Duration, in_flight_timeout: Duration) -> RedisStore {
    RedisStore::new(RedisOptions {
        prefix: PREFIX.into(),
        timeout: Duration::from_millis(500),
        connections: 2,
        ttl,
        in_flight_timeout,
        ..RedisOptions::new(redis.url())
    })
    .unwrap()
}

/// `hookgate_dedupe_errors_total{route="fynapse",policy}` of a replica.
fn dedupe_errors(gw: &RunningGateway, policy: &str) -> u64 {
    metric(
        &gw.gateway.metrics().encode(),
        &format!("hookgate_dedupe_errors_total{{policy=\"{policy}\",route=\"fynapse\"}}"),
    )
}

/// The value of the series `name{labels}` in a Prometheus text page, 0
/// when absent.
fn metric(page: &[u8], series: &str) -> u64 {
    String::from_utf8_lossy(page)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

fn key(k: &str) -> DedupeKey {
    DedupeKey::new("fynapse", k.as_bytes())
}

fn redis_key(k: &str) -> String {
    format!("{PREFIX}{}", hex::encode(key(k).as_bytes()))
}

// ------------------------------------------------------------- replicas

#[test]
fn duplicate_through_the_other_replica_is_200_duplicate() {
    let redis = RedisServer::start();
    let rx = Receiver::start();
    let a = replica(&redis, &rx, "fail_closed");
    let b = replica(&redis, &rx, "fail_closed");
    let body = event_body("evt-ab", 300);

    let r = deliver(a.addr, &body, "ab-key");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(rx.count(), 1);
    assert_eq!(redis.get(&redis_key("ab-key")).as_deref(), Some("d"));

    std::thread::sleep(Duration::from_millis(1100));
    let r = deliver(b.addr, &body, "ab-key");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("hookgate-duplicate"), Some("true"));
    assert_eq!(r.json()["status"], "duplicate");
    assert_eq!(rx.count(), 1, "the duplicate was not forwarded");

    // Another key still goes through B.
    assert_eq!(deliver(b.addr, &body, "ab-other").status, 200);
    assert_eq!(rx.count(), 2);
}

#[test]
fn concurrent_first_deliveries_over_both_replicas_forward_exactly_one() {
    let redis = RedisServer::start();
    let rx = Receiver::start();
    rx.respond(|_, _| Reply {
        delay: Duration::from_millis(300),
        ..Reply::status(200)
    });
    let a = replica(&redis, &rx, "fail_closed");
    let b = replica(&redis, &rx, "fail_closed");
    let body = event_body("evt-race", 500);
    let threads: Vec<_> = (0..40)
        .map(|i| {
            let addr = if i % 2 == 0 { a.addr } else { b.addr };
            let body = body.clone();
            std::thread::spawn(move || (i % 2, deliver(addr, &body, "race-key").status))
        })
        .collect();
    let statuses: Vec<(usize, u16)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(rx.count(), 1, "statuses: {statuses:?}");
    assert!(
        statuses.iter().all(|(_, s)| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    for replica in [0, 1] {
        assert!(
            statuses.iter().any(|&(r, s)| r == replica && s == 409),
            "replica {replica} must have seen the key in flight: {statuses:?}"
        );
    }
}

#[test]
fn replica_restart_keeps_delivered_keys() {
    let redis = RedisServer::start();
    let rx = Receiver::start();
    let body = event_body("evt-restart", 300);
    let a = replica(&redis, &rx, "fail_closed");
    assert_eq!(deliver(a.addr, &body, "restart-key").status, 200);
    a.server.stop();

    // A new process: its local cache is empty, so only Redis remembers.
    let a2 = replica(&redis, &rx, "fail_closed");
    let r = deliver(a2.addr, &body, "restart-key");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("hookgate-duplicate"), Some("true"));
    assert_eq!(rx.count(), 1);
}

/// Delivers `key` through `addr` until it is answered `200` (at most 5 s);
/// returns the statuses seen.
fn deliver_until_200(addr: std::net::SocketAddr, body: &[u8], key: &str) -> Vec<u16> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = vec![];
    loop {
        let r = deliver(addr, body, key);
        seen.push(r.status);
        if r.status == 200 {
            return seen;
        }
        assert!(Instant::now() < deadline, "no recovery: {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn redis_down_fail_closed_is_503_with_retry_after_then_recovers() {
    let mut redis = RedisServer::start();
    let rx = Receiver::start();
    let a = replica(&redis, &rx, "fail_closed");
    let b = replica(&redis, &rx, "fail_closed");
    let body = event_body("evt-down", 300);
    assert_eq!(deliver(a.addr, &body, "before").status, 200);
    assert_eq!(deliver(b.addr, &body, "before-b").status, 200);
    assert_eq!(rx.count(), 2);

    redis.stop();
    let started = Instant::now();
    let r = deliver(a.addr, &body, "during");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.error(), "dedupe_unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the store call is bounded by dedupe.redis.timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(deliver(b.addr, &body, "during").status, 503);
    assert_eq!(rx.count(), 2, "nothing is forwarded without dedupe");
    // The local layer: replica A itself delivered `before`, so it can still
    // answer its duplicate; B never saw it, so B must say 503.
    let r = deliver(a.addr, &body, "before");
    assert_eq!(
        (r.status, r.header("hookgate-duplicate")),
        (200, Some("true"))
    );
    assert_eq!(deliver(b.addr, &body, "before").status, 503);

    redis.restart();
    let seen = deliver_until_200(a.addr, &body, "during");
    assert_eq!(
        seen,
        vec![200],
        "the first request after the restart succeeds"
    );
    assert_eq!(deliver_until_200(b.addr, &body, "after-b"), vec![200]);
    assert_eq!(rx.count(), 4);
    // Dedupe works again, across replicas.
    std::thread::sleep(Duration::from_millis(1100));
    let r = deliver(b.addr, &body, "during");
    assert_eq!(r.header("hookgate-duplicate"), Some("true"), "{r:?}");
    assert_eq!(rx.count(), 4);
    assert_eq!(dedupe_errors(&a, "fail_open"), 0);
    assert_eq!(dedupe_errors(&a, "fail_closed"), 1);
    assert_eq!(dedupe_errors(&b, "fail_closed"), 2);
}

#[test]
fn redis_down_fail_open_forwards_counts_then_recovers() {
    let mut redis = RedisServer::start();
    let rx = Receiver::start();
    let a = replica(&redis, &rx, "fail_open");
    let body = event_body("evt-open", 300);
    assert_eq!(deliver(a.addr, &body, "open-1").status, 200);

    redis.stop();
    let r = deliver(a.addr, &body, "open-2");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("hookgate-duplicate"), None);
    assert_eq!(rx.count(), 2);
    assert_eq!(
        rx.last().header("x-hookgate-verified").as_deref(),
        Some("true")
    );
    // Without Redis the same key is forwarded again: that is what fail_open
    // trades for availability.
    assert_eq!(deliver(a.addr, &body, "open-2").status, 200);
    assert_eq!(rx.count(), 3);
    assert_eq!(dedupe_errors(&a, "fail_open"), 2);

    redis.restart();
    assert_eq!(deliver_until_200(a.addr, &body, "open-3"), vec![200]);
    assert_eq!(rx.count(), 4);
    std::thread::sleep(Duration::from_millis(1100));
    let r = deliver(a.addr, &body, "open-3");
    assert_eq!(r.header("hookgate-duplicate"), Some("true"), "{r:?}");
    assert_eq!(rx.count(), 4);
    assert_eq!(dedupe_errors(&a, "fail_open"), 2, "counted only while down");
    assert_eq!(dedupe_errors(&a, "fail_closed"), 0);
    let page = String::from_utf8(a.gateway.metrics().encode()).unwrap();
    assert!(
        page.contains(r#"hookgate_dedupe_errors_total{policy="fail_open",route="fynapse"} 2"#),
        "{page}"
    );
}

#[test]
fn in_flight_reservation_expires_across_replicas() {
    let redis = RedisServer::start();
    let rx = Receiver::start();
    // The first delivery's receiver answers after the upstream timeout:
    // hookgate answers 504 and keeps the key in flight until the
    // reservation expires, then another replica may forward it.
    rx.respond(|_, n| Reply {
        delay: if n == 1 {
            Duration::from_millis(1800)
        } else {
            Duration::ZERO
        },
        ..Reply::status(200)
    });
    let yaml = |port| {
        let mut c = TestConfig::fynapse(port, &rx.url("/hooks/balances"));
        c.routes[0]["upstream"]["timeout"] = json!("400ms");
        c.dedupe = redis_dedupe(&redis, "fail_closed", "800ms");
        c.yaml()
    };
    let a = start_gateway_with_configured_store(&yaml(free_port()));
    let b = start_gateway_with_configured_store(&yaml(free_port()));
    let body = event_body("evt-exp", 200);
    let addr = a.addr;
    let b2 = body.clone();
    let first = std::thread::spawn(move || deliver(addr, &b2, "exp-key"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while rx.count() == 0 {
        assert!(Instant::now() < deadline, "A never forwarded");
        std::thread::sleep(Duration::from_millis(10));
    }
    let forwarded = Instant::now();
    assert_eq!(deliver(b.addr, &body, "exp-key").status, 409);
    assert_eq!(first.join().unwrap().status, 504);
    // A's timeout did not release the key: B still sees it in flight.
    if forwarded.elapsed() < Duration::from_millis(700) {
        assert_eq!(deliver(b.addr, &body, "exp-key").status, 409);
    }
    std::thread::sleep(Duration::from_millis(900).saturating_sub(forwarded.elapsed()));
    // The reservation expired: B may forward.
    assert_eq!(deliver(b.addr, &body, "exp-key").status, 200);
    assert_eq!(redis.get(&redis_key("exp-key")).as_deref(), Some("d"));
}

// ------------------------------------------------------------- the store

#[tokio::test]
async fn store_layout_and_lifetimes() {
    let redis = RedisServer::start();
    let s = store(&redis, Duration::from_secs(3600), Duration::from_secs(60));
    assert_eq!(s.redis_key(&key("a")), redis_key("a"));
    let Ok(Reservation::Acquired(t)) = s.reserve(key("a")).await else {
        panic!()
    };
    let v = redis.get(&redis_key("a")).unwrap();
    assert_eq!(v, format!("f:{:032x}", t.as_u128()));
    let pttl = redis.pttl(&redis_key("a"));
    assert!(
        (59_000..=60_000).contains(&pttl),
        "in_flight_timeout: {pttl}"
    );
    assert_eq!(s.reserve(key("a")).await, Ok(Reservation::InFlight));

    s.settle(key("a"), t).await.unwrap();
    assert_eq!(redis.get(&redis_key("a")).as_deref(), Some("d"));
    let pttl = redis.pttl(&redis_key("a"));
    assert!((3_599_000..=3_600_000).contains(&pttl), "ttl: {pttl}");
    assert_eq!(s.reserve(key("a")).await, Ok(Reservation::Delivered));

    let Ok(Reservation::Acquired(t)) = s.reserve(key("b")).await else {
        panic!()
    };
    s.release(key("b"), t).await.unwrap();
    assert_eq!(redis.get(&redis_key("b")), None);
    assert!(matches!(
        s.reserve(key("b")).await,
        Ok(Reservation::Acquired(_))
    ));
    assert_eq!(redis.keys("*").len(), 2, "nothing but the two keys");
}

#[tokio::test]
async fn store_stale_token_cannot_settle_or_release_a_newer_reservation() {
    let redis = RedisServer::start();
    let in_flight = Duration::from_millis(1000);
    // Two stores, as two replicas: neither's local cache can answer for
    // the other.
    let a = store(&redis, Duration::from_secs(3600), in_flight);
    let b = store(&redis, Duration::from_secs(3600), in_flight);
    let Ok(Reservation::Acquired(old)) = a.reserve(key("k")).await else {
        panic!()
    };
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let Ok(Reservation::Acquired(new)) = b.reserve(key("k")).await else {
        panic!("an expired reservation must be reacquirable")
    };
    let newer = format!("f:{:032x}", new.as_u128());

    a.release(key("k"), old).await.unwrap();
    assert_eq!(redis.get(&redis_key("k")), Some(newer.clone()));
    a.settle(key("k"), old).await.unwrap();
    assert_eq!(redis.get(&redis_key("k")), Some(newer));
    assert_eq!(b.reserve(key("k")).await, Ok(Reservation::InFlight));

    b.settle(key("k"), new).await.unwrap();
    assert_eq!(redis.get(&redis_key("k")).as_deref(), Some("d"));
    // Nor can a stale release forget a delivered key.
    a.release(key("k"), old).await.unwrap();
    b.release(key("k"), new).await.unwrap();
    assert_eq!(redis.get(&redis_key("k")).as_deref(), Some("d"));
    let c = store(&redis, Duration::from_secs(3600), in_flight);
    assert_eq!(c.reserve(key("k")).await, Ok(Reservation::Delivered));
}

#[tokio::test]
async fn store_in_flight_expires_and_delivered_lives_for_ttl() {
    let redis = RedisServer::start();
    let ttl = Duration::from_millis(2000);
    let s = store(&redis, ttl, Duration::from_millis(150));
    assert!(matches!(
        s.reserve(key("e")).await,
        Ok(Reservation::Acquired(_))
    ));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(redis.get(&redis_key("e")), None, "expired in Redis");
    let Ok(Reservation::Acquired(t)) = s.reserve(key("e")).await else {
        panic!("an expired reservation must be reacquirable")
    };
    s.settle(key("e"), t).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = store(&redis, ttl, Duration::from_millis(150));
    assert_eq!(
        fresh.reserve(key("e")).await,
        Ok(Reservation::Delivered),
        "ttl, not in_flight_timeout, applies once delivered"
    );
    tokio::time::sleep(Duration::from_millis(1900)).await;
    assert!(matches!(
        fresh.reserve(key("e")).await,
        Ok(Reservation::Acquired(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_concurrent_reserves_over_two_stores_acquire_once() {
    let redis = RedisServer::start();
    let stores = [
        Arc::new(store(
            &redis,
            Duration::from_secs(60),
            Duration::from_secs(60),
        )),
        Arc::new(store(
            &redis,
            Duration::from_secs(60),
            Duration::from_secs(60),
        )),
    ];
    for round in 0..20 {
        let k = key(&format!("race-{round}"));
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let s = stores[i % 2].clone();
                tokio::spawn(async move { s.reserve(k).await })
            })
            .collect();
        let mut acquired = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(Reservation::Acquired(_)) => acquired += 1,
                Ok(Reservation::InFlight) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(acquired, 1, "round {round}");
    }
}

#[tokio::test]
async fn store_unreachable_is_a_bounded_error_then_connects_when_redis_is_back() {
    let mut redis = RedisServer::start();
    redis.stop();
    let s = store(&redis, Duration::from_secs(60), Duration::from_secs(60));
    let started = Instant::now();
    let r = s.reserve(key("u")).await;
    assert!(r.is_err(), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // (Another key: a settle puts its key in the local layer, as the
    // upstream is taken to have answered 2xx.)
    let token = hookgate::dedupe::Token::unique();
    assert!(s.settle(key("other"), token).await.is_err());
    assert!(s.release(key("other"), token).await.is_err());

    redis.restart();
    assert!(matches!(
        s.reserve(key("u")).await,
        Ok(Reservation::Acquired(_))
    ));
}
