//! The in-process dedupe store: a compact, sharded table of key digests.
//!
//! A dedupe entry needs little: which key, until when, and whether it is
//! delivered or reserved. A general-purpose cache (moka, measured at about
//! 490 bytes per key here, see BENCHMARKS.md) spends far more on metadata
//! than on that, so this store keeps it itself, in about 94 bytes per key (measured: `cargo bench --bench memory`):
//!
//! - up to 64 shards, each a `Mutex` around a hash map from the first 16 bytes of
//!   the key's SHA-256 digest to its expiry and state (16 bytes), plus the
//!   insertion order (FIFO) for eviction and expiry sweeps;
//! - the owner token of a *reservation* is kept aside (reservations are few:
//!   at most one per request in flight);
//! - every change to a key happens under its shard's lock, which is what
//!   makes a reserve atomic; no lock is held across an `.await`.
//!
//! Bounded by `max_entries` (split over the shards): a full shard drops its
//! oldest *delivered* key first, counted in [`DedupeStore::evictions`] and
//! logged (at most once a minute). A reservation is never evicted: that
//! would let a concurrent duplicate through. A shard that holds nothing but
//! reservations refuses a new one ([`StoreError`]: the gateway answers
//! `503` with `Retry-After`). Expired entries are ignored at once and
//! reclaimed as the FIFO reaches them.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{DedupeKey, DedupeStore, Reservation, StoreError, Token};

/// At most this many shards; small stores have fewer, so that the bound
/// stays exact.
const MAX_SHARDS: u64 = 64;
/// Set in `Slot::expires` for a delivered key.
const DELIVERED: u64 = 1 << 63;

/// 128 bits of the SHA-256 digest: collisions need about 2^64 keys.
type Id = [u8; 16];

/// The digest is already uniformly distributed: hash by taking 8 of its bytes.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 16]` hashes as its length, then its bytes.
        if bytes.len() >= 8 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[..8]);
            self.0 = u64::from_le_bytes(b);
        }
    }
}

#[derive(Clone, Copy)]
struct Slot {
    /// Milliseconds since the store's epoch, with `DELIVERED` or-ed in.
    expires: u64,
    /// Insertion number, to tell this entry from an older one in `order`.
    seq: u32,
}

impl Slot {
    fn delivered(self) -> bool {
        self.expires & DELIVERED != 0
    }

    fn expired(self, now: u64) -> bool {
        self.expires & !DELIVERED <= now
    }
}

#[derive(Default)]
struct Shard {
    map: HashMap<Id, Slot, BuildHasherDefault<IdHasher>>,
    order: VecDeque<(Id, u32)>,
    owners: HashMap<Id, Token, BuildHasherDefault<IdHasher>>,
    seq: u32,
}

/// Every slot of a shard holds a live reservation.
struct Full;

impl Shard {
    /// Makes room for one more entry under `cap`: drops expired or
    /// superseded entries, then delivered ones, oldest first, and returns
    /// how many delivered keys it evicted. Live reservations are kept (moved
    /// behind the others); if nothing else is left, the shard is [`Full`].
    fn make_room(&mut self, now: u64, cap: usize) -> Result<u64, Full> {
        let mut evicted = 0;
        let mut kept = 0;
        while self.map.len() >= cap {
            if kept >= self.order.len() {
                return Err(Full);
            }
            let Some((id, seq)) = self.order.pop_front() else {
                return Err(Full);
            };
            match self.map.get(&id).filter(|s| s.seq == seq).copied() {
                Some(s) if !s.expired(now) && !s.delivered() => {
                    self.order.push_back((id, seq));
                    kept += 1;
                }
                Some(s) => {
                    self.map.remove(&id);
                    self.owners.remove(&id);
                    if !s.expired(now) {
                        evicted += 1;
                    }
                }
                None => {}
            }
        }
        Ok(evicted)
    }

    /// Drops expired or superseded entries at the front of the FIFO.
    fn tidy(&mut self, now: u64) {
        while let Some(&(id, seq)) = self.order.front() {
            let current = self.map.get(&id).filter(|s| s.seq == seq).copied();
            match current {
                Some(s) if !s.expired(now) => break,
                Some(_) => {
                    self.map.remove(&id);
                    self.owners.remove(&id);
                }
                None => {}
            }
            self.order.pop_front();
        }
        // Superseded entries in the middle of the FIFO (a key released and
        // reserved again) are dropped when they outnumber the live ones.
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order
                .retain(|(id, seq)| map.get(id).is_some_and(|s| s.seq == *seq));
        }
    }
}

