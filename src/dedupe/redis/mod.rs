//! The dedupe store on Redis (6 or later) or Valkey, shared by several
//! gateway replicas: one server (plain or TLS), a Redis Cluster, or a
//! primary found through Sentinel.
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
//! Every script reads and writes exactly one key, so each is atomic on a
//! Redis Cluster too (one key is one slot). A caller that needs two
//! identities per delivery reserves them one after the other and releases
//! the first (token-checked) when the second conflicts: nothing here needs
//! two keys in one slot.
//!
//! # Replication
//!
//! Redis replicates asynchronously: a write a primary acknowledged can be
//! lost when that primary dies before its replicas have it. With
//! `wait_replicas: N`, a reservation that acquired and a settle are each
//! followed by `WAIT N <timeout>` on the same connection (on a Cluster, on
//! the key's primary); fewer than `N` acknowledgements make the call fail
//! (an acquired reservation is released first), so the gateway forwards
//! only what `N` replicas hold. That survives a failover only when `N` is
//! every replica: a replica that is not promoted may have acknowledged
//! writes the new primary never had, and drops them when it follows it.
//!
//! # Failures
//!
//! Every call, connecting included, is limited by `timeout`; a timeout, a
//! refused connection or an unexpected reply is a [`StoreError`], and the
//! gateway's `on_error` policy decides what the sender gets. Connections
//! are made lazily, on the first call that needs one, on whatever tokio
//! runtime that call runs (Pingora's): a failed connect is retried by the
//! next call. A call that fails on a dropped connection is tried once more
//! (all three scripts are idempotent), so the first request after Redis
//! comes back already succeeds.
//!
//! - One server: the `redis` crate's `ConnectionManager` reconnects a
//!   dropped connection.
//! - Cluster: the crate's cluster connection follows `MOVED`/`ASK` and
//!   refreshes its slot map when the topology changes.
//! - Sentinel: hookgate asks the sentinels for the primary's address (the
//!   answer of the highest `config-epoch`), checks with `ROLE` that it is
//!   a primary, and keeps that
//!   connection until it fails or answers as no primary would (`READONLY`,
//!   `MASTERDOWN`, `NOREPLICAS`, `LOADING`, too few `WAIT`
//!   acknowledgements) or the sentinels name another primary (a task asks
//!   them every [`SENTINEL_WATCH`]: a demoted primary goes on accepting
//!   writes until Sentinel reconfigures it, seconds later); the next call
//!   asks the sentinels again.
//!
//! # TLS
//!
//! `rediss://` URLs connect with rustls, verified against the system roots
//! or the configured CA, with an optional client certificate. The same
//! settings apply to every node of a Cluster and to the sentinels and the
//! primary they name.
//!
//! # Local layer
//!
//! A small in-process cache remembers keys this replica *knows* were
//! delivered (Redis said so, or this replica's upstream answered `2xx`), so
//! that a burst of duplicates does not reach Redis. Each entry lives as long
//! as the key has left in Redis, and at most [`LOCAL_TTL`]. It only ever
//! answers "delivered" for a key that was delivered, so correctness never
//! depends on it: Redis remains the source of truth.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use ::redis::cluster::ClusterClientBuilder;
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use ::redis::{
    AsyncConnectionConfig, ClientTlsConfig, ErrorKind, FromRedisValue, RedisError, Script,
    ServerErrorKind, TlsCertificates,
};
use async_trait::async_trait;
use moka::future::Cache;
use moka::Expiry;
use tokio::sync::OnceCell;

use super::{DedupeKey, DedupeStore, Reservation, StoreError, Token};
use crate::config::redact_url;

mod scripts;
mod sentinel;
mod target;

use scripts::{RELEASE, RESERVE, SETTLE};
use target::{is_connection_error, is_not_primary, open_client, without_db};
pub use target::{is_tls_url, RedisTarget, RedisTls};

use sentinel::SentinelBackend;
pub use sentinel::SENTINEL_WATCH;

