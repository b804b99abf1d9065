//! The in-process dedupe store on a moka cache.
//!
//! One cache holds both kinds of entry; each carries its own lifetime
//! (`in_flight_timeout` for a reservation, `ttl` once delivered) through
//! moka's per-entry expiry. Every state change goes through moka's
//! per-key-serialised `and_compute_with`, which is what makes a reserve
//! atomic. Eviction is LRU, not TinyLFU: a full cache must still admit a new
//! reservation, dropping the oldest key instead.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};
use moka::policy::EvictionPolicy;
use moka::Expiry;

use super::{DedupeKey, DedupeStore, Reservation, StoreError, Token};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    InFlight(Token),
    Delivered,
}

struct Lifetimes {
    in_flight: Duration,
    delivered: Duration,
}

impl Lifetimes {
    fn of(&self, e: &Entry) -> Duration {
        match e {
            Entry::InFlight(_) => self.in_flight,
            Entry::Delivered => self.delivered,
        }
    }
}

impl Expiry<DedupeKey, Entry> for Lifetimes {
    fn expire_after_create(&self, _: &DedupeKey, v: &Entry, _: Instant) -> Option<Duration> {
        Some(self.of(v))
    }

    fn expire_after_update(
        &self,
        _: &DedupeKey,
        v: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.of(v))
    }
}

/// A [`DedupeStore`] in this process's memory. Never fails; forgets on
/// restart; not shared between replicas.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<DedupeKey, Entry>,
}

impl MemoryStore {
    /// A store remembering at most `max_entries` keys: delivered ones for
    /// `ttl`, reservations for `in_flight_timeout`.
    pub fn new(max_entries: u64, ttl: Duration, in_flight_timeout: Duration) -> Self {
        let cache = Cache::builder()
            .max_capacity(max_entries)
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(Lifetimes {
                in_flight: in_flight_timeout,
                delivered: ttl,
            })
            .build();
        MemoryStore { cache }
    }

    /// Runs moka's pending housekeeping (eviction, expiry), so that
    /// [`DedupeStore::entry_count`] is exact. For tests and metrics.
    pub async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks().await;
    }

    /// Changes `key` only if `token` owns it.
    async fn if_owned(&self, key: DedupeKey, token: Token, then: Op<Entry>) {
        self.cache
            .entry(key)
            .and_compute_with(|cur| {
                let owned = cur.is_some_and(|e| e.into_value() == Entry::InFlight(token));
                std::future::ready(if owned { then } else { Op::Nop })
            })
            .await;
    }
}

#[async_trait]
impl DedupeStore for MemoryStore {
    async fn reserve(&self, key: DedupeKey) -> Result<Reservation, StoreError> {
        let token = Token::random();
        let result = self
            .cache
            .entry(key)
            .and_compute_with(|cur| {
                std::future::ready(match cur {
                    None => Op::Put(Entry::InFlight(token)),
                    Some(_) => Op::Nop,
                })
            })
            .await;
        Ok(match result {
            CompResult::Inserted(_) => Reservation::Acquired(token),
            CompResult::Unchanged(e) => match e.into_value() {
                Entry::InFlight(_) => Reservation::InFlight,
                Entry::Delivered => Reservation::Delivered,
            },
            // Not reachable with the closure above; answering "in flight"
            // makes the sender retry, which loses nothing.
            CompResult::StillNone(_) | CompResult::ReplacedWith(_) | CompResult::Removed(_) => {
                Reservation::InFlight
            }
        })
    }

    async fn settle(&self, key: DedupeKey, token: Token) -> Result<(), StoreError> {
        self.if_owned(key, token, Op::Put(Entry::Delivered)).await;
        Ok(())
    }

    async fn release(&self, key: DedupeKey, token: Token) -> Result<(), StoreError> {
        self.if_owned(key, token, Op::Remove).await;
        Ok(())
    }

