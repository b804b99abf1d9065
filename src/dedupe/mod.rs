//! Duplicate suppression: the [`DedupeStore`] trait and its backends,
//! [`MemoryStore`] (one process) and [`RedisStore`] (shared by replicas).
//!
//! A delivery's life in the store is three calls:
//! [`reserve`](DedupeStore::reserve) when an *authentic* request arrives,
//! then exactly one of [`settle`](DedupeStore::settle) (the upstream answered
//! `2xx`: remember the key as delivered for `ttl`) or
//! [`release`](DedupeStore::release) (anything else: forget it, so that the
//! sender's retry goes through). A reservation nobody settles expires after
//! `in_flight_timeout`, so a crashed request cannot block a key for ever.
//!
//! Settle and release carry the [`Token`] that reserve handed out, and touch
//! the key only while that token still owns it: a request whose reservation
//! expired cannot clobber a newer one.

mod memory;
pub mod redis;

pub use memory::MemoryStore;
pub use redis::{RedisOptions, RedisStore, RedisTarget, RedisTls};

use std::fmt;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

/// A dedupe key: a digest of (route, idempotency key), so that keys are
/// scoped per route and every entry has the same small size whatever the
/// sender puts in its header.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DedupeKey([u8; 32]);

impl DedupeKey {
    /// The key for `idempotency_key` on route `route`.
    pub fn new(route: &str, idempotency_key: &[u8]) -> Self {
        let mut h = Sha256::new();
        // The length prefix keeps ("a", "b:c") and ("a:b", "c") apart.
        h.update((route.len() as u64).to_be_bytes());
        h.update(route.as_bytes());
        h.update(idempotency_key);
        DedupeKey(h.finalize().into())
    }

    /// The key for a delivery's matched `signature` on `namespace`: a second
    /// identity beside the idempotency key, so that a captured signature
    /// replayed with a new (unsigned) idempotency key is still recognised.
    /// Its digest can never equal an idempotency key's: the length prefix
    /// has its top bit set, which no real length has.
    pub fn for_signature(namespace: &str, signature: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(((namespace.len() as u64) | (1 << 63)).to_be_bytes());
        h.update(namespace.as_bytes());
        h.update(signature);
        DedupeKey(h.finalize().into())
    }

    /// The SHA-256 digest: what a store keeps instead of the key itself.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DedupeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DedupeKey({})", hex::encode(&self.0[..8]))
    }
}

/// Proof of a reservation, handed back to settle or release it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token(u128);

impl Token {
    /// A fresh token, unique among every token any process makes: a random
    /// 64-bit prefix drawn once per process, then a counter. Tokens never
    /// leave hookgate (and its Redis), so they need to be unique, not
    /// secret; drawing from the OS for each request would cost a syscall.
    pub fn unique() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::OnceLock;
        static PREFIX: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
        Token((u128::from(prefix) << 64) | u128::from(COUNTER.fetch_add(1, Ordering::Relaxed)))
    }

    /// The token as a number, for a store's own encoding.
    pub fn as_u128(self) -> u128 {
        self.0
    }
}

/// The answer to a reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The key was new and is now reserved by this token: forward.
    Acquired(Token),
    /// Another request holds the key and has no answer yet: `409`.
    InFlight,
    /// The key was delivered before: `200` duplicate, nothing forwarded.
    Delivered,
}

/// Why a store call failed. The gateway's policy (`on_error`) decides what
/// the sender gets. Messages never hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store's settings cannot work (a bad URL, no sentinel).
    #[error("dedupe store settings: {0}")]
    Settings(String),
    /// The store could not be reached or refused the command.
    #[error("dedupe store unavailable: {0}")]
    Unavailable(String),
    /// No answer within the store's timeout.
    #[error("dedupe store: no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// A settle was not acknowledged by `wait_replicas` replicas in time.
    #[error("dedupe store: {0}")]
    NotReplicated(String),
    /// Every slot of the memory store holds a delivery in flight.
    #[error("dedupe store full of deliveries in flight")]
    Full,
}

/// A store of delivery keys shared by every request of a gateway.
#[async_trait]
pub trait DedupeStore: Send + Sync {
    /// Atomically: if `key` is unknown (or its reservation expired), reserve
    /// it for this request and return [`Reservation::Acquired`]; otherwise say
    /// what holds it. Of concurrent calls for one new key, exactly one
    /// acquires.
    async fn reserve(&self, key: DedupeKey) -> Result<Reservation, StoreError>;

    /// Marks `key` delivered for the store's `ttl`, if `token` still owns it.
    async fn settle(&self, key: DedupeKey, token: Token) -> Result<(), StoreError>;

    /// Forgets `key`, if `token` still owns it, so that a retry goes through.
    async fn release(&self, key: DedupeKey, token: Token) -> Result<(), StoreError>;

    /// How many keys the store holds now (reserved or delivered), if it knows
    /// cheaply. For metrics and tests.
    fn entry_count(&self) -> Option<u64> {
        None
    }

    /// How many delivered keys the store has forgotten before their `ttl`
    /// to stay within its bound, since it started (a bounded store's only
    /// way to lose a duplicate); `None` when it never evicts.
    fn evictions(&self) -> Option<u64> {
        None
    }

    /// Finishes the store's pending housekeeping (eviction, expiry), so that
    /// [`entry_count`](DedupeStore::entry_count) is exact afterwards. For
    /// tests and metrics; a store with nothing pending does nothing.
    async fn sync(&self) {}
}
