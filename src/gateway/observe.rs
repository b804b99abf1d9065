//! What a request says about itself once it ends: the facts the stages of
//! `accept` capture into [`RequestCtx`] ([`Seen`]), the verification
//! signals recorded per route, and the access line [`Gateway::logging`]
//! writes. Never a secret, a signature or a body byte.

use pingora::prelude::*;
use pingora::proxy::Session;

use super::checks::BodyVerdict;
use super::compiled::CompiledRoute;
use super::{Gateway, Outcome, RequestCtx, Settled};
use crate::reason::Reason;
use crate::verify::{Failure, Verdict};

/// The longest idempotency key a log line shows, in bytes.
const MAX_LOGGED_KEY: usize = 128;

/// What the stages saw, for the access line.
#[derive(Default)]
pub(super) struct Seen {
    /// The idempotency key, printable ASCII, at most 128 bytes.
    pub idempotency_key: Option<String>,
    /// The event type read from the body (routes that parse JSON).
    pub event_type: Option<String>,
    /// Now minus the signed timestamp, for a request whose MAC matched.
    pub signature_age: Option<i64>,
}

/// `bytes` as printable ASCII (anything else as `?`), at most `max` bytes.
fn printable(bytes: &[u8], max: usize) -> String {
    bytes
        .iter()
        .take(max)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

impl Seen {
    pub fn key(&mut self, key: Option<&[u8]>) {
        self.idempotency_key = key.map(|k| printable(k, MAX_LOGGED_KEY));
    }
}

/// The event type of a body the checks looked at: from the parsed document
/// when they passed, parsed again only when they settled or refused it.
pub(super) fn event_type(
    route: &CompiledRoute,
    checked: &Result<BodyVerdict, Reason>,
    body: &[u8],
) -> Option<String> {
    if !route.body.json {
        return None;
    }
    let of = |doc: &serde_json::Value| {
        doc.pointer(&route.body.event_field)
            .and_then(|e| e.as_str())
            .map(|e| printable(e.as_bytes(), MAX_LOGGED_KEY))
    };
    match checked {
        Ok(BodyVerdict::Pass(Some(doc))) => of(doc),
        Ok(BodyVerdict::Pass(None)) | Err(Reason::InvalidJson) => None,
        _ => serde_json::from_slice(body).ok().as_ref().and_then(of),
    }
}

/// Records a verdict on a parsed signature header in the route's metrics
/// and returns the signature's age (now minus the signed timestamp) when
/// the MAC matched. `matched_timestamp` finds the timestamp of a stale
/// request whose MAC matched (verifying again without a tolerance).
pub(super) fn verdict(
    route: &CompiledRoute,
    verdict: &Verdict,
    now: i64,
    matched_timestamp: impl FnOnce() -> Option<i64>,
) -> Option<i64> {
    let m = &route.verification;
    match verdict {
        Ok(v) => {
            let age = v.timestamp.map(|ts| now.saturating_sub(ts));
            m.verified(v.key_index, age);
            age
        }
        Err(Failure::StaleTimestamp) => {
            let age = matched_timestamp().map(|ts| now.saturating_sub(ts));
            m.signature_age(age);
            age
        }
        Err(Failure::SignatureMismatch) => {
            if m.mismatched() {
                tracing::warn!(
                    route = %route.name,
                    failing_after = m.failing_after(),
                    "every recent signed request on this route failed verification (signature_mismatch): check its secrets against the sender's"
                );
            }
            None
        }
        Err(_) => None,
    }
}

/// Rounds milliseconds to 3 decimals (a microsecond).
fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl Gateway {
    /// Writes the request's access-log line and records its metrics. Call
    /// it from `ProxyHttp::logging`. Never logs secrets, signatures or bodies.
    pub fn logging(&self, s: &Session, e: Option<&Error>, ctx: &RequestCtx) {
        let status = s.response_written().map_or(0, |r| r.status.as_u16());
        let outcome = ctx.outcome.map_or("aborted", Outcome::label);
        let route = ctx.route_name().unwrap_or("-");
        let elapsed = ctx.started.elapsed();
        let error = e.map(|e| e.etype().as_str());
        let reason = ctx.reason().unwrap_or("-");
        let duplicate = ctx.outcome == Some(Outcome::Settled(Settled::Duplicate));
        self.metrics
            .record_request(route, outcome, reason, duplicate, elapsed);
        let upstream_status = match ctx.outcome {
            Some(Outcome::Forwarded(s) | Outcome::ForwardedUnverified(s)) => Some(s),
            _ => None,
        };
        let req = s.req_header();
        // The path only: a query string may carry a token.
        let path = printable(req.uri.path().as_bytes(), 512);
        let client_ip = s
            .client_addr()
            .and_then(|a| a.as_inet())
            .map_or_else(|| "-".to_string(), |a| a.ip().to_string());
        let seen = &ctx.seen;
        tracing::info!(
            target: "hookgate::access",
            request_id = %ctx.request_id,
            route,
            outcome,
            reason,
            status,
            method = req.method.as_str(),
            path,
            client_ip,
            idempotency_key = seen.idempotency_key.as_deref().unwrap_or("-"),
            event_type = seen.event_type.as_deref().unwrap_or("-"),
            signature_age_s = seen.signature_age,
            upstream_status,
            upstream_ms = ctx.upstream_time.map(ms),
            elapsed_ms = ms(elapsed),
            error,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_and_cut() {
        assert_eq!(printable(b"ab\x01c\xffd", 128), "ab?c?d");
        assert_eq!(printable(&[b'k'; 300], MAX_LOGGED_KEY).len(), 128);
    }

    #[test]
    fn milliseconds_have_at_most_three_decimals() {
        let d = std::time::Duration::from_nanos(4_890_267);
        assert_eq!(ms(d).to_string(), "4.89");
        let d = std::time::Duration::from_nanos(4_890_767);
        assert_eq!(ms(d).to_string(), "4.891");
    }
}
