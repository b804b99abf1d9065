//! The dedupe store on Redis (6 or later) or Valkey, shared by several
//! gateway replicas.
//!
//! This module owns the Redis data layout, the Lua scripts that change it,
//! the connections to Redis, and a small local cache of keys known to be
//! delivered.
//!
//! # Data layout
//!
//! One string per dedupe key, at `prefix + hex(DedupeKey)`:
//!
//! - a reservation holds `f:<token as 32 hex digits>` and expires after
//!   `in_flight_timeout` (`PX`);
//! - a delivered key holds `d` and expires after `ttl`.
//!
//! # Commands
//!
//! Every change is one Lua script, so it is atomic on the server:
//!
//! - reserve: `SET key f:<token> NX PX <in_flight_ms>`; when the key exists,
//!   the same script reads it to tell *delivered* from *in flight*. Doing
//!   both in one script (rather than `SET NX` then `GET`) leaves no gap in
//!   which the key could expire between the two. It also answers
//!   *acquired* when the key already holds this request's own token, so
//!   that a retry after a lost reply is harmless.
//! - settle: if `GET key` is this token, `SET key d PX <ttl_ms>`.
//! - release: if `GET key` is this token, `DEL key`.
//!
//! Scripts are sent with `EVALSHA` and loaded again when Redis lost them
//! (after a restart).
//!
//! # Failures
//!
//! Every call, connecting included, is limited by `timeout`; a timeout, a
//! refused connection or an unexpected reply is a [`StoreError`], and the
//! gateway's `on_error` policy decides what the sender gets. Connections
//! are made lazily, on the first call that needs one, on whatever tokio
//! runtime that call runs (Pingora's): a failed connect is retried by the
//! next call, and an established connection that drops is reconnected by
//! the `redis` crate's `ConnectionManager`. A call that fails on a dropped
//! connection is tried once more (all three scripts are idempotent), so the
//! first request after Redis comes back already succeeds.
//!
//! # Local layer
//!
//! A small in-process cache remembers keys this replica *knows* were
//! delivered (Redis said so, or this replica's upstream answered `2xx`), so
//! that a burst of duplicates does not reach Redis. Each entry lives as long
//! as the key has left in Redis, and at most [`LOCAL_TTL`]. It only ever
//! answers "delivered" for a key that was delivered, so correctness never
//! depends on it: Redis remains the source of truth.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{FromRedisValue, RedisError, Script};
use async_trait::async_trait;
use moka::future::Cache;
use moka::Expiry;
use tokio::sync::OnceCell;

use super::{DedupeKey, DedupeStore, Reservation, StoreError, Token};

/// Reserve: `{1, 0}` acquired (or already ours), `{2, ms left}` delivered,
/// `{0, 0}` in flight.
/// KEYS[1] = key, ARGV[1] = `f:<token>`, ARGV[2] = in-flight ms.
const RESERVE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, 0}
end
local v = redis.call('GET', KEYS[1])
if v == 'd' then
  return {2, redis.call('PTTL', KEYS[1])}
end
if v == ARGV[1] then
  return {1, 0}
end
return {0, 0}
";

/// Settle: `1` marked delivered, `0` not ours (any more).
/// KEYS[1] = key, ARGV[1] = `f:<token>`, ARGV[2] = ttl ms.
const SETTLE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'd', 'PX', ARGV[2])
  return 1
end
return 0
";

/// Release: `1` deleted, `0` not ours (any more).
/// KEYS[1] = key, ARGV[1] = `f:<token>`.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// How long the local layer remembers a delivered key at most (less when
/// `ttl` is shorter).
pub const LOCAL_TTL: Duration = Duration::from_secs(300);

/// How many delivered keys the local layer remembers at most.
pub const LOCAL_ENTRIES: u64 = 10_000;

/// Settings of a [`RedisStore`].
#[derive(Clone)]
pub struct RedisOptions {
    /// `redis://[user:password@]host[:port][/db]` or `valkey://…`.
    pub url: String,
    /// Prepended to every key.
    pub prefix: String,
    /// Limit of each store call, connecting and one retry included.
    pub timeout: Duration,
    /// Multiplexed connections, used in turn (at least 1).
    pub connections: usize,
    /// How long a delivered key is remembered.
    pub ttl: Duration,
    /// How long a reservation lives without an answer.
    pub in_flight_timeout: Duration,
}

/// A [`DedupeStore`] in Redis: shared by every replica that uses the same
/// Redis and prefix, and kept across restarts of the gateway.
pub struct RedisStore {
    client: ::redis::Client,
    /// One lazily made connection manager per configured connection.
    pool: Vec<OnceCell<ConnectionManager>>,
    next: AtomicUsize,
    prefix: String,
    timeout: Duration,
    ttl_ms: u64,
    in_flight_ms: u64,
    ttl: Duration,
    /// The local layer: keys known delivered, each with its remaining
    /// lifetime in Redis (capped) as its own expiry.
    delivered: Cache<DedupeKey, Duration>,
    reserve: Script,
    settle: Script,
    release: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No URL: it may hold a password.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("connections", &self.pool.len())
            .finish_non_exhaustive()
    }
}

/// Each local entry expires after the lifetime it holds.
struct OwnLifetime;

impl Expiry<DedupeKey, Duration> for OwnLifetime {
    fn expire_after_create(&self, _: &DedupeKey, v: &Duration, _: Instant) -> Option<Duration> {
        Some(*v)
    }

