//! Slack: `X-Slack-Signature: v0=<hex>`, HMAC-SHA256 with the signing
//! secret's UTF-8 bytes over `v0:<X-Slack-Request-Timestamp>:<raw body>`.
//! Both headers are needed; the timestamp (Unix seconds) is signed, so
//! freshness is enforced. No delivery id header (the event id is in the body).
//!
//! Slack signs every body the same way, JSON (Events API) or
//! `application/x-www-form-urlencoded` (slash commands, interactivity):
//! accepting form bodies is a matter of the route's body settings (do not
//! require JSON on a Slack route that takes them), not of this scheme.
//!
//! Setup handshake (signed): the Events API's `url_verification` request,
//! `{"type":"url_verification","challenge":"…"}`, is answered `200` with the
//! challenge as `text/plain`, only once its own signature verified, and
//! only for a challenge of URL-safe characters.
//!
//! Source: <https://api.slack.com/authentication/verifying-requests-from-slack>;
//! <https://api.slack.com/events/url_verification> (the handshake).

use http::HeaderMap;

use super::{
    decode_hex, header_str, parse_timestamp, require_secret, token_ok, Algorithm, Delivery,
    Failure, HandshakeReply, Key, Scheme, SignatureHeader, Signed, SignedRequest,
};

/// The `slack` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Slack;

const HEADER: &str = "x-slack-signature";
const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
const VERSION: &str = "v0";

/// The `v0:<t>:<body>` MAC, without copying the body.
fn mac_v0(key: &Key, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let t = timestamp.to_string();
    Algorithm::Sha256.mac(key, &[b"v0:", t.as_bytes(), b":", body])
}

impl Scheme for Slack {
    fn name(&self) -> &'static str {
        "slack"
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
            .strip_prefix(VERSION)
            .and_then(|v| v.strip_prefix('='))
            .ok_or(Failure::MalformedSignature)?;
        Ok(SignatureHeader {
            timestamp: Some(parse_timestamp(ts.trim())?),
            id: None,
            signatures: vec![decode_hex(hex, Algorithm::Sha256.output_len())?],
            ..Default::default()
        })
    }

    fn has_handshake(&self) -> bool {
        true
    }

    /// Answers `url_verification`; called only once the request verified.
    fn handshake(&self, req: &SignedRequest<'_>, _key: &Key) -> Option<HandshakeReply> {
        let doc: serde_json::Value = serde_json::from_slice(req.body).ok()?;
        if doc.get("type")?.as_str()? != "url_verification" {
            return None;
        }
        let challenge = doc.get("challenge")?.as_str()?;
        token_ok(challenge, 256).then(|| HandshakeReply {
            status: 200,
            content_type: Some("text/plain"),
            body: challenge.as_bytes().to_vec(),
        })
    }

    fn mac(&self, key: &Key, header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        let body = req.body;
        mac_v0(key, header.timestamp.unwrap_or_default(), body)
    }

    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let (body, timestamp, _id) = (d.body, d.timestamp, d.id);
        Ok(Signed::headers(
            self.sign_headers(key, body, timestamp, _id),
        ))
    }
}

