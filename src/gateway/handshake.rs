//! Setup handshakes: requests a sender makes to check an endpoint before it
//! enables it (Slack's `url_verification`, Zoom's `endpoint.url_validation`,
//! Discord's PING, Dropbox's `GET ?challenge=`, WooCommerce's creation
//! ping). hookgate answers them itself, forwards nothing and needs no
//! idempotency key; they count as outcome `handshake`.
//!
//! The scheme decides what is a handshake and what to answer
//! ([`crate::verify::Scheme::handshake`]); this file decides *when* to ask:
//!
//! - A signed handshake is asked for only after the request's own signature
//!   verified, with the key that verified it. A handshake that computes a
//!   MAC (Zoom's) so only ever signs bytes the sender itself authenticated:
//!   never bytes an unauthenticated client chose.
//! - An unsigned handshake is asked for before the method, type and
//!   signature checks, when the head says it may be one; the scheme's answer
//!   takes no key (it echoes or acknowledges). A request that turns out not
//!   to be one goes on through the ordinary stages, its body already read.
//!
//! `verify.handshake: false` turns both off: signed handshakes are then
//! forwarded like any verified request, unsigned ones refused like any
//! unsigned request.

use std::time::Duration;

use bytes::Bytes;
use pingora::proxy::Session;

use super::compiled::CompiledRoute;
use super::limits::Lease;
use super::rejection::{BodyState, OwnAnswer, Rejection};
use super::{checks, read_body, Gateway, Stop};
use crate::verify::{HandshakeReply, SignedRequest, Verified};

impl Gateway {
    /// The unsigned-handshake stage: when the route's scheme says the head
    /// may be an unsigned handshake, reads the body and answers it
    /// (`Err(Stop::Handshake)`), or hands the body back for the ordinary
    /// stages. `Ok(None)`: not a candidate, nothing read.
    pub(super) async fn unsigned_handshake(
        &self,
        s: &mut Session,
        route: &CompiledRoute,
        timeout: Duration,
    ) -> Result<Option<(Bytes, Lease)>, Stop> {
        let v = &route.verify;
        let req = s.req_header();
        let candidate = v.handshake
            && v.scheme.may_be_unsigned_handshake(
                req.method.as_str(),
                &req.headers,
                req.uri.query(),
            );
        if !candidate {
            return Ok(None);
        }
        // The body is bounded as any request's is: `max_body`, the body
        // timeout and `server.max_buffered`.
        let declared = checks::declared_size(req, route)
            .map_err(|r| Rejection::on(route, r, BodyState::Unread))?;
        let lease = self.budget.lease(declared.unwrap_or(0));
        let (body, lease) = read_body(s, route, declared, timeout, lease).await?;
        let req = s.req_header();
        let unsigned = SignedRequest::new(req.method.as_str(), &req.headers, &body)
            .with_query(req.uri.query());
        match v.scheme.unsigned_handshake(&unsigned) {
            Some(reply) => Err(Stop::Handshake(reply)),
            None => Ok(Some((body, lease))),
        }
    }
}

/// The answer to a signed handshake carried by `req`, which has just
/// verified as `verified`; `None` for an ordinary delivery (or when the
/// route's `verify.handshake` is off).
pub(super) fn signed(
    route: &CompiledRoute,
    req: &SignedRequest<'_>,
    verified: &Verified,
) -> Option<HandshakeReply> {
    let v = &route.verify;
    if !v.handshake {
        return None;
    }
    // The key that verified this very request: the only one a handshake
    // may use.
    let key = v.keys.get(verified.key_index)?;
    v.scheme.handshake(req, key)
}

/// A handshake reply as an answer of hookgate's own (always with
/// `X-Content-Type-Options: nosniff`, as every such answer).
pub(super) fn answer(reply: HandshakeReply) -> OwnAnswer {
    OwnAnswer {
        status: reply.status,
        content_type: reply.content_type,
        body: Bytes::from(reply.body),
        allow: None,
        retry_after: None,
        duplicate: false,
        close: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_keeps_its_status_type_and_body() {
        let a = answer(HandshakeReply {
            status: 200,
            content_type: Some("text/plain"),
            body: b"abc".to_vec(),
        });
        assert_eq!(
            (a.status, a.content_type, &a.body[..]),
            (200, Some("text/plain"), &b"abc"[..])
        );
        assert!(!a.close && !a.duplicate);
        let a = answer(HandshakeReply {
            status: 204,
            content_type: None,
            body: Vec::new(),
        });
        assert_eq!((a.status, a.content_type), (204, None));
    }
}
