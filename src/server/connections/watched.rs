//! A client connection's stream that enforces the idle and header deadlines
//! on its reads.
//!
//! It follows each request through three phases: *waiting* for its first
//! byte (closed silently at the deadline), reading its *header* (answered
//! `408 header_timeout` and closed at the deadline), and *past* the header,
//! where it adds no deadline (the body's is the gateway's
//! `server.body_timeout`). The loop in [`super::Guarded`] marks when an
//! answer is done; the next read starts a new *waiting* phase.
//!
//! The end of a header is the first empty line (`\r\n\r\n`, or `\n\n`, as
//! Pingora's parser takes it) after a non-empty one. Giving up never returns
//! an error to Pingora (which would log it as a failed proxy): the stream
//! stays pending and notifies the loop, which drops the connection.

use std::fmt;
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::{Limits, Shared};
use crate::metrics::Metrics;
use crate::reason::Reason;

/// How long writing the `408` may take before the connection is dropped
/// anyway (a client that reads nothing).
const ANSWER_WRITE: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before a request's first byte.
    Waiting,
    /// Between a request's first byte and the end of its header.
    Header,
    /// After the header, until the loop says the answer is done.
    Past,
    /// Writing the `408`; this many bytes written.
    Answering(usize),
    /// Given up; the loop drops the connection.
    Closed,
}

/// Finds the empty line that ends a header.
#[derive(Debug)]
struct HeaderEnd {
    /// Nothing but `\r` since the last `\n`.
    line_empty: bool,
    /// A non-empty line was seen (empty lines before a request line do
    /// not end anything).
    started: bool,
}

impl HeaderEnd {
    fn new() -> Self {
        HeaderEnd {
            line_empty: true,
            started: false,
        }
    }

    /// Whether the header ends within `bytes`.
    fn scan(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            match b {
                b'\n' if self.line_empty && self.started => return true,
                b'\n' => self.line_empty = true,
                b'\r' => {}
                _ => {
                    self.line_empty = false;
                    self.started = true;
                }
            }
        }
        false
    }
}

/// A client connection's stream under the idle and header deadlines.
pub(crate) struct Watched {
    inner: Stream,
    phase: Phase,
    /// The deadline of the current phase.
    timer: Pin<Box<Sleep>>,
    end: HeaderEnd,
    /// The connection's first request is still being read: its deadline
    /// runs from the connection's start, not from its first byte.
    first: bool,
    limits: Limits,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    answer: Bytes,
    since: Instant,
}

impl fmt::Debug for Watched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watched")
            .field("inner", &self.inner)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Watched {
    /// `inner` from its start: its first request's header must arrive whole
    /// within `limits.header`.
    pub(crate) fn new(
        inner: Stream,
        shared: Arc<Shared>,
        limits: Limits,
        metrics: Arc<Metrics>,
    ) -> Self {
        Watched {
            inner,
            phase: Phase::Waiting,
            timer: Box::pin(tokio::time::sleep(limits.header)),
            end: HeaderEnd::new(),
            first: true,
            limits,
            shared,
            metrics,
            answer: Bytes::new(),
            since: Instant::now(),
        }
    }

    fn restart_timer(&mut self, after: Duration) {
        self.since = Instant::now();
        let at = tokio::time::Instant::from_std(self.since + after);
        self.timer.as_mut().reset(at);
    }

    /// Gives up on the connection: the loop drops it.
    fn close(&mut self) {
        self.phase = Phase::Closed;
        self.shared.closed.notify_one();
    }

    /// Notes bytes read while a header is expected.
    fn saw(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.phase == Phase::Waiting {
            self.phase = Phase::Header;
            if !self.first {
                self.restart_timer(self.limits.header);
            }
        }
        if self.phase == Phase::Header && self.end.scan(bytes) {
            self.phase = Phase::Past;
            self.first = false;
        }
    }

    /// The header deadline passed with part of a header read.
    fn start_answer(&mut self) {
        let request_id = crate::gateway::new_request_id();
        let reason = Reason::HeaderTimeout;
        let body = format!("{{\"error\":\"{}\"}}", reason.label());
        self.answer = Bytes::from(format!(
            "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nx-request-id: {request_id}\r\ncache-control: no-store\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        ));
        let elapsed = self.since.elapsed();
        self.metrics
            .record_request("-", "rejected", reason.label(), false, elapsed);
        tracing::info!(
            target: "hookgate::access",
            request_id = %request_id,
            route = "-",
            outcome = "rejected",
            reason = reason.label(),
            status = reason.status(),
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
        );
        self.phase = Phase::Answering(0);
        self.restart_timer(ANSWER_WRITE);
    }

    /// Writes what is left of the `408`, then closes. Pending until done.
    fn poll_answer(&mut self, cx: &mut Context<'_>) {
        while let Phase::Answering(written) = self.phase {
            if self.timer.as_mut().poll(cx).is_ready() {
                return self.close();
            }
            let inner = Pin::new(&mut self.inner);
            if written < self.answer.len() {
                match inner.poll_write(cx, &self.answer[written..]) {
                    Poll::Ready(Ok(n)) if n > 0 => self.phase = Phase::Answering(written + n),
                    Poll::Ready(_) => return self.close(),
                    Poll::Pending => return,
                }
            } else {
                match inner.poll_flush(cx) {
                    Poll::Ready(_) => return self.close(),
                    Poll::Pending => return,
                }
            }
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.shared.answered.swap(false, Ordering::AcqRel) {
            this.phase = Phase::Waiting;
            this.end = HeaderEnd::new();
            this.restart_timer(this.limits.idle);
        }
        match this.phase {
            Phase::Waiting | Phase::Header => {
                if this.timer.as_mut().poll(cx).is_ready() {
                    if this.phase == Phase::Waiting {
                        this.close();
                    } else {
                        this.start_answer();
                        this.poll_answer(cx);
                    }
                    return Poll::Pending;
                }
            }
            Phase::Answering(_) => {
                this.poll_answer(cx);
                return Poll::Pending;
            }
            Phase::Closed => return Poll::Pending,
            Phase::Past => {}
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && this.phase != Phase::Past {
            let filled = buf.filled();
            let new = filled.get(before..).unwrap_or_default();
            this.saw(new);
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for Watched {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for Watched {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Watched {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for Watched {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for Watched {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for Watched {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for Watched {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_ends_at_its_first_empty_line() {
        let mut e = HeaderEnd::new();
        assert!(!e.scan(b"\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r"));
        assert!(!e.scan(b"\n"));
        assert!(e.scan(b"\r\nbody"));
        let mut e = HeaderEnd::new();
        assert!(e.scan(b"GET / HTTP/1.1\n\n"));
        // Split anywhere.
        let whole = b"POST / HTTP/1.1\r\nA: b\r\n\r\n";
        for cut in 0..whole.len() {
            let mut e = HeaderEnd::new();
            let (a, b) = whole.split_at(cut);
            assert!(e.scan(a) || e.scan(b), "cut at {cut}");
        }
    }
}