impl Slack {
    fn sign_headers(
        &self,
        key: &Key,
        body: &[u8],
        timestamp: i64,
        _id: &str,
    ) -> Vec<(String, String)> {
        let sig = hex::encode(mac_v0(key, timestamp, body));
        vec![
            (
                "X-Slack-Request-Timestamp".to_string(),
                timestamp.to_string(),
            ),
            ("X-Slack-Signature".to_string(), format!("{VERSION}={sig}")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::verify_body as verify;
    use crate::verify::Verified;
    use http::HeaderValue;
    use proptest::prelude::*;
    use std::time::Duration;

    // The worked example of Slack's "Verifying requests from Slack" page
    // (<https://api.slack.com/authentication/verifying-requests-from-slack>),
    // recomputed with Python's `hmac`.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const T: i64 = 1_531_420_618;
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const TOL: Option<Duration> = Some(Duration::from_secs(300));

    fn headers(sig: &str, ts: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_str(sig).unwrap());
        h.insert(TIMESTAMP_HEADER, HeaderValue::from_str(ts).unwrap());
        h
    }

    fn vector() -> HeaderMap {
        headers(SIG, &T.to_string())
    }

    fn keys() -> Vec<Key> {
        vec![Slack.derive_key(SECRET).unwrap()]
    }

    fn check(h: &HeaderMap, body: &[u8], now: i64) -> Result<Verified, Failure> {
        verify(&Slack, h, body, &keys(), now, TOL)
    }

    #[test]
    fn vector_verifies() {
        assert_eq!(
            check(&vector(), BODY, T),
            Ok(Verified {
                timestamp: Some(T),
                id: None,
                key_index: 0,
                signature: hex::decode(&SIG[3..]).unwrap()
            })
        );
    }

    #[test]
    fn sign_reproduces_the_vector() {
        assert_eq!(
            Slack.sign(&keys()[0], BODY, T, "ignored"),
            vec![
                ("X-Slack-Request-Timestamp".into(), T.to_string()),
                ("X-Slack-Signature".into(), SIG.into()),
            ]
        );
    }

    #[test]
    fn tampered_body_or_timestamp_is_a_mismatch() {
        let mut body = BODY.to_vec();
        body.push(b'&');
        assert_eq!(check(&vector(), &body, T), Err(Failure::SignatureMismatch));
        let h = headers(SIG, &(T + 1).to_string());
        assert_eq!(check(&h, BODY, T), Err(Failure::SignatureMismatch));
    }

    #[test]
    fn freshness_both_directions() {
        assert!(check(&vector(), BODY, T + 300).is_ok());
        assert!(check(&vector(), BODY, T - 300).is_ok());
        for now in [T + 301, T - 301] {
            assert_eq!(check(&vector(), BODY, now), Err(Failure::StaleTimestamp));
        }
    }

    #[test]
    fn either_header_missing_is_missing() {
        for drop in [HEADER, TIMESTAMP_HEADER] {
            let mut h = vector();
            h.remove(drop);
            assert_eq!(check(&h, BODY, T), Err(Failure::MissingSignature), "{drop}");
        }
    }

    #[test]
    fn garbage_headers_are_malformed() {
        let hex = &SIG[3..];
        let long = format!("v0={}", "a".repeat(10 * 1024));
        for bad in [
            "",
            "garbage",
            hex,
            &format!("v1={hex}"),
            &format!("v0:{hex}"),
            &format!("v0={}", &hex[..62]),
            &format!("v0={}zz", &hex[..62]),
            &format!("{SIG},{SIG}"),
            &long,
        ] {
            assert_eq!(
                check(&headers(bad, &T.to_string()), BODY, T),
                Err(Failure::MalformedSignature),
                "{bad:?}"
            );
        }
        for ts in ["", "abc", "-1531420618", "1531420618.5", "15314206180000"] {
            assert_eq!(
                check(&headers(SIG, ts), BODY, T),
                Err(Failure::MalformedSignature),
                "{ts:?}"
            );
        }
    }

    #[test]
    fn url_verification_is_answered_with_the_challenge() {
        let key = &keys()[0];
        let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        let h = HeaderMap::new();
        let reply = Slack
            .handshake(&SignedRequest::new("POST", &h, body), key)
            .unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_type, Some("text/plain"));
        assert_eq!(
            reply.body,
            b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
        );
        for other in [
            &br#"{"type":"event_callback","challenge":"x"}"#[..],
            br#"{"type":"url_verification","challenge":"<b>"}"#,
            br#"{"type":"url_verification"}"#,
            BODY,
        ] {
            assert!(Slack
                .handshake(&SignedRequest::new("POST", &h, other), key)
                .is_none());
        }
    }

    proptest! {
        #[test]
        fn any_changed_body_byte_is_rejected(pos in 0usize..BODY.len(), flip in 1u8..=255) {
            let mut body = BODY.to_vec();
            body[pos] ^= flip;
            prop_assert_eq!(check(&vector(), &body, T), Err(Failure::SignatureMismatch));
        }

        #[test]
        fn any_changed_timestamp_is_rejected(delta in -300i64..=300) {
            prop_assume!(delta != 0);
            let h = headers(SIG, &(T + delta).to_string());
            prop_assert_eq!(check(&h, BODY, T), Err(Failure::SignatureMismatch));
        }

        #[test]
        fn arbitrary_headers_never_panic(sig in "\\PC{0,200}", ts in "\\PC{0,20}") {
            if let (Ok(s), Ok(t)) = (HeaderValue::from_str(&sig), HeaderValue::from_str(&ts)) {
                let mut h = HeaderMap::new();
                h.insert(HEADER, s);
                h.insert(TIMESTAMP_HEADER, t);
                let _ = check(&h, BODY, T);
            }
        }
    }
}
