//! The checks of the request path that need no I/O: each reads the
//! sender's header (or the body already read) and returns what the next
//! stage needs, or the [`Reason`] to refuse it.

use pingora::http::RequestHeader;

use super::rejection::{Reason, Settled};
use crate::config::defaults::FORM_CONTENT_TYPE as FORM;
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
    match media_type(req) {
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

/// The request's media type, without parameters.
fn media_type(req: &RequestHeader) -> Option<&str> {
    req.headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim())
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
/// They are JSON checks: a form-encoded body (on a route that takes forms,
/// such as Slack's slash commands) passes them, with no JSON to key on.
pub(crate) fn body_checks(
    req: &RequestHeader,
    route: &Route,
    body: &[u8],
) -> Result<BodyVerdict, Reason> {
    if !route.body.json || media_type(req).is_some_and(|m| m.eq_ignore_ascii_case(FORM)) {
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

/// The longest idempotency key accepted: real senders use UUIDs or similar
/// (36 bytes); a longer one is a mistake or an attack on the store.
pub(crate) const MAX_KEY_LEN: usize = 256;

/// The idempotency key's bytes, if the request carries a non-empty one.
/// `signed_id` is the id the signature covered, preferred by
/// `idempotency.key: scheme`.
///
/// A key must be unambiguous: a header sent twice, or as a list, with two
/// different values would let two deliveries share one identity (deduped on
/// the first, both forwarded), so it is refused, as is a key over
/// [`MAX_KEY_LEN`] bytes or one holding control characters.
pub(crate) fn idempotency_key(
    req: &RequestHeader,
    route: &Route,
    signed_id: Option<&str>,
    json: Option<&serde_json::Value>,
) -> Result<Option<Vec<u8>>, Reason> {
    let key = match &route.idempotency.source {
        KeySource::None => return Ok(None),
        KeySource::Scheme(_) if signed_id.is_some_and(|id| !id.is_empty()) => {
            signed_id.map(|id| id.as_bytes().to_vec())
        }
        KeySource::Header(h) | KeySource::Scheme(Some(h)) => header_key(&req.headers, h)?,
        KeySource::Scheme(None) => None,
        KeySource::Json(ptr) => match json.and_then(|j| j.pointer(ptr)) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.as_bytes().to_vec()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string().into_bytes()),
            _ => None,
        },
    };
    match key {
        Some(k) if k.len() > MAX_KEY_LEN || k.iter().any(|b| b.is_ascii_control()) => {
            Err(Reason::InvalidIdempotencyKey)
        }
        key => Ok(key),
    }
}

/// The one value of header `name` across all its lines and list members;
/// `None` when absent or empty, an error when two differ.
fn header_key(
    headers: &http::HeaderMap,
    name: &http::HeaderName,
) -> Result<Option<Vec<u8>>, Reason> {
    let mut key: Option<&[u8]> = None;
    for value in headers.get_all(name) {
        for part in value.as_bytes().split(|b| *b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() {
                continue;
            }
            match key {
                Some(k) if k != part => return Err(Reason::InvalidIdempotencyKey),
                _ => key = Some(part),
            }
        }
    }
    Ok(key.map(<[u8]>::to_vec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(values: &[&[u8]]) -> Result<Option<Vec<u8>>, Reason> {
        let mut h = http::HeaderMap::new();
        for v in values {
            h.append("idempotency-key", http::HeaderValue::from_bytes(v).unwrap());
        }
        header_key(&h, &http::HeaderName::from_static("idempotency-key"))
    }

    #[test]
    fn a_key_is_one_value_or_refused() {
        assert_eq!(key_of(&[]), Ok(None));
        assert_eq!(key_of(&[b" "]), Ok(None));
        assert_eq!(key_of(&[b"k1"]), Ok(Some(b"k1".to_vec())));
        // The same value repeated is one key.
        assert_eq!(key_of(&[b"k1", b"k1"]), Ok(Some(b"k1".to_vec())));
        assert_eq!(key_of(&[b"k1, k1"]), Ok(Some(b"k1".to_vec())));
        for two in [&[&b"k1"[..], b"k2"][..], &[b"k1, k2"], &[b"k1,", b"k2"]] {
            assert_eq!(key_of(two), Err(Reason::InvalidIdempotencyKey), "{two:?}");
        }
    }

    #[test]
    fn json_checks_pass_form_bodies_only() {
        let yaml = "routes:
  - name: slack
    path: /slack
    upstream: { url: \"http://127.0.0.1:3000/s\" }
    verify: { scheme: slack, secrets: [ { value: s } ] }
    events: [app_mention]
    event_field: /event/type
    unlisted_events: reject
";
        let config = crate::config::from_yaml(yaml, "t").unwrap();
        let route = &config.routes[0];
        let req = |t: &str| {
            let mut r = RequestHeader::build("POST", b"/slack", None).unwrap();
            r.insert_header("content-type", t).unwrap();
            r
        };
        let form = req("application/x-www-form-urlencoded; charset=utf-8");
        assert!(matches!(
            body_checks(&form, route, b"command=%2Fweather"),
            Ok(BodyVerdict::Pass(None))
        ));
        let json = req("application/json");
        assert!(matches!(
            body_checks(&json, route, b"command=%2Fweather"),
            Err(Reason::InvalidJson)
        ));
        assert!(matches!(
            body_checks(&json, route, br#"{"event":{"type":"message"}}"#),
            Err(Reason::EventNotAllowed)
        ));
        assert!(matches!(
            body_checks(&json, route, br#"{"event":{"type":"app_mention"}}"#),
            Ok(BodyVerdict::Pass(Some(_)))
        ));
    }

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
