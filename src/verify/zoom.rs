//! Zoom: `x-zm-signature: v0=<hex>` and `x-zm-request-timestamp: <Unix
//! seconds>`, HMAC-SHA256 with the app's Secret Token (UTF-8 bytes) over
//! `v0:<timestamp>:<raw body>`. The timestamp is signed, so freshness is
//! enforced. No delivery id header.
//!
//! Setup handshake (signed): Zoom validates the endpoint when it is saved
//! and every 72 hours with an `endpoint.url_validation` event whose
//! `payload.plainToken` must come back as `{"plainToken": …,
//! "encryptedToken": hex(HMAC-SHA256(secret, plainToken))}`. That answer is
//! a MAC of request bytes, so it is only given for a request whose own
//! signature verified (otherwise anyone could have the gateway sign
//! `v0:<t>:<a forged body>` as a "plainToken"), and only for a token of
//! URL-safe characters.
//!
//! Sources: <https://developers.zoom.us/docs/api/webhooks/> ("Verify webhook
//! events", "Validate your webhook endpoint"),
//! <https://developers.zoom.us/changelog/platform/webhook-url-validation> and
//! Zoom's sample receiver <https://github.com/zoom/webhook-sample> (`index.js`:
//! message `v0:${timestamp}:${body}`, the validation answer).

use http::HeaderMap;

use super::{
    decode_hex, header_str, parse_timestamp, require_secret, token_ok, Algorithm, Delivery,
    Failure, HandshakeReply, Key, Scheme, SignatureHeader, Signed, SignedRequest,
};

/// The `zoom` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Zoom;

const HEADER: &str = "x-zm-signature";
const TIMESTAMP_HEADER: &str = "x-zm-request-timestamp";

fn mac_v0(key: &Key, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let t = timestamp.to_string();
    Algorithm::Sha256.mac(key, &[b"v0:", t.as_bytes(), b":", body])
}

impl Scheme for Zoom {
    fn name(&self) -> &'static str {
        "zoom"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![HEADER]
    }

    fn id_header(&self) -> Option<&str> {
        None
    }

    fn signs_timestamp(&self) -> bool {
        true
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        let value = header_str(headers, HEADER)?.ok_or(Failure::MissingSignature)?;
        let ts = header_str(headers, TIMESTAMP_HEADER)?.ok_or(Failure::MissingSignature)?;
        let hex = value
            .trim()
            .strip_prefix("v0=")
            .ok_or(Failure::MalformedSignature)?;
        Ok(SignatureHeader {
            timestamp: Some(parse_timestamp(ts.trim())?),
            signatures: vec![decode_hex(hex, Algorithm::Sha256.output_len())?],
            ..Default::default()
        })
    }

    fn mac(&self, key: &Key, header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        mac_v0(key, header.timestamp.unwrap_or_default(), req.body)
    }

    fn has_handshake(&self) -> bool {
        true
    }

    /// Answers `endpoint.url_validation`; called only once the request's
    /// signature verified under `key`.
    fn handshake(&self, req: &SignedRequest<'_>, key: &Key) -> Option<HandshakeReply> {
        let doc: serde_json::Value = serde_json::from_slice(req.body).ok()?;
        if doc.get("event")?.as_str()? != "endpoint.url_validation" {
            return None;
        }
        let token = doc.pointer("/payload/plainToken")?.as_str()?;
        if !token_ok(token, 256) {
            return None;
        }
        let encrypted = hex::encode(Algorithm::Sha256.mac(key, &[token.as_bytes()]));
        Some(HandshakeReply::json(&serde_json::json!({
            "plainToken": token,
            "encryptedToken": encrypted,
        })))
    }

    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let sig = hex::encode(mac_v0(key, d.timestamp, d.body));
        Ok(Signed::headers(vec![
            (
                "x-zm-request-timestamp".to_string(),
                d.timestamp.to_string(),
            ),
            ("x-zm-signature".to_string(), format!("v0={sig}")),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    // Zoom publishes no vector and no SDK verify function. Computed with
    // Python's `hmac` (independent of this code):
    // hmac.new(b"zoom_secret_token", b"v0:1700000000:" + BODY, hashlib.sha256).hexdigest()
    const SECRET: &str = "zoom_secret_token";
    const T: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"event":"meeting.started","event_ts":1700000000000}"#;
    const SIG: &str = "v0=a5772c155ed3e2bf7ade2acfd89ae175875879f7c8edd8fb36e43596baae1d28";
    // hmac.new(b"zoom_secret_token", b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    const PLAIN: &str = "qgg8vlvZRS6UYooatFL8Aw";
    const ENCRYPTED: &str = "bd48235863f4a6323ccc4963c594908b7c97f88b4a6a95278f4f093690b12726";

    fn case() -> Case {
        Case::new(
            &Zoom,
            vec![Key::new(SECRET)],
            &[
                ("x-zm-signature", SIG),
                ("x-zm-request-timestamp", "1700000000"),
            ],
            BODY,
            T,
        )
    }

    #[test]
    fn vector_and_standard_failures() {
        let c = case();
        c.assert_standard(Key::new("other"));
        assert_eq!(
            c.with_header("x-zm-request-timestamp", "1700000001")
                .check(),
            Err(Failure::SignatureMismatch)
        );
        assert_eq!(
            c.without_header("x-zm-request-timestamp").check(),
            Err(Failure::MissingSignature)
        );
        c.assert_malformed("x-zm-signature", &["", &SIG[3..], "v1=00", &SIG[..60]]);
        c.assert_malformed(
            "x-zm-request-timestamp",
            &["", "abc", "-1", "1700000000000"],
        );
        assert_eq!(Zoom.sign(&Key::new(SECRET), BODY, T, "")[1].1, SIG);
    }

    #[test]
    fn url_validation_answer_uses_the_matched_key() {
        let key = Key::new(SECRET);
        let body = format!(
            r#"{{"event":"endpoint.url_validation","payload":{{"plainToken":"{PLAIN}"}},"event_ts":1700000000000}}"#
        );
        let signed = Zoom.sign(&key, body.as_bytes(), T, "");
        let mut c = Case::new(&Zoom, vec![key.clone()], &signed, body.as_bytes(), T);
        let v = c.check().unwrap();
        let h = c.headers.clone();
        let req = SignedRequest::new("POST", &h, body.as_bytes());
        let reply = Zoom.handshake(&req, &c.keys[v.key_index]).unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_type, Some("application/json"));
        let doc: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(doc["plainToken"], PLAIN);
        assert_eq!(doc["encryptedToken"], ENCRYPTED);
        // An ordinary event is not a handshake.
        assert!(Zoom
            .handshake(&SignedRequest::new("POST", &h, BODY), &key)
            .is_none());
        // A plainToken shaped like signed content is not echoed.
        for bad in ["v0:1700000000:{\"event\":\"x\"}", "", "a b"] {
            let body = serde_json::json!({
                "event": "endpoint.url_validation",
                "payload": {"plainToken": bad},
            })
            .to_string();
            let req = SignedRequest::new("POST", &h, body.as_bytes());
            assert!(Zoom.handshake(&req, &key).is_none(), "{bad:?}");
        }
        // The handshake request itself is verified like any other.
        c.body.push(b' ');
        assert_eq!(c.check(), Err(Failure::SignatureMismatch));
    }
}
