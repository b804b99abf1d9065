//! `dedupe:`: which store remembers delivered keys, and for how long.

use std::time::Duration;

use serde_saphyr::Spanned;

pub use super::choices::{BackendKind, OnStoreError};
use super::value::{or_default, pos};
use super::{defaults, file, Problem, Problems};

/// Dedupe store settings (`dedupe:`).
#[derive(Debug, Clone)]
pub struct Dedupe {
    /// Which store.
    pub backend: Backend,
    /// How long a delivered key is remembered.
    pub ttl: Duration,
    /// How long a reservation lives without an answer.
    pub in_flight_timeout: Duration,
    /// Upper bound on remembered keys (memory backend).
    pub max_entries: u64,
}

impl Dedupe {
    /// What a request gets when the store fails. The memory store never
    /// fails, so only the Redis backend's `on_error` matters.
    pub fn on_error(&self) -> OnStoreError {
        match &self.backend {
            Backend::Memory => OnStoreError::FailClosed,
            Backend::Redis { on_error, .. } => *on_error,
        }
    }
}

/// Where delivered keys are remembered.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// In-process compact table ([`crate::dedupe::MemoryStore`]).
    Memory,
    /// A Redis (6+) or Valkey shared by every replica (`dedupe.redis`).
    Redis {
        /// `redis://[user:password@]host[:port][/db]` (or `valkey://`).
        /// May hold a password: never log it.
        url: String,
        /// Prepended to every key (default `hookgate:`), so that several
        /// gateways or other programs can share one Redis.
        prefix: String,
        /// Limit of every Redis call, connecting included (default 1 s).
        timeout: Duration,
        /// Multiplexed connections, used in turn (default 2).
        connections: usize,
        /// What a request gets while Redis fails (default fail closed).
        on_error: OnStoreError,
    },
}

impl std::fmt::Debug for Backend {
    // By hand, so that a password in the URL never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Memory => f.write_str("Memory"),
            Backend::Redis {
                url,
                prefix,
                timeout,
                connections,
                on_error,
            } => f
                .debug_struct("Redis")
                .field("url", &redact_url(url))
                .field("prefix", prefix)
                .field("timeout", timeout)
                .field("connections", connections)
                .field("on_error", on_error)
                .finish(),
        }
    }
}

/// `url` with any password replaced by `***`, for display.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<invalid url>".to_string(),
    }
}

pub(super) fn build_dedupe(
    d: Option<file::Dedupe>,
    warnings: &mut Vec<String>,
    p: &mut Problems,
) -> Dedupe {
    let d = d.unwrap_or_default();
    let backend_at = d.backend.as_ref().map(|b| b.at);
    let backend = match or_default(d.backend.as_ref(), "dedupe.backend", BackendKind::Memory, p) {
        BackendKind::Memory => {
            if let Some(r) = &d.redis {
                warnings.push(format!(
                    "dedupe.redis (line {}) is ignored: dedupe.backend is `memory`, so replicas do not share their keys",
                    r.referenced.line()
                ));
            }
            Backend::Memory
        }
        BackendKind::Redis => match &d.redis {
            Some(r) => build_redis(r, p).unwrap_or(Backend::Memory),
            None => {
                p.push(Problem::at(
                    "dedupe.redis",
                    backend_at.unwrap_or((0, 0)),
                    "backend `redis` needs a `dedupe.redis` block with a `url`".into(),
                ));
                Backend::Memory
            }
        },
    };
    let ttl = or_default(d.ttl.as_ref(), "dedupe.ttl", defaults::TTL, p);
    let in_flight_timeout = or_default(
        d.in_flight_timeout.as_ref(),
        "dedupe.in_flight_timeout",
        defaults::IN_FLIGHT_TIMEOUT,
        p,
    );
    let max_entries = match d.max_entries {
        None => defaults::MAX_ENTRIES,
        Some(m) if m.value >= 1 => m.value,
        Some(m) => {
            p.push(Problem::at(
                "dedupe.max_entries",
                pos(&m),
                "must be at least 1".into(),
            ));
            1
        }
    };
    for (v, key) in [
        (ttl, "dedupe.ttl"),
        (in_flight_timeout, "dedupe.in_flight_timeout"),
    ] {
        if v.is_zero() {
            p.push(Problem::new(key, "must be longer than zero".into()));
        }
    }
    Dedupe {
        backend,
        ttl,
        in_flight_timeout,
        max_entries,
    }
}

/// The longest `dedupe.redis.prefix`.
const MAX_PREFIX: usize = 256;

fn build_redis(r: &Spanned<file::Redis>, p: &mut Problems) -> Option<Backend> {
    let before = p.len();
    let r = &r.value;
    // Messages never repeat the URL: it may hold a password.
    let url = r.url.value.trim();
    let ukey = "dedupe.redis.url";
    match url::Url::parse(url).map(|u| u.scheme().to_string()) {
        Ok(s) if s == "redis" || s == "valkey" => {
            if redis::Client::open(url).is_err() {
                p.push(Problem::at(
                    ukey,
                    pos(&r.url),
                    "not a valid Redis URL; use redis://[user:password@]host[:port][/db]".into(),
                ));
            }
        }
        Ok(s) if s == "rediss" || s == "valkeys" => p.push(Problem::at(
            ukey,
            pos(&r.url),
            format!("`{s}://` (TLS to Redis) is not supported by this build yet; use redis:// on a private network or through a TLS tunnel"),
        )),
        Ok(s) => p.push(Problem::at(
            ukey,
            pos(&r.url),
            format!("scheme `{s}` is not supported; use redis:// or valkey://"),
        )),
        Err(_) => p.push(Problem::at(
            ukey,
            pos(&r.url),
            "not a URL; use redis://[user:password@]host[:port][/db]".into(),
        )),
    }
    let prefix = match &r.prefix {
        None => defaults::REDIS_PREFIX.to_string(),
        Some(x) if x.value.len() <= MAX_PREFIX => x.value.clone(),
        Some(x) => {
            p.push(Problem::at(
                "dedupe.redis.prefix",
                pos(x),
                format!("at most {MAX_PREFIX} bytes"),
            ));
            String::new()
        }
    };
    let timeout = or_default(
        r.timeout.as_ref(),
        "dedupe.redis.timeout",
        defaults::REDIS_TIMEOUT,
        p,
    );
    if timeout.is_zero() || timeout > Duration::from_secs(60) {
        p.push(Problem::at(
            "dedupe.redis.timeout",
            r.timeout.as_ref().map_or((0, 0), |t| t.at),
            "must be longer than zero and at most 60s".into(),
        ));
    }
    let connections = match &r.connections {
        None => defaults::REDIS_CONNECTIONS as usize,
        Some(c) if (1..=64).contains(&c.value) => c.value as usize,
        Some(c) => {
            p.push(Problem::at(
                "dedupe.redis.connections",
                pos(c),
                "must be between 1 and 64".into(),
            ));
            1
        }
    };
    let on_error = or_default(
        r.on_error.as_ref(),
        "dedupe.redis.on_error",
        OnStoreError::FailClosed,
        p,
    );
    if p.len() != before {
        return None;
    }
    Some(Backend::Redis {
        url: url.to_string(),
        prefix,
        timeout,
        connections,
        on_error,
    })
}
