//! The dedupe store a config asks for.

use std::sync::Arc;

use crate::config::{Backend, Config};
use crate::dedupe::{DedupeStore, MemoryStore, RedisOptions, RedisStore, StoreError};

/// The dedupe store `config`'s `dedupe:` block asks for.
pub(super) fn store_for(config: &Config) -> std::result::Result<Arc<dyn DedupeStore>, StoreError> {
    let d = &config.dedupe;
    match &d.backend {
        Backend::Memory => Ok(Arc::new(MemoryStore::new(
            d.max_entries,
            d.ttl,
            d.in_flight_timeout,
        ))),
        Backend::Redis(r) => Ok(Arc::new(RedisStore::new(RedisOptions {
            target: r.target.clone(),
            tls: r.tls.clone(),
            prefix: r.prefix.clone(),
            timeout: r.timeout,
            connections: r.connections,
            ttl: d.ttl,
            in_flight_timeout: d.in_flight_timeout,
            wait_replicas: r.wait_replicas,
        })?)),
    }
}
