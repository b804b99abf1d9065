//! Micro-benchmarks of the request path's pure parts, each next to its
//! physical limit:
//!
//! - fynapse verification of 1 KiB, 64 KiB and 1 MiB bodies, next to a bare
//!   HMAC-SHA256 of the same bytes;
//! - dedupe reserve + settle on the memory store, on one and two threads;
//! - route matching with 1 and 100 routes.
//!
//! `cargo bench --bench micro`; see BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use hookgate::dedupe::{DedupeKey, DedupeStore, MemoryStore, Reservation};
use hookgate::gateway::bench::RouteTable;
use hookgate::verify::{self, Fynapse, Scheme};

const T: i64 = 1_700_000_000;

fn verification(c: &mut Criterion) {
    let key = Fynapse
        .derive_key("whsec_bench_secret")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("verify");
    for (label, size) in [
        ("1KiB", 1usize << 10),
        ("64KiB", 64 << 10),
        ("1MiB", 1 << 20),
    ] {
        let body = vec![b'x'; size];
        let mut headers = http::HeaderMap::new();
        for (k, v) in Fynapse.sign(&key, &body, T, "") {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(&v).unwrap(),
            );
        }
        let keys = [key.clone()];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("fynapse", label), &body, |b, body| {
            b.iter(|| {
                verify::verify(
                    &Fynapse,
                    &verify::SignedRequest::new("POST", &headers, body),
                    &keys,
                    T,
                    Some(Duration::from_secs(300)),
                )
                .is_ok()
            })
        });
        g.bench_with_input(
            BenchmarkId::new("bare_hmac_sha256", label),
            &body,
            |b, body| {
                b.iter(|| {
                    let mut m =
                        <Hmac<Sha256> as Mac>::new_from_slice(b"whsec_bench_secret").unwrap();
                    m.update(b"1700000000.");
                    m.update(body);
                    m.finalize().into_bytes()
                })
            },
        );
    }
    g.finish();
}

fn dedupe(c: &mut Criterion) {
    let mut g = c.benchmark_group("dedupe");
    for threads in [1usize, 2] {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .build()
            .unwrap();
        let store = Arc::new(MemoryStore::new(
            1_000_000,
            Duration::from_secs(3600),
            Duration::from_secs(60),
        ));
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        g.throughput(Throughput::Elements(1));
        g.bench_function(
            BenchmarkId::new("reserve_settle", format!("{threads}_threads")),
            |b| {
                b.iter_custom(|iters| {
                    let started = Instant::now();
                    rt.block_on(async {
                        let per = iters.div_ceil(threads as u64);
                        let tasks: Vec<_> = (0..threads)
                            .map(|_| {
                                let (store, counter) = (store.clone(), counter.clone());
                                tokio::spawn(async move {
                                    for _ in 0..per {
                                        let n = counter
                                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                        let key = DedupeKey::new("bench", &n.to_le_bytes());
                                        if let Ok(Reservation::Acquired(t)) =
                                            store.reserve(key).await
                                        {
                                            let _ = store.settle(key, t).await;
                                        }
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            let _ = t.await;
                        }
                    });
                    // Per operation, whatever the thread count: wall time / ops.
                    started.elapsed()
                })
            },
        );
    }
    g.finish();
}

fn routes_yaml(n: usize) -> String {
    let mut y = String::from("routes:\n");
    for i in 0..n {
        y.push_str(&format!(
            "  - name: r{i}\n    path: /webhooks/sender-{i}\n    upstream: {{ url: \"http://127.0.0.1:3000/r{i}\" }}\n    verify: {{ scheme: fynapse, secrets: [ {{ value: s }} ] }}\n"
        ));
    }
    y
}

fn routing(c: &mut Criterion) {
    let mut g = c.benchmark_group("routing");
    for n in [1usize, 100] {
        let config =
            hookgate::config::from_yaml(&routes_yaml(n), "bench").unwrap_or_else(|e| panic!("{e}"));
        let table = RouteTable::new(config.routes);
        let path = format!("/webhooks/sender-{}?x=1", n - 1);
        g.bench_function(BenchmarkId::new("find", format!("{n}_routes")), |b| {
            b.iter(|| table.find(Some("hooks.example.com"), &path).is_some())
        });
    }
    g.finish();
}

criterion_group!(benches, verification, dedupe, routing);
criterion_main!(benches);