/// How long the local layer remembers a delivered key at most (less when
/// `ttl` is shorter).
pub const LOCAL_TTL: Duration = Duration::from_secs(300);

/// How many delivered keys the local layer remembers at most.
pub const LOCAL_ENTRIES: u64 = 10_000;

/// Settings of a [`RedisStore`].
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Where Redis is.
    pub target: RedisTarget,
    /// TLS settings, for `rediss://` URLs.
    pub tls: RedisTls,
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
    /// After an acquiring reserve and a settle, `WAIT` for this many
    /// replicas (0: do not wait).
    pub wait_replicas: u32,
}

impl RedisOptions {
    /// Options for one server at `url`, with the config file's defaults
    /// (prefix `hookgate:`, 1 s timeout, 2 connections, 72 h ttl, 60 s in
    /// flight, no TLS files, no `WAIT`).
    pub fn new(url: impl Into<String>) -> Self {
        RedisOptions {
            target: RedisTarget::Single(url.into()),
            tls: RedisTls::default(),
            prefix: "hookgate:".into(),
            timeout: Duration::from_secs(1),
            connections: 2,
            ttl: Duration::from_secs(72 * 3600),
            in_flight_timeout: Duration::from_secs(60),
            wait_replicas: 0,
        }
    }
}

/// How the store reaches Redis.
enum Backend {
    /// One lazily made connection manager per configured connection.
    Single {
        client: Box<::redis::Client>,
        pool: Vec<OnceCell<ConnectionManager>>,
    },
    /// One lazily made cluster connection per configured connection.
    Cluster {
        client: Box<::redis::cluster::ClusterClient>,
        pool: Vec<OnceCell<ClusterConnection>>,
    },
    Sentinel(Arc<SentinelBackend>),
}

/// One connection of any backend, to run a command on.
enum Conn {
    Manager(ConnectionManager),
    Cluster(ClusterConnection),
    Plain(MultiplexedConnection),
}

impl Conn {
    async fn invoke<T: FromRedisValue>(
        &mut self,
        script: &Script,
        key: &str,
        args: &[&str],
    ) -> Result<T, RedisError> {
        let mut inv = script.key(key);
        for a in args {
            inv.arg(*a);
        }
        match self {
            Conn::Manager(c) => inv.invoke_async(c).await,
            Conn::Cluster(c) => inv.invoke_async(c).await,
            Conn::Plain(c) => inv.invoke_async(c).await,
        }
    }

    /// `WAIT replicas timeout` where `key`'s last write went: the same
    /// connection, or on a Cluster the connection to the key's primary.
    async fn wait(
        &mut self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> Result<i64, RedisError> {
        let mut cmd = ::redis::cmd("WAIT");
        cmd.arg(replicas).arg(millis(timeout));
        match self {
            Conn::Manager(c) => cmd.query_async(c).await,
            Conn::Plain(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::with_key(key, SlotAddr::Master),
                ));
                let v = c.route_command(cmd, route).await?;
                i64::from_redis_value(v).map_err(RedisError::from)
            }
        }
    }
}

/// A [`DedupeStore`] in Redis: shared by every replica that uses the same
/// Redis and prefix, and kept across restarts of the gateway.
///
/// A settle that fails (Redis unreachable, too few `WAIT`
/// acknowledgements) is retried in the background until it succeeds or
/// `in_flight_timeout` has passed: the upstream has the delivery, so the key
/// must end up delivered rather than expire and let a duplicate through.
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl RedisStore {
    /// A store for `options`. Checks the URLs and TLS files but does not
    /// connect: the first call does.
    pub fn new(options: RedisOptions) -> Result<Self, StoreError> {
        Ok(RedisStore {
            inner: Arc::new(Inner::new(options)?),
        })
    }

    /// The Redis key of `key`.
    pub fn redis_key(&self, key: &DedupeKey) -> String {
        self.inner.redis_key(key)
    }
}

