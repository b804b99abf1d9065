//! Client connections, bounded: how many are open at once
//! (`server.max_connections`), how long one may sit idle between requests
//! (`server.idle_timeout`) and how long a request's header may take
//! (`server.header_timeout`).
//!
//! Pingora 0.9 has none of these for HTTP/1 (see `docs/pingora.md`): after
//! each request it waits for the next one without limit, and it bounds each
//! read of a header on its own, never the whole header. So [`Guarded`] wraps
//! the HTTP application and owns the HTTP/1 connection loop that Pingora's
//! `ServerApp` would run: it holds a permit of a semaphore for the life of
//! the connection, and reads the connection through [`Watched`], which
//! knows where a request's header ends and enforces the deadlines.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use tokio::sync::{Notify, Semaphore};

use crate::metrics::Metrics;

mod watched;

use watched::Watched;

/// The deadlines a connection's reads obey.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Between an answer and the next request's first byte.
    pub idle: Duration,
    /// From a request's first byte (the connection's start, for its first
    /// request) to the end of its header.
    pub header: Duration,
}

/// What the connection loop and its [`Watched`] stream share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Set by the loop when a request was answered and the connection is
    /// kept: the next read waits for a new request.
    answered: AtomicBool,
    /// Notified by the stream when it gives up on the connection.
    closed: Notify,
}

/// An HTTP application behind connection bounds: a Pingora `ServerApp` that
/// a `listening::Service` hosts like the application itself (TLS, threads
/// and listeners unchanged).
pub(crate) struct Guarded<A> {
    inner: Arc<A>,
    permits: Arc<Semaphore>,
    limits: Limits,
    metrics: Arc<Metrics>,
    /// When the last "connection limit reached" warning was logged, in
    /// seconds since `started` (at most one every 10 s).
    warned: AtomicU64,
    started: Instant,
}

impl<A> Guarded<A> {
    /// `inner` with at most `max_connections` connections at once.
    pub(crate) fn new(
        inner: A,
        max_connections: usize,
        limits: Limits,
        metrics: Arc<Metrics>,
    ) -> Self {
        Guarded {
            inner: Arc::new(inner),
            permits: Arc::new(Semaphore::new(max_connections)),
            limits,
            metrics,
            warned: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    fn warn_full(&self) {
        let now = self.started.elapsed().as_secs() + 10;
        let last = self.warned.load(Ordering::Relaxed);
        if now >= last + 10
            && self
                .warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!("server.max_connections reached: new connections are closed on arrival");
        }
    }

    /// Pingora's default for a connection's first request, kept as a
    /// backstop behind the deadlines [`Watched`] enforces: the per-read
    /// keep-alive timeout of the header reads, a little longer than both.
    fn backstop(&self) -> u64 {
        self.limits.idle.max(self.limits.header).as_secs() + 5
    }
}

#[async_trait]
impl<A> ServerApp for Guarded<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // Dropping the stream closes it; the permit goes with the connection.
        let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
            self.warn_full();
            return None;
        };
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            // Not offered by hookgate's listeners; Pingora's own loop if it
            // ever is (the connection bound still holds).
            return ServerApp::process_new(&self.inner, stream, shutdown).await;
        }
        let shared = Arc::new(Shared::default());
        let stream: Stream = Box::new(Watched::new(
            stream,
            shared.clone(),
            self.limits,
            self.metrics.clone(),
        ));
        let mut session = ServerSession::new_http1(stream);
        // As Pingora's own loop does (`apps/mod.rs`), with the keep-alive
        // wait bounded by the backstop rather than 60 s.
        if *shutdown.borrow() {
            session.set_keepalive(None);
        } else {
            session.set_keepalive(Some(self.backstop()));
        }
        loop {
            let reused = tokio::select! {
                r = self.inner.process_new_http(session, shutdown) => r,
                () = shared.closed.notified() => None,
            };
            let (stream, settings) = reused?.consume();
            shared.answered.store(true, Ordering::Release);
            session = ServerSession::new_http1(stream);
            if let Some(settings) = settings {
                settings.apply_to_session(&mut session);
            }
            // Pingora keeps an HTTP/1.1 connection with no time limit
            // (`KeepaliveStatus::Infinite`); bound it (`None` stays `None`:
            // an HTTP/1.0 or `Connection: close` client is not kept).
            if session.get_keepalive().is_some() {
                session.set_keepalive(Some(self.backstop()));
            }
        }
    }

    async fn cleanup(&self) {
        // Wakes requests waiting on a kept connection, so a stop closes them.
        self.inner.http_cleanup().await;
    }
}