/// A [`DedupeStore`] in this process's memory. Never fails; forgets on
/// restart; not shared between replicas.
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    shard_cap: usize,
    ttl_ms: u64,
    in_flight_ms: u64,
    epoch: Instant,
    evictions: AtomicU64,
    /// When the last eviction warning was logged (ms since `epoch`, +1).
    warned_at: AtomicU64,
}

/// Eviction warnings are logged at most this often.
const WARN_EVERY_MS: u64 = 60_000;

impl MemoryStore {
    /// A store remembering at most `max_entries` keys: delivered ones for
    /// `ttl`, reservations for `in_flight_timeout`.
    pub fn new(max_entries: u64, ttl: Duration, in_flight_timeout: Duration) -> Self {
        let max_entries = max_entries.max(1);
        let shards = (max_entries / 1024).clamp(1, MAX_SHARDS);
        // Floor: the shards together never hold more than `max_entries`.
        let shard_cap = usize::try_from(max_entries / shards)
            .unwrap_or(usize::MAX)
            .max(1);
        MemoryStore {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            shard_cap,
            ttl_ms: u64::try_from(ttl.as_millis())
                .unwrap_or(u64::MAX / 4)
                .min(u64::MAX / 4),
            in_flight_ms: u64::try_from(in_flight_timeout.as_millis())
                .unwrap_or(u64::MAX / 4)
                .min(u64::MAX / 4),
            epoch: Instant::now(),
            evictions: AtomicU64::new(0),
            warned_at: AtomicU64::new(0),
        }
    }

    /// Counts evictions, and says so in the log at most once a minute: a
    /// store evicting delivered keys forgets them before `ttl`, so a late
    /// retry of one would be forwarded again.
    fn count_evictions(&self, n: u64, now: u64) {
        if n == 0 {
            return;
        }
        let total = self.evictions.fetch_add(n, Ordering::Relaxed) + n;
        let last = self.warned_at.load(Ordering::Relaxed);
        let due = last == 0 || now + 1 >= last + WARN_EVERY_MS;
        if due
            && self
                .warned_at
                .compare_exchange(last, now + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                evicted_total = total,
                "dedupe memory store is full: delivered keys are forgotten before their ttl; raise dedupe.max_entries"
            );
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX / 4)
    }

    fn id(key: &DedupeKey) -> Id {
        let mut id = [0u8; 16];
        id.copy_from_slice(&key.as_bytes()[..16]);
        id
    }

    fn shard(&self, id: &Id) -> MutexGuard<'_, Shard> {
        let m = &self.shards[usize::from(id[8]) % self.shards.len()];
        // A panic while holding the lock leaves a consistent shard (every
        // change is a single map operation): keep using it.
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reclaims expired entries everywhere, so that [`DedupeStore::entry_count`]
    /// counts only live keys. For tests and metrics.
    pub async fn run_pending_tasks(&self) {
        let now = self.now();
        for m in self.shards.iter() {
            let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
            s.map.retain(|_, slot| !slot.expired(now));
            let live: Vec<Id> = s
                .owners
                .keys()
                .filter(|id| !s.map.contains_key(*id))
                .copied()
                .collect();
            for id in live {
                s.owners.remove(&id);
            }
            s.tidy(now);
        }
    }

    /// Changes `key` only if `token` still owns its reservation.
    fn if_owned(&self, key: &DedupeKey, token: Token, settle: bool) {
        let id = Self::id(key);
        let now = self.now();
        let mut s = self.shard(&id);
        let owned = s.owners.get(&id) == Some(&token)
            && s.map
                .get(&id)
                .is_some_and(|slot| !slot.delivered() && !slot.expired(now));
        if !owned {
            return;
        }
        s.owners.remove(&id);
        if settle {
            if let Some(slot) = s.map.get_mut(&id) {
                slot.expires = now.saturating_add(self.ttl_ms) | DELIVERED;
            }
        } else {
            s.map.remove(&id);
        }
    }
}