struct Inner {
    backend: Backend,
    next: AtomicUsize,
    prefix: String,
    timeout: Duration,
    ttl_ms: u64,
    in_flight_ms: u64,
    in_flight: Duration,
    ttl: Duration,
    wait_replicas: u32,
    /// The local layer: keys known delivered, each with its remaining
    /// lifetime in Redis (capped) as its own expiry.
    delivered: Cache<DedupeKey, Duration>,
    reserve: Script,
    settle: Script,
    release: Script,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No URL: it may hold a password.
        let kind = match &self.backend {
            Backend::Single { .. } => "single",
            Backend::Cluster { .. } => "cluster",
            Backend::Sentinel(_) => "sentinel",
        };
        f.debug_struct("RedisStore")
            .field("backend", &kind)
            .field("prefix", &self.prefix)
            .field("connections", &self.pool_len())
            .field("wait_replicas", &self.wait_replicas)
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

impl Inner {
    fn new(options: RedisOptions) -> Result<Self, StoreError> {
        let n = options.connections.max(1);
        let tls = options.target.is_tls().then(|| options.tls.certificates());
        let invalid = |what: &str, e: RedisError| {
            // The crate's message, never the URL: it may hold a password.
            StoreError::Settings(format!("invalid redis {what}: {:?}", e.kind()))
        };
        let backend = match &options.target {
            RedisTarget::Single(url) => Backend::Single {
                client: Box::new(open_client(url, tls.as_ref()).map_err(|e| invalid("URL", e))?),
                pool: (0..n).map(|_| OnceCell::new()).collect(),
            },
            RedisTarget::Cluster(urls) => {
                let mut b = ClusterClientBuilder::new(urls.iter().map(String::as_str))
                    .connection_timeout(options.timeout)
                    .response_timeout(options.timeout)
                    .retries(3)
                    .min_retry_wait(10)
                    .max_retry_wait(200);
                if let Some(certs) = &tls {
                    b = b.certs(certs.clone());
                }
                Backend::Cluster {
                    client: Box::new(b.build().map_err(|e| invalid("cluster URLs", e))?),
                    pool: (0..n).map(|_| OnceCell::new()).collect(),
                }
            }
            RedisTarget::Sentinel { master, urls } => {
                let first = urls
                    .first()
                    .ok_or_else(|| StoreError::Settings("no sentinel URL".into()))?;
                let node = url::Url::parse(first)
                    .map_err(|_| StoreError::Settings("invalid sentinel URL".into()))?;
                let sentinels = urls
                    .iter()
                    .map(|u| open_client(&without_db(u), tls.as_ref()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid("sentinel URL", e))?;
                Backend::Sentinel(Arc::new(SentinelBackend {
                    master: master.clone(),
                    sentinels,
                    node,
                    tls: tls.clone(),
                    pool: (0..n).map(|_| Mutex::new(None)).collect(),
                    primary: Mutex::new(None),
                    watching: AtomicBool::new(false),
                    timeout: options.timeout,
                }))
            }
        };
        let delivered = Cache::builder()
            .max_capacity(LOCAL_ENTRIES)
            .expire_after(OwnLifetime)
            .build();
        Ok(Inner {
            backend,
            next: AtomicUsize::new(0),
            prefix: options.prefix,
            timeout: options.timeout,
            ttl: options.ttl,
            ttl_ms: millis(options.ttl),
            in_flight_ms: millis(options.in_flight_timeout),
            in_flight: options.in_flight_timeout,
            wait_replicas: options.wait_replicas,
            delivered,
            reserve: Script::new(RESERVE),
            settle: Script::new(SETTLE),
            release: Script::new(RELEASE),
        })
    }

    fn pool_len(&self) -> usize {
        match &self.backend {
            Backend::Single { pool, .. } => pool.len(),
            Backend::Cluster { pool, .. } => pool.len(),
            Backend::Sentinel(s) => s.pool.len(),
        }
    }

    fn redis_key(&self, key: &DedupeKey) -> String {
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
    async fn connection(&self, i: usize) -> Result<Conn, RedisError> {
        match &self.backend {
            Backend::Single { client, pool } => pool[i]
                .get_or_try_init(|| {
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(self.timeout))
                        .set_response_timeout(Some(self.timeout))
                        // One attempt per (re)connect: a failed one is retried
                        // by the next call, not by sleeping inside this one.
                        .set_number_of_retries(0);
                    ConnectionManager::new_with_config((**client).clone(), config)
                })
                .await
                .cloned()
                .map(Conn::Manager),
            Backend::Cluster { client, pool } => pool[i]
                .get_or_try_init(|| client.get_async_connection())
                .await
                .cloned()
                .map(Conn::Cluster),
            Backend::Sentinel(s) => {
                s.watch();
                let cached = s.pool[i].lock().ok().and_then(|c| c.clone());
                if let Some(c) = cached {
                    return Ok(Conn::Plain(c));
                }
                let c = s.connect().await?;
                if let Ok(mut slot) = s.pool[i].lock() {
                    *slot = Some(c.clone());
                }
                Ok(Conn::Plain(c))
            }
        }
    }

    /// Forgets connection `i` after `e`, if it is a Sentinel connection that
    /// `e` shows unusable: the next call asks the sentinels again.
    fn after_error(&self, i: usize, e: &RedisError) {
        if let Backend::Sentinel(s) = &self.backend {
            if is_not_primary(e) {
                if let Ok(mut slot) = s.pool[i].lock() {
                    *slot = None;
                }
            }
        }
    }

    /// Runs `script` on `key` with `args` (then `WAIT`s for the replicas
    /// when `wait` and it is configured), within `timeout`, trying once
    /// more after a connection-level failure. Answers the script's reply
    /// and, when it waited, how many replicas acknowledged.
    async fn eval<T: FromRedisValue>(
        &self,
        script: &Script,
        key: &str,
        args: &[&str],
        wait: impl Fn(&T) -> bool,
    ) -> Result<(T, Option<i64>), StoreError> {
        // Both tries on the same connection slot: the first one's failure is
        // what makes its manager reconnect, and the second waits for that.
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool_len();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let attempt = || async {
            let mut conn = self.connection(i).await?;
            let r = async {
                let answer: T = conn.invoke(script, key, args).await?;
                let acked = if self.wait_replicas > 0 && wait(&answer) {
                    // Within what is left of the call, with a margin, so
                    // that a short count is an answer and not a timeout.
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let limit = left.saturating_sub(left / 4);
                    Some(conn.wait(key, self.wait_replicas, limit).await?)
                } else {
                    None
                };
                Ok::<_, RedisError>((answer, acked))
            }
            .await;
            if let Err(e) = &r {
                self.after_error(i, e);
            }
            r
        };
        let both = async {
            match attempt().await {
                Err(e)
                    if is_connection_error(&e)
                        || matches!(self.backend, Backend::Sentinel(_)) && is_not_primary(&e) =>
                {
                    attempt().await
                }
                r => r,
            }
        };
        match tokio::time::timeout_at(deadline, both).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.after_error(i, &e);
                Err(StoreError::Unavailable(format!("redis: {e}")))
            }
            Err(_) => {
                // A connection that timed out may hang for ever.
                self.after_error(
                    i,
                    &RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)),
                );
                Err(StoreError::Timeout(self.timeout))
            }
        }
    }

    /// The error for `acked` of [`RedisStore::wait_replicas`] replicas, and
    /// forgets a Sentinel connection (its primary may have been demoted).
    fn too_few(&self, what: &str, acked: i64) -> StoreError {
        if let Backend::Sentinel(s) = &self.backend {
            s.forget();
        }
        StoreError::NotReplicated(format!(
            "redis: {what} reached {acked} of {} replicas within {:?} (wait_replicas)",
            self.wait_replicas, self.timeout
        ))
    }
}