    fn entry_count(&self) -> Option<u64> {
        Some(self.cache.entry_count())
    }

    async fn sync(&self) {
        self.run_pending_tasks().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn store() -> MemoryStore {
        MemoryStore::new(1000, Duration::from_secs(3600), Duration::from_secs(60))
    }

    fn key(k: &str) -> DedupeKey {
        DedupeKey::new("route", k.as_bytes())
    }

    #[tokio::test]
    async fn reserve_settle_release_cycle() {
        let s = store();
        let Reservation::Acquired(t) = s.reserve(key("a")).await.unwrap() else {
            panic!()
        };
        assert_eq!(s.reserve(key("a")).await, Ok(Reservation::InFlight));
        s.release(key("a"), t).await.unwrap();
        let Reservation::Acquired(t2) = s.reserve(key("a")).await.unwrap() else {
            panic!()
        };
        // A stale token cannot settle someone else's reservation.
        s.settle(key("a"), t).await.unwrap();
        assert_eq!(s.reserve(key("a")).await, Ok(Reservation::InFlight));
        s.settle(key("a"), t2).await.unwrap();
        assert_eq!(s.reserve(key("a")).await, Ok(Reservation::Delivered));
        // Nor release a delivered key.
        s.release(key("a"), t2).await.unwrap();
        assert_eq!(s.reserve(key("a")).await, Ok(Reservation::Delivered));
    }

    #[tokio::test]
    async fn keys_are_scoped_per_route() {
        let s = store();
        let a = DedupeKey::new("r1", b"k");
        let b = DedupeKey::new("r2", b"k");
        assert!(matches!(s.reserve(a).await, Ok(Reservation::Acquired(_))));
        assert!(matches!(s.reserve(b).await, Ok(Reservation::Acquired(_))));
        assert_ne!(DedupeKey::new("a", b"b:c"), DedupeKey::new("a:b", b"c"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reserves_acquire_once() {
        for round in 0..20 {
            let s = Arc::new(store());
            let k = key(&format!("k{round}"));
            let tasks: Vec<_> = (0..50)
                .map(|_| {
                    let s = s.clone();
                    tokio::spawn(async move { s.reserve(k).await })
                })
                .collect();
            let mut acquired = 0;
            for t in tasks {
                if let Ok(Reservation::Acquired(_)) = t.await.unwrap() {
                    acquired += 1;
                }
            }
            assert_eq!(acquired, 1);
        }
    }

    #[tokio::test]
    async fn reservations_and_deliveries_expire() {
        let s = MemoryStore::new(1000, Duration::from_millis(300), Duration::from_millis(100));
        assert!(matches!(
            s.reserve(key("a")).await,
            Ok(Reservation::Acquired(_))
        ));
        tokio::time::sleep(Duration::from_millis(150)).await;
        let Reservation::Acquired(t) = s.reserve(key("a")).await.unwrap() else {
            panic!("an expired reservation must be reacquirable")
        };
        s.settle(key("a"), t).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(
            s.reserve(key("a")).await,
            Ok(Reservation::Delivered),
            "ttl, not in_flight_timeout, applies once delivered"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(matches!(
            s.reserve(key("a")).await,
            Ok(Reservation::Acquired(_))
        ));
    }

    #[tokio::test]
    async fn bounded_by_max_entries() {
        let s = MemoryStore::new(100, Duration::from_secs(3600), Duration::from_secs(60));
        for i in 0..1000 {
            let Reservation::Acquired(t) = s.reserve(key(&i.to_string())).await.unwrap() else {
                panic!()
            };
            s.settle(key(&i.to_string()), t).await.unwrap();
        }
        s.run_pending_tasks().await;
        assert!(s.entry_count().unwrap() <= 100, "{:?}", s.entry_count());
        // LRU: the newest key is still remembered.
        assert_eq!(s.reserve(key("999")).await, Ok(Reservation::Delivered));
    }
}
