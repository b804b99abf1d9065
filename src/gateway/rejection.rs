//! What hookgate answers by itself: the [`Rejection`] value a stage returns
//! (its reason from the one table, [`crate::reason`]), the settled `200`s,
//! and the one function that writes an answer of hookgate's own.
//!
//! A rejection never echoes the request: no secret, signature or body byte
//! reaches the answer, only the reason and the route name.

use std::time::Duration;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

use crate::config::Route;
pub use crate::reason::Reason;

/// A `200` hookgate gives without forwarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The key was delivered before.
    Duplicate,
    /// The event type is not in the allow-list.
    Ignored,
}

impl Settled {
    /// The stable label: the JSON `status`, the log's outcome.
    pub const fn label(self) -> &'static str {
        match self {
            Settled::Duplicate => "duplicate",
            Settled::Ignored => "ignored",
        }
    }
}

/// Whether the request body is still unread on the connection. An unread
/// body means the connection cannot be reused: it is closed after the
/// answer rather than drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyState {
    /// Fully read (or empty).
    Read,
    /// Not (fully) read.
    Unread,
}

/// A request refused by one of the gateway's stages.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub reason: Reason,
    allow: Option<http::HeaderValue>,
    retry_after: Option<Duration>,
    body: BodyState,
}

impl Rejection {
    /// A rejection before the route is known (`no_route`), or one whose
    /// route adds nothing to the answer.
    pub fn new(reason: Reason, body: BodyState) -> Self {
        Rejection {
            reason,
            allow: None,
            retry_after: None,
            body,
        }
    }

    /// A rejection on `route`, which supplies `Allow` (for a `405`) and
    /// `Retry-After` (for a `409` or `503`; a fixed 5 s for `overloaded`).
    pub fn on(route: &Route, reason: Reason, body: BodyState) -> Self {
        Rejection {
            reason,
            allow: (reason == Reason::MethodNotAllowed).then(|| route.allow.clone()),
            retry_after: match reason {
                Reason::InFlight | Reason::DedupeUnavailable => Some(route.idempotency.retry_after),
                Reason::Overloaded => Some(crate::config::defaults::OVERLOADED_RETRY_AFTER),
                _ => None,
            },
            body,
        }
    }

    /// The answer: `{"error":"<reason>","route":"<name>"}`.
    pub fn answer(&self, route: Option<&str>) -> OwnAnswer {
        let mut body = format!("{{\"error\":\"{}\"", self.reason.label());
        if let Some(r) = route {
            body.push_str(",\"route\":\"");
            json_escape_into(&mut body, r);
            body.push('"');
        }
        body.push('}');
        OwnAnswer {
            status: self.reason.status(),
            content_type: Some(JSON),
            body: Bytes::from(body),
            allow: self.allow.clone(),
            retry_after: self.retry_after,
            duplicate: false,
            close: self.body == BodyState::Unread,
        }
    }
}

/// `{"status":"duplicate"|"ignored","route":"<name>"}`.
pub(crate) fn settled_answer(what: Settled, route: &str) -> OwnAnswer {
    let mut body = format!("{{\"status\":\"{}\",\"route\":\"", what.label());
    json_escape_into(&mut body, route);
    body.push_str("\"}");
    OwnAnswer {
        status: 200,
        content_type: Some(JSON),
        body: Bytes::from(body),
        allow: None,
        retry_after: None,
        duplicate: what == Settled::Duplicate,
        close: false,
    }
}

const JSON: &str = "application/json";

/// An answer hookgate writes itself (never the receiver's).
#[derive(Debug)]
pub(crate) struct OwnAnswer {
    pub status: u16,
    /// `Content-Type`: JSON for every answer but a handshake's, which says
    /// its own (`None` with no body).
    pub content_type: Option<&'static str>,
    pub body: Bytes,
    /// `Allow`, for a `405`.
    pub allow: Option<http::HeaderValue>,
    /// `Retry-After`, for a `409` or `503`.
    pub retry_after: Option<Duration>,
    /// `Hookgate-Duplicate: true`.
    pub duplicate: bool,
    /// Close the connection after it (the body was not read).
    pub close: bool,
}

impl OwnAnswer {
    /// A JSON body for an error Pingora reports outside the stages.
    pub fn plain(status: u16, body: &'static [u8]) -> Self {
        OwnAnswer {
            status,
            content_type: Some(JSON),
            body: Bytes::from_static(body),
            allow: None,
            retry_after: None,
            duplicate: false,
            close: true,
        }
    }

    /// Writes the whole answer with `X-Request-Id`, `Cache-Control:
    /// no-store` and `X-Content-Type-Options: nosniff` (a handshake echoes
    /// a sender's token: no client may read it as anything but its type).
    pub async fn write(self, s: &mut Session, request_id: &str) -> Result<()> {
        let mut resp = ResponseHeader::build(self.status, Some(7))?;
        if let Some(t) = self.content_type {
            resp.insert_header(http::header::CONTENT_TYPE, t)?;
        }
        // A 204 has no body and so no length (RFC 9110 §8.6).
        if self.status != 204 {
            resp.insert_header(http::header::CONTENT_LENGTH, self.body.len().to_string())?;
        }
        resp.insert_header("x-request-id", request_id)?;
        resp.insert_header(http::header::CACHE_CONTROL, "no-store")?;
        resp.insert_header(http::header::X_CONTENT_TYPE_OPTIONS, "nosniff")?;
        if let Some(allow) = self.allow {
            resp.insert_header(http::header::ALLOW, allow)?;
        }
        if let Some(after) = self.retry_after {
            resp.insert_header(
                http::header::RETRY_AFTER,
                after.as_secs().max(1).to_string(),
            )?;
        }
        if self.duplicate {
            resp.insert_header("hookgate-duplicate", "true")?;
        }
        if self.close {
            s.set_keepalive(None);
        }
        s.write_response_header(Box::new(resp), false).await?;
        s.write_response_body(Some(self.body), true).await?;
        Ok(())
    }
}

fn json_escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_small_json() {
        let r = Rejection::new(Reason::SignatureMismatch, BodyState::Read);
        assert_eq!(
            &r.answer(Some("fyn\"apse")).body[..],
            br#"{"error":"signature_mismatch","route":"fyn\"apse"}"#
        );
        let r = Rejection::new(Reason::NoRoute, BodyState::Unread);
        let a = r.answer(None);
        assert_eq!(&a.body[..], br#"{"error":"no_route"}"#);
        assert!(a.close);
        let v: serde_json::Value =
            serde_json::from_slice(&settled_answer(Settled::Duplicate, "r").body).unwrap();
        assert_eq!(v["status"], "duplicate");
    }
}