impl Inner {
    async fn reserve(&self, key: DedupeKey) -> Result<Reservation, StoreError> {
        if self.delivered.contains_key(&key) {
            return Ok(Reservation::Delivered);
        }
        let token = Token::unique();
        let value = Self::token_value(token);
        let ms = self.in_flight_ms.to_string();
        let rkey = self.redis_key(&key);
        let ((answer, ms_left), acked): ((i64, i64), _) = self
            .eval(&self.reserve, &rkey, &[&value, &ms], |&(a, _)| a == 1)
            .await?;
        match answer {
            1 => {
                if let Some(acked) = acked.filter(|&n| n < i64::from(self.wait_replicas)) {
                    // Not on enough replicas: a failover could lose it, so
                    // do not forward on it. Give it back (best effort) so
                    // that the sender's retry is not held up.
                    let _ = self.release(key, token).await;
                    return Err(self.too_few("the reservation", acked));
                }
                Ok(Reservation::Acquired(token))
            }
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
            n => Err(StoreError::Unavailable(format!(
                "redis: unexpected reserve answer {n}"
            ))),
        }
    }

    /// One try at settling: the script, then `WAIT` when configured.
    async fn settle(&self, key: DedupeKey, token: Token) -> Result<(), StoreError> {
        let ms = self.ttl_ms.to_string();
        let (owned, acked): (i64, _) = self
            .eval(
                &self.settle,
                &self.redis_key(&key),
                &[&Self::token_value(token), &ms],
                |_| true,
            )
            .await?;
        if owned != 1 {
            tracing::debug!(?key, "settle: the reservation was no longer ours");
        }
        if let Some(acked) = acked.filter(|&n| n < i64::from(self.wait_replicas)) {
            return Err(self.too_few("the settle", acked));
        }
        Ok(())
    }

