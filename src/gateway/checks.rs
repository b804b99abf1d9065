//! The checks of the request path that need no I/O: each reads the
//! sender's header (or the body already read) and returns what the next
//! stage needs, or the [`Reason`] to refuse it.

use pingora::http::RequestHeader;

use super::rejection::{Reason, Settled};
use crate::config::{KeySource, Route, UnlistedEvent};

/// The host (`Host` header, else the absolute URI's) and the raw request
/// target (`/path?query`) to route on.
pub(crate) fn host_and_target(req: &RequestHeader) -> (Option<&str>, &str) {
    let host = req
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(req.uri.host());
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    (host, target)
}

/// The method and the media type (parameters such as `charset` ignored).
pub(crate) fn method_and_type(req: &RequestHeader, route: &Route) -> Result<(), Reason> {
    if !route.methods.contains(&req.method) {
        return Err(Reason::MethodNotAllowed);
    }
    let media = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim());
    match media {
        Some(m)
            if route
                .content_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(m)) =>
        {
            Ok(())
        }
        _ => Err(Reason::UnsupportedMediaType),
    }
}

/// The declared body length, checked against the route's `max_body`.
pub(crate) fn declared_size(req: &RequestHeader, route: &Route) -> Result<Option<usize>, Reason> {
    match declared_length(&req.headers) {
        Ok(Some(n)) if n > route.max_body => Err(Reason::BodyTooLarge),
        Ok(n) => Ok(n),
        Err(()) => Err(Reason::BodyTooLarge),
    }
}

/// The declared length, reconciled the way Pingora frames the body: every
/// `Content-Length` value, across header lines and comma-separated lists,
/// must be the same run of digits (RFC 9110 §8.6 lets `42, 42` stand for
/// `42`). Pingora has already refused conflicting or invalid values with a
/// `400`; what is left to refuse here is a value that does not fit a
/// `usize`, as too large.
fn declared_length(headers: &http::HeaderMap) -> Result<Option<usize>, ()> {
    let mut declared = None;
    for value in headers.get_all(http::header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|b| *b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return Err(());
            }
            let n: usize = std::str::from_utf8(part)
                .ok()
                .and_then(|p| p.parse().ok())
                .ok_or(())?;
            if declared.is_some_and(|d| d != n) {
                return Err(());
            }
            declared = Some(n);
        }
    }
    Ok(declared)
}

/// Whether the sender waits for `100 Continue` before sending the body.
pub(crate) fn expects_continue(req: &RequestHeader) -> bool {
    req.headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// What the body checks decided for an authentic request.
pub(crate) enum BodyVerdict {
    /// Go on; the parsed JSON when the route parses it.
    Pass(Option<serde_json::Value>),
    /// Answer `200` without forwarding.
    Settle(Settled),
}

/// Well-formed JSON (on routes that check it) and the event allow-list.
pub(crate) fn body_checks(route: &Route, body: &[u8]) -> Result<BodyVerdict, Reason> {
    if !route.body.json {
        return Ok(BodyVerdict::Pass(None));
    }
    let doc: serde_json::Value = serde_json::from_slice(body).map_err(|_| Reason::InvalidJson)?;
    if let Some(allowed) = &route.body.events {
        let event = doc
            .pointer(&route.body.event_field)
            .and_then(|e| e.as_str());
        if !event.is_some_and(|e| allowed.iter().any(|a| a == e)) {
            return match route.body.unlisted {
                UnlistedEvent::Ignore => Ok(BodyVerdict::Settle(Settled::Ignored)),
                UnlistedEvent::Reject => Err(Reason::EventNotAllowed),
            };
        }
    }
    Ok(BodyVerdict::Pass(Some(doc)))
}

/// The idempotency key's bytes, if the request carries a non-empty one.
/// `signed_id` is the id the signature covered, preferred by
/// `idempotency.key: scheme`.
pub(crate) fn idempotency_key(
    req: &RequestHeader,
    route: &Route,
    signed_id: Option<&str>,
    json: Option<&serde_json::Value>,
) -> Option<Vec<u8>> {
    match &route.idempotency.source {
        KeySource::None => None,
        KeySource::Scheme(_) if signed_id.is_some_and(|id| !id.is_empty()) => {
            signed_id.map(|id| id.as_bytes().to_vec())
        }
        KeySource::Header(h) | KeySource::Scheme(h) => req
            .headers
            .get(h)
            .map(|v| v.as_bytes().trim_ascii())
            .filter(|v| !v.is_empty())
            .map(<[u8]>::to_vec),
        KeySource::Json(ptr) => match json?.pointer(ptr)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.as_bytes().to_vec()),
            serde_json::Value::Number(n) => Some(n.to_string().into_bytes()),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cl(values: &[&str]) -> Result<Option<usize>, ()> {
        let mut h = http::HeaderMap::new();
        for v in values {
            h.append(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        declared_length(&h)
    }

    #[test]
    fn content_length_is_reconciled_as_pingora_frames_it() {
        assert_eq!(cl(&[]), Ok(None));
        assert_eq!(cl(&["42"]), Ok(Some(42)));
        // Identical duplicates, as separate lines or as a list, are one value:
        // Pingora reads the body by it, so must the size check.
        assert_eq!(cl(&["42", "42"]), Ok(Some(42)));
        assert_eq!(cl(&["42, 42"]), Ok(Some(42)));
        assert_eq!(cl(&["42,42", " 42 "]), Ok(Some(42)));
        for bad in [
            &["42", "43"][..],
            &["42, 43"],
            &["+42"],
            &["-1"],
            &["0x10"],
            &["4 2"],
            &[""],
            &["42,"],
            &["99999999999999999999999"],
        ] {
            assert_eq!(cl(bad), Err(()), "{bad:?}");
        }
    }
}
