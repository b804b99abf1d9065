//! `dedupe:`: which store remembers delivered keys, and for how long.

use std::time::Duration;

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
            Backend::Redis(r) => r.on_error,
        }
    }
}

/// Where delivered keys are remembered.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// In-process compact table ([`crate::dedupe::MemoryStore`]).
    Memory,
    /// A Redis (6+) or Valkey shared by every replica (`dedupe.redis`).
    Redis(super::RedisConfig),
}

impl std::fmt::Debug for Backend {
    // `RedisConfig`'s `Debug` redacts URL passwords and TLS files.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Memory => f.write_str("Memory"),
            Backend::Redis(r) => f.debug_tuple("Redis").field(r).finish(),
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
            Some(r) => super::redis::build_redis(r, p).unwrap_or(Backend::Memory),
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
