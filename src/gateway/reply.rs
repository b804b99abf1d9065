//! What hookgate answers by itself: the closed set of rejection reasons, the
//! status each one carries, and the small JSON bodies.
//!
//! A rejection never echoes the request: no secret, signature or body byte
//! reaches the answer, only the reason and the route name.

use std::time::Duration;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

use crate::verify::Failure;

/// Why hookgate answered a request itself. The label is stable: it is the
/// JSON `error`, the log field and the metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `404`: no route matches host and path.
    NoRoute,
    /// `405`: the route does not take this method.
    MethodNotAllowed,
    /// `415`: the content type is not one of the route's.
    UnsupportedMediaType,
    /// `413`: the body is larger than `max_body`.
    BodyTooLarge,
    /// `408`: the body did not arrive within `body_timeout`.
    BodyTimeout,
    /// `401`: the signature header is absent.
    MissingSignature,
    /// `401`: the signature header does not parse.
    MalformedSignature,
    /// `401`: no signature matches any secret.
    SignatureMismatch,
    /// `401`: the signed timestamp is outside the tolerance.
    StaleTimestamp,
    /// `400`: the body is not JSON (on routes that check it).
    InvalidJson,
    /// `400`: the idempotency key is required and absent.
    MissingIdempotencyKey,
    /// `422`: the event type is not in the allow-list (`unlisted_events: reject`).
    EventNotAllowed,
    /// `409`: another request with this key has no answer yet.
    InFlight,
    /// `503`: the dedupe store cannot be reached.
    DedupeUnavailable,
    /// `502`: the upstream refused, reset or closed without an answer.
    UpstreamUnreachable,
    /// `504`: the upstream did not answer in time.
    UpstreamTimeout,
}

impl Reason {
    /// The HTTP status for this reason.
    pub fn status(self) -> u16 {
        use Reason::*;
        match self {
            NoRoute => 404,
            MethodNotAllowed => 405,
            UnsupportedMediaType => 415,
            BodyTooLarge => 413,
            BodyTimeout => 408,
            MissingSignature | MalformedSignature | SignatureMismatch | StaleTimestamp => 401,
            InvalidJson | MissingIdempotencyKey => 400,
            EventNotAllowed => 422,
            InFlight => 409,
            DedupeUnavailable => 503,
            UpstreamUnreachable => 502,
            UpstreamTimeout => 504,
        }
    }

    /// The stable label.
    pub fn label(self) -> &'static str {
        use Reason::*;
        match self {
            NoRoute => "no_route",
            MethodNotAllowed => "method_not_allowed",
            UnsupportedMediaType => "unsupported_media_type",
            BodyTooLarge => "body_too_large",
            BodyTimeout => "body_timeout",
            MissingSignature => "missing_signature",
            MalformedSignature => "malformed_signature",
            SignatureMismatch => "signature_mismatch",
            StaleTimestamp => "stale_timestamp",
            InvalidJson => "invalid_json",
            MissingIdempotencyKey => "missing_idempotency_key",
            EventNotAllowed => "event_not_allowed",
            InFlight => "in_flight",
            DedupeUnavailable => "dedupe_unavailable",
            UpstreamUnreachable => "upstream_unreachable",
            UpstreamTimeout => "upstream_timeout",
        }
    }
}

impl From<Failure> for Reason {
    fn from(f: Failure) -> Self {
        match f {
            Failure::MissingSignature => Reason::MissingSignature,
            Failure::MalformedSignature => Reason::MalformedSignature,
            Failure::SignatureMismatch => Reason::SignatureMismatch,
            Failure::StaleTimestamp => Reason::StaleTimestamp,
        }
    }
}

/// A `200` hookgate gives without forwarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The key was delivered before.
    Duplicate,
    /// The event type is not in the allow-list.
    Ignored,
}

/// Extra headers on a hookgate answer.
#[derive(Default)]
pub struct Extra {
    /// `Allow`, for a `405`.
    pub allow: Option<http::HeaderValue>,
    /// `Retry-After`, for a `409` or `503`.
    pub retry_after: Option<Duration>,
}

/// Whether the request body is still unread on the connection. An unread
/// body means the connection cannot be reused: it is closed after the answer
/// rather than drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyState {
    /// Fully read (or empty).
    Read,
    /// Not (fully) read.
    Unread,
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

/// `{"error":"<reason>","route":"<name>"}` (route omitted when unknown).
pub fn error_body(reason: Reason, route: Option<&str>) -> Bytes {
    let mut s = format!("{{\"error\":\"{}\"", reason.label());
    if let Some(r) = route {
        s.push_str(",\"route\":\"");
        json_escape_into(&mut s, r);
        s.push('"');
    }
    s.push('}');
    Bytes::from(s)
}

/// `{"status":"duplicate"|"ignored","route":"<name>"}`.
pub fn settled_body(what: Settled, route: &str) -> Bytes {
    let status = match what {
        Settled::Duplicate => "duplicate",
        Settled::Ignored => "ignored",
    };
    let mut s = format!("{{\"status\":\"{status}\",\"route\":\"");
    json_escape_into(&mut s, route);
    s.push_str("\"}");
    Bytes::from(s)
}

/// Writes a complete JSON answer.
pub async fn write_json(
    s: &mut Session,
    status: u16,
    body: Bytes,
    request_id: &str,
    extra: Extra,
    duplicate: bool,
    body_state: BodyState,
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(6))?;
    resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    resp.insert_header("x-request-id", request_id)?;
    resp.insert_header(http::header::CACHE_CONTROL, "no-store")?;
    if let Some(allow) = extra.allow {
        resp.insert_header(http::header::ALLOW, allow)?;
    }
    if let Some(after) = extra.retry_after {
        resp.insert_header(
            http::header::RETRY_AFTER,
            after.as_secs().max(1).to_string(),
        )?;
    }
    if duplicate {
        resp.insert_header("hookgate-duplicate", "true")?;
    }
    if body_state == BodyState::Unread {
        s.set_keepalive(None);
    }
    s.write_response_header(Box::new(resp), false).await?;
    s.write_response_body(Some(body), true).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_small_json() {
        assert_eq!(
            &error_body(Reason::SignatureMismatch, Some("fyn\"apse"))[..],
            br#"{"error":"signature_mismatch","route":"fyn\"apse"}"#
        );
        assert_eq!(
            &error_body(Reason::NoRoute, None)[..],
            br#"{"error":"no_route"}"#
        );
        let v: serde_json::Value =
            serde_json::from_slice(&settled_body(Settled::Duplicate, "r")).unwrap();
        assert_eq!(v["status"], "duplicate");
    }

    #[test]
    fn fynapse_finality_of_each_status() {
        // Fynapse dead-letters 400/401/402/405/406/410/413 and retries the
        // rest. A reason that a retry could cure must not be final.
        let final_codes = [400, 401, 402, 405, 406, 410, 413];
        for r in [
            Reason::BodyTimeout,
            Reason::InFlight,
            Reason::DedupeUnavailable,
            Reason::UpstreamUnreachable,
            Reason::UpstreamTimeout,
        ] {
            assert!(!final_codes.contains(&r.status()), "{r:?} must be retried");
        }
    }
}
