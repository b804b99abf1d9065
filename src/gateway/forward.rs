//! Forwarding a verified request: the exact body bytes to the upstream, its
//! answer back to the sender.
//!
//! Pingora's own proxy loop replays at most 64 KiB of a body that was read
//! before forwarding (see `docs/pingora.md`), and hookgate must read and
//! verify the whole body (up to 64 MiB) before a byte goes upstream. So
//! this module drives the upstream exchange itself through Pingora's pooled
//! [`Connector`]: write the header and the buffered body, read the answer's
//! header (the point where the dedupe reservation is settled), then stream
//! the answer's body to the sender.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, Version};
use pingora::connectors::http::Connector;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::protocols::http::client::HttpSession;
use pingora::proxy::Session;
use pingora::upstreams::peer::HttpPeer;

use crate::config::{KeySource, Route};

/// Request headers never forwarded: hop-by-hop ones (RFC 9110 §7.6.1), plus
/// `expect` (hookgate answered it) and `content-length` (set from the body).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "content-length",
];

/// Response headers not passed back. `content-length` and
/// `transfer-encoding` stay: the downstream writer frames the body by them.
const RESPONSE_HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "trailer",
    "upgrade",
];

/// The headers that go upstream, built from the sender's.
///
/// Client-sent `X-Hookgate-*` headers are removed *before* hookgate adds its
/// own, so the receiver can trust them.
pub(crate) struct UpstreamRequest<'a> {
    /// The route whose upstream and forwarding rules apply.
    pub route: &'a Route,
    /// Path and query for the upstream.
    pub path: &'a str,
    /// Whether the signature held.
    pub verified: bool,
    /// Body length.
    pub body_len: usize,
    /// The sender's address, for `X-Forwarded-For`.
    pub client: Option<SocketAddr>,
    /// This request's id.
    pub request_id: &'a str,
    /// Whether the sender reached hookgate over TLS.
    pub tls: bool,
}

impl UpstreamRequest<'_> {
    /// The headers the route's verification and dedupe read.
    fn relied_on(&self) -> Vec<&str> {
        let mut names = self.route.verify.scheme.signature_headers();
        names.extend(self.route.verify.scheme.id_header());
        if let KeySource::Header(h) | KeySource::Scheme(Some(h)) = &self.route.idempotency.source {
            names.push(h.as_str());
        }
        names
    }

    /// Applies the rules to a copy of the sender's header.
    pub fn build(&self, original: &RequestHeader) -> Result<RequestHeader> {
        let mut req = original.clone();
        req.set_version(Version::HTTP_11);
        req.set_raw_path(self.path.as_bytes())?;
        // Headers the sender named in `Connection` are hop-by-hop too, but
        // not those hookgate verified and deduped on: the receiver must see
        // what the decision was made on.
        let relied_on = self.relied_on();
        let named: Vec<HeaderName> = original
            .headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .filter(|n| !relied_on.contains(&n.as_str()))
            .collect();
        for n in named {
            req.remove_header(&n);
        }
        for h in HOP_BY_HOP {
            req.remove_header(*h);
        }
        let own: Vec<HeaderName> = req
            .headers
            .keys()
            .filter(|k| k.as_str().starts_with("x-hookgate-"))
            .cloned()
            .collect();
        for n in own {
            req.remove_header(&n);
        }
        if self.route.forward.strip_signature {
            for h in self.route.verify.scheme.signature_headers() {
                req.remove_header(h);
            }
        }
        let original_host = original.headers.get(http::header::HOST).cloned();
        req.insert_header(http::header::HOST, self.route.upstream.authority.as_str())?;
        if let Some(h) = original_host {
            req.insert_header("x-forwarded-host", h)?;
        }
        if let Some(c) = self.client {
            let ip = c.ip().to_string();
            let xff = match original
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
            {
                Some(prev) => format!("{prev}, {ip}"),
                None => ip,
            };
            req.insert_header("x-forwarded-for", xff)?;
        }
        req.insert_header("x-forwarded-proto", if self.tls { "https" } else { "http" })?;
        for (n, v) in &self.route.forward.headers {
            req.insert_header(n.clone(), v.clone())?;
        }
        req.insert_header("x-hookgate-route", &*self.route.name)?;
        req.insert_header(
            "x-hookgate-verified",
            if self.verified { "true" } else { "false" },
        )?;
        req.insert_header("x-hookgate-request-id", self.request_id)?;
        req.insert_header(http::header::CONTENT_LENGTH, self.body_len.to_string())?;
        Ok(req)
    }
}

/// Why an exchange failed before the sender got anything.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// Could not connect, or the connection broke or closed without an
    /// answer: `502`.
    Unreachable(Box<Error>),
    /// No answer within the route's `timeout`: `504`.
    Timeout,
}

/// An upstream that has answered its header.
pub(crate) struct Answer {
    /// The connection, positioned at the answer's body.
    pub session: HttpSession,
    /// The answer's header.
    pub header: ResponseHeader,
}