#[async_trait]
impl DedupeStore for MemoryStore {
    async fn reserve(&self, key: DedupeKey) -> Result<Reservation, StoreError> {
        let id = Self::id(&key);
        let now = self.now();
        let mut s = self.shard(&id);
        if let Some(slot) = s.map.get(&id).copied() {
            if !slot.expired(now) {
                return Ok(if slot.delivered() {
                    Reservation::Delivered
                } else {
                    Reservation::InFlight
                });
            }
        }
        let evicted = s
            .make_room(now, self.shard_cap)
            .map_err(|Full| StoreError::Full)?;
        let token = Token::unique();
        s.seq = s.seq.wrapping_add(1);
        let seq = s.seq;
        s.map.insert(
            id,
            Slot {
                expires: now.saturating_add(self.in_flight_ms),
                seq,
            },
        );
        s.owners.insert(id, token);
        s.order.push_back((id, seq));
        s.tidy(now);
        drop(s);
        self.count_evictions(evicted, now);
        Ok(Reservation::Acquired(token))
    }

    async fn settle(&self, key: DedupeKey, token: Token) -> Result<(), StoreError> {
        self.if_owned(&key, token, true);
        Ok(())
    }

    async fn release(&self, key: DedupeKey, token: Token) -> Result<(), StoreError> {
        self.if_owned(&key, token, false);
        Ok(())
    }

    fn entry_count(&self) -> Option<u64> {
        let n: usize = self
            .shards
            .iter()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).map.len())
            .sum();
        Some(n as u64)
    }

    fn evictions(&self) -> Option<u64> {
        Some(self.evictions.load(Ordering::Relaxed))
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
    async fn bounded_by_max_entries_oldest_first() {
        let s = MemoryStore::new(100, Duration::from_secs(3600), Duration::from_secs(60));
        for i in 0..1000 {
            let Reservation::Acquired(t) = s.reserve(key(&i.to_string())).await.unwrap() else {
                panic!()
            };
            s.settle(key(&i.to_string()), t).await.unwrap();
        }
        s.run_pending_tasks().await;
        assert!(s.entry_count().unwrap() <= 100, "{:?}", s.entry_count());
        // Oldest first: the newest key is still remembered, the oldest is not.
        assert_eq!(s.reserve(key("999")).await, Ok(Reservation::Delivered));
        assert!(matches!(
            s.reserve(key("0")).await,
            Ok(Reservation::Acquired(_))
        ));
    }

    #[tokio::test]
    async fn reservations_are_never_evicted() {
        let s = MemoryStore::new(3, Duration::from_secs(3600), Duration::from_secs(60));
        let Reservation::Acquired(held) = s.reserve(key("held")).await.unwrap() else {
            panic!()
        };
        for i in 0..10 {
            let Reservation::Acquired(t) = s.reserve(key(&i.to_string())).await.unwrap() else {
                panic!()
            };
            s.settle(key(&i.to_string()), t).await.unwrap();
        }
        // The oldest entry was a reservation: delivered keys went instead.
        assert_eq!(s.reserve(key("held")).await, Ok(Reservation::InFlight));
        assert_eq!(s.evictions(), Some(8));
        // A shard of nothing but reservations refuses one more.
        let Reservation::Acquired(_) = s.reserve(key("a")).await.unwrap() else {
            panic!()
        };
        let Reservation::Acquired(_) = s.reserve(key("b")).await.unwrap() else {
            panic!()
        };
        assert!(s.reserve(key("c")).await.is_err());
        // Once one ends, there is room again.
        s.release(key("held"), held).await.unwrap();
        assert!(matches!(
            s.reserve(key("c")).await,
            Ok(Reservation::Acquired(_))
        ));
    }

    #[tokio::test]
    async fn many_keys_stay_within_the_bound_across_shards() {
        let s = MemoryStore::new(10_000, Duration::from_secs(3600), Duration::from_secs(60));
        for i in 0..50_000u32 {
            let k = DedupeKey::new("r", &i.to_le_bytes());
            if let Ok(Reservation::Acquired(t)) = s.reserve(k).await {
                s.settle(k, t).await.unwrap();
            }
        }
        let n = s.entry_count().unwrap();
        assert!((9_000..=10_000).contains(&n), "{n}");
    }

    #[tokio::test]
    async fn repeated_release_does_not_grow_the_fifo_without_bound() {
        let s = MemoryStore::new(1000, Duration::from_secs(3600), Duration::from_secs(60));
        for _ in 0..100_000 {
            let Reservation::Acquired(t) = s.reserve(key("flaky")).await.unwrap() else {
                panic!()
            };
            s.release(key("flaky"), t).await.unwrap();
        }
        let shard = s.shard(&MemoryStore::id(&key("flaky")));
        assert!(shard.order.len() <= 2048, "{}", shard.order.len());
    }
}