    async fn release(&self, key: DedupeKey, token: Token) -> Result<(), StoreError> {
        let (owned, _): (i64, _) = self
            .eval(
                &self.release,
                &self.redis_key(&key),
                &[&Self::token_value(token)],
                |_| false,
            )
            .await?;
        if owned != 1 {
            tracing::debug!(?key, "release: the reservation was no longer ours");
        }
        Ok(())
    }
}

impl Inner {
    /// Tries `settle` again in the background, with growing pauses, until
    /// it succeeds or `in_flight_timeout` has passed (the reservation has
    /// expired by then: there is nothing left to settle).
    fn settle_later(self: &Arc<Self>, key: DedupeKey, token: Token) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.clone();
        runtime.spawn(async move {
            let give_up = Instant::now() + inner.in_flight;
            let mut pause = Duration::from_millis(50);
            loop {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
                if Instant::now() >= give_up {
                    tracing::warn!(
                        ?key,
                        "settle: gave up retrying; the reservation has expired"
                    );
                    return;
                }
                match inner.settle(key, token).await {
                    Ok(()) => {
                        tracing::info!(?key, "settle: succeeded on a retry");
                        return;
                    }
                    Err(e) => tracing::debug!(?key, error = %e, "settle: retry failed"),
                }
            }
        });
    }
}

#[async_trait]
impl DedupeStore for RedisStore {
    async fn reserve(&self, key: DedupeKey) -> Result<Reservation, StoreError> {
        self.inner.reserve(key).await
    }

    async fn settle(&self, key: DedupeKey, token: Token) -> Result<(), StoreError> {
        // The upstream answered 2xx: the key is delivered, whatever Redis
        // says next.
        self.inner.remember_delivered(key, self.inner.ttl).await;
        let r = self.inner.settle(key, token).await;
        if r.is_err() {
            self.inner.settle_later(key, token);
        }
        r
    }

    async fn release(&self, key: DedupeKey, token: Token) -> Result<(), StoreError> {
        self.inner.release(key, token).await
    }
}

#[cfg(test)]
mod tests;