/// Sends `req` and `body` to `peer` and reads the answer's header, within
/// `timeout` overall.
///
/// A request is sent again (on another connection, at most twice) only when
/// it could not be written whole on a reused connection. Once written
/// whole, the receiver may be processing it: a connection closed or reset
/// before the answer is `502`, and a timeout `504`, never a second copy.
pub(crate) async fn exchange(
    connector: &Connector,
    peer: &HttpPeer,
    req: RequestHeader,
    rebuild: &(dyn Fn() -> Result<RequestHeader> + Sync),
    body: &Bytes,
    timeout: Duration,
) -> std::result::Result<Answer, ExchangeError> {
    let attempt = async {
        let mut tries = 0;
        // The header goes out by value; a retry (rare) builds it again
        // rather than every request paying for a copy.
        let mut first = Some(req);
        loop {
            tries += 1;
            let req = match first.take() {
                Some(r) => r,
                None => rebuild().map_err(ExchangeError::Unreachable)?,
            };
            let (mut up, reused) = connector
                .get_http_session(peer)
                .await
                .map_err(ExchangeError::Unreachable)?;
            match send_and_read_header(&mut up, peer, req, body).await {
                Ok(header) => {
                    return Ok(Answer {
                        session: up,
                        header,
                    })
                }
                Err(e) if is_timeout(&e) => return Err(ExchangeError::Timeout),
                Err(e) if reused && tries < 3 && not_written_whole(&e) => continue,
                Err(e) => return Err(ExchangeError::Unreachable(e)),
            }
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(ExchangeError::Timeout),
    }
}

/// Pingora's own read or write timeout on the upstream connection (set to
/// the route's timeout, so it may fire just before the overall one).
fn is_timeout(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ReadTimedout | ErrorType::WriteTimedout
    )
}

/// Whether the request failed before it was written whole: only then can it
/// be sent again without risking a second copy at the receiver. A read
/// error or a close after the write means the receiver got every byte.
fn not_written_whole(e: &Error) -> bool {
    matches!(e.etype(), ErrorType::WriteError)
}

async fn send_and_read_header(
    up: &mut HttpSession,
    peer: &HttpPeer,
    req: RequestHeader,
    body: &Bytes,
) -> Result<ResponseHeader> {
    // The connector applies the connect timeout but not these (docs/pingora.md).
    up.set_read_timeout(peer.options.read_timeout);
    up.set_write_timeout(peer.options.write_timeout);
    up.write_request_header(Box::new(req)).await?;
    if !body.is_empty() {
        up.write_request_body(body.clone(), true).await?;
    }
    // HTTP/1 ignores `end` above; this writes the end and flushes.
    up.finish_request_body().await?;
    // Skip interim (1xx) answers; a bounded number of them.
    for _ in 0..8 {
        up.read_response_header().await?;
        let Some(h) = up.response_header() else {
            return Error::e_explain(ErrorType::ConnectionClosed, "no response header");
        };
        if !h.status.is_informational() {
            let mut h = h.clone();
            for name in RESPONSE_HOP_BY_HOP {
                h.remove_header(*name);
            }
            return Ok(h);
        }
    }
    Error::e_explain(ErrorType::InvalidHTTPHeader, "too many interim responses")
}

/// Streams the answer (header already settled on) back to the sender, then
/// returns the upstream connection to the pool if it is reusable.
///
/// Errors after the header went out can only close the connection; they are
/// returned for the log.
pub(crate) async fn relay(
    s: &mut Session,
    connector: &Connector,
    peer: &HttpPeer,
    mut answer: Answer,
    request_id: &str,
) -> Result<()> {
    let mut header = answer.header;
    header.insert_header("x-request-id", request_id)?;
    if s.req_header().version < Version::HTTP_11 {
        for_http10(s, &mut header);
    }
    s.write_response_header(Box::new(header), false).await?;
    while let Some(chunk) = answer.session.read_response_body().await? {
        s.write_response_body(Some(chunk), false).await?;
    }
    s.write_response_body(None, true).await?;
    connector
        .release_http_session(answer.session, peer, peer.options.idle_timeout)
        .await;
    Ok(())
}

/// An HTTP/1.0 client cannot read a chunked answer, and Pingora frames the
/// answer by its headers whatever the request's version (docs/pingora.md).
/// So a chunked answer goes to it without `Transfer-Encoding` or
/// `Content-Length`, delimited by closing the connection.
fn for_http10(s: &mut Session, header: &mut ResponseHeader) {
    if header.headers.contains_key(http::header::TRANSFER_ENCODING) {
        header.remove_header(&http::header::TRANSFER_ENCODING);
        header.remove_header(&http::header::CONTENT_LENGTH);
        s.set_keepalive(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(etype: ErrorType, retry: RetryType) -> Box<Error> {
        let mut e = Error::explain(etype, "test");
        e.retry = retry;
        e
    }

    #[test]
    fn only_a_request_not_written_whole_is_sent_again() {
        assert!(not_written_whole(&err(ErrorType::WriteError, false.into())));
        // A connection the receiver closed or reset after reading the
        // request (what a pooled connection closed while idle also looks
        // like to Pingora, which would retry it): never again.
        for t in [ErrorType::ConnectionClosed, ErrorType::ReadError] {
            assert!(!not_written_whole(&err(t.clone(), RetryType::ReusedOnly)));
        }
        // A slow receiver has the request: never send it again.
        for t in [ErrorType::ReadTimedout, ErrorType::WriteTimedout] {
            let e = err(t, RetryType::ReusedOnly);
            assert!(is_timeout(&e) && !not_written_whole(&e));
        }
        assert!(!not_written_whole(&err(
            ErrorType::InvalidHTTPHeader,
            false.into()
        )));
    }
}
