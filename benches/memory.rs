//! Resident memory of the dedupe memory store holding N delivered keys.
//!
//! `cargo bench --bench memory` (N = 1,000,000; `KEYS=…` to change). Prints
//! the resident set before and after, read from /proc/self/status. Not a
//! timing: one run, one figure.

use std::time::Duration;

use hookgate::dedupe::{DedupeKey, DedupeStore, MemoryStore, Reservation};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let n: u64 = std::env::var("KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = MemoryStore::new(n, Duration::from_secs(72 * 3600), Duration::from_secs(60));
    let before = rss_kib();
    rt.block_on(async {
        for i in 0..n {
            // Keys as senders send them: a UUID per delivery.
            let key = DedupeKey::new(
                "fynapse-balances",
                uuid::Uuid::new_v4().to_string().as_bytes(),
            );
            if let Ok(Reservation::Acquired(t)) = store.reserve(key).await {
                let _ = store.settle(key, t).await;
            }
            if i % 100_000 == 0 {
                store.run_pending_tasks().await;
            }
        }
        store.run_pending_tasks().await;
    });
    let after = rss_kib();
    let entries = store.entry_count().unwrap_or(0);
    println!(
        "memory store: {entries} delivered keys, resident {:.1} MiB -> {:.1} MiB: {:.1} MiB for the keys ({:.0} bytes per key)",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after - before) as f64 / 1024.0,
        (after - before) as f64 * 1024.0 / entries.max(1) as f64
    );
}