    fn expire_after_update(
        &self,
        _: &DedupeKey,
        v: &Duration,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(*v)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A connection-level failure, after which a second try may succeed on a
/// fresh connection.
fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_unrecoverable_error()
}

impl RedisStore {
    /// A store for `options`. Checks the URL but does not connect: the
    /// first call does.
    pub fn new(options: RedisOptions) -> Result<Self, StoreError> {
        let client = ::redis::Client::open(options.url.as_str())
            .map_err(|_| StoreError("invalid redis URL".into()))?;
        let delivered = Cache::builder()
            .max_capacity(LOCAL_ENTRIES)
            .expire_after(OwnLifetime)
            .build();
        Ok(RedisStore {
            client,
            pool: (0..options.connections.max(1))
                .map(|_| OnceCell::new())
                .collect(),
            next: AtomicUsize::new(0),
            prefix: options.prefix,
            timeout: options.timeout,
            ttl: options.ttl,
            ttl_ms: millis(options.ttl),
            in_flight_ms: millis(options.in_flight_timeout),
            delivered,
            reserve: Script::new(RESERVE),
            settle: Script::new(SETTLE),
            release: Script::new(RELEASE),
        })
    }

    /// The Redis key of `key`.
    pub fn redis_key(&self, key: &DedupeKey) -> String {
        format!("{}{}", self.prefix, hex::encode(key.as_bytes()))
    }

    /// Puts `key` in the local layer for `left` (at most [`LOCAL_TTL`]).
    async fn remember_delivered(&self, key: DedupeKey, left: Duration) {
        let left = left.min(LOCAL_TTL);
        if !left.is_zero() {
            self.delivered.insert(key, left).await;
        }
    }

    fn token_value(token: Token) -> String {
        format!("f:{:032x}", token.as_u128())
    }

    /// Connection `i` of the pool, connecting it if needed.
    async fn connection(&self, i: usize) -> Result<ConnectionManager, RedisError> {
        self.pool[i]
            .get_or_try_init(|| {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(self.timeout)
                    .set_response_timeout(self.timeout)
                    // One attempt per (re)connect: a failed one is retried
                    // by the next call, not by sleeping inside this one.
                    .set_number_of_retries(0);
                ConnectionManager::new_with_config(self.client.clone(), config)
            })
            .await
            .cloned()
    }

    /// Runs `script` on `key` with `args`, within `timeout`, trying once
    /// more after a connection-level failure.
    async fn eval<T: FromRedisValue>(
        &self,
        script: &Script,
        key: &str,
        args: &[&str],
    ) -> Result<T, StoreError> {
        // Both tries on the same connection: the first one's failure is
        // what makes its manager reconnect, and the second waits for that.
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        let attempt = || async move {
            let mut conn = self.connection(i).await?;
            let mut inv = script.key(key);
            for a in args {
                inv.arg(*a);
            }
            inv.invoke_async::<T>(&mut conn).await
        };
        let both = async {
            match attempt().await {
                Err(e) if is_connection_error(&e) => attempt().await,
                r => r,
            }
        };
        match tokio::time::timeout(self.timeout, both).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(StoreError(format!("redis: {e}"))),
            Err(_) => Err(StoreError(format!(
                "redis: no answer within {:?}",
                self.timeout
            ))),
        }
    }
}

#[async_trait]
impl DedupeStore for RedisStore {
    async fn reserve(&self, key: DedupeKey) -> Result<Reservation, StoreError> {
        if self.delivered.contains_key(&key) {
            return Ok(Reservation::Delivered);
        }
        let token = Token::unique();
        let value = Self::token_value(token);
        let ms = self.in_flight_ms.to_string();
        let (answer, ms_left): (i64, i64) = self
            .eval(&self.reserve, &self.redis_key(&key), &[&value, &ms])
            .await?;
        match answer {
            1 => Ok(Reservation::Acquired(token)),
            2 => {
                // Remember it locally no longer than Redis does (`-1`, no
                // expiry, is someone else's doing: the cap applies).
                let left = u64::try_from(ms_left).map_or(LOCAL_TTL, Duration::from_millis);
                self.remember_delivered(key, left).await;
                Ok(Reservation::Delivered)
            }
            // The key holds a reservation, or something hookgate did not
            // write: either way it is not ours to forward now.
            0 => Ok(Reservation::InFlight),
            n => Err(StoreError(format!("redis: unexpected reserve answer {n}"))),
        }
    }

    async fn settle(&self, key: DedupeKey, token: Token) -> Result<(), StoreError> {
        // The upstream answered 2xx: the key is delivered, whatever Redis
        // says next.
        self.remember_delivered(key, self.ttl).await;
        let ms = self.ttl_ms.to_string();
        let owned: i64 = self
            .eval(
                &self.settle,
                &self.redis_key(&key),
                &[&Self::token_value(token), &ms],
            )
            .await?;
        if owned != 1 {
            tracing::debug!(?key, "settle: the reservation was no longer ours");
        }
        Ok(())
    }

    async fn release(&self, key: DedupeKey, token: Token) -> Result<(), StoreError> {
        let owned: i64 = self
            .eval(
                &self.release,
                &self.redis_key(&key),
                &[&Self::token_value(token)],
            )
            .await?;
        if owned != 1 {
            tracing::debug!(?key, "release: the reservation was no longer ours");
        }
        Ok(())
    }
}
