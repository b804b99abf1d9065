//! A dedupe reservation held by a request: a value that ends itself.
//!
//! Whoever holds a [`Held`] must end it with [`Held::settle`] (the receiver
//! answered `2xx`), [`Held::release`] (it did not take the delivery) or
//! [`Held::keep_until_expiry`] (nobody knows: the upstream timed out). If it
//! is dropped
//! unended — the request future was cancelled, or a path out forgot it —
//! `Drop` releases it in the background, so a key is never left reserved
//! until `in_flight_timeout`, and the in-flight gauge is right by
//! construction rather than by care.

use std::sync::Arc;

use prometheus::IntGauge;

use crate::dedupe::{DedupeKey, DedupeStore, StoreError, Token};

/// A reservation this request holds.
pub(crate) struct Held {
    store: Arc<dyn DedupeStore>,
    key: DedupeKey,
    token: Token,
    inflight: IntGauge,
    ended: bool,
}

impl Held {
    /// Takes over a reservation `store` just granted.
    pub fn new(
        store: Arc<dyn DedupeStore>,
        key: DedupeKey,
        token: Token,
        inflight: IntGauge,
    ) -> Self {
        inflight.inc();
        Held {
            store,
            key,
            token,
            inflight,
            ended: false,
        }
    }

    /// The key is delivered: remember it for the store's `ttl`.
    pub async fn settle(mut self) -> Result<(), StoreError> {
        self.end();
        self.store.settle(self.key, self.token).await
    }

    /// The key was not delivered: forget it, so the sender's retry goes
    /// through.
    pub async fn release(mut self) -> Result<(), StoreError> {
        self.end();
        self.store.release(self.key, self.token).await
    }

    /// The receiver may still be working on the delivery (the upstream
    /// timed out): leave the key in flight, so retries get `409`, until the
    /// store expires the reservation `in_flight_timeout` after it was made.
    pub fn keep_until_expiry(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.ended = true;
        self.inflight.dec();
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        self.inflight.dec();
        let (store, key, token) = (self.store.clone(), self.key, self.token);
        // Without a runtime (a test dropping it outside one) the reservation
        // expires after `in_flight_timeout` by itself.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.release(key, token).await {
                    tracing::warn!(error = %e, "could not release an abandoned reservation");
                }
            });
        }
    }
}
