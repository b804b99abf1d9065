//! Mailgun: no signature header. The JSON body carries
//! `"signature": {"timestamp": "<Unix seconds>", "token": "<random>",
//! "signature": "<hex>"}` next to `"event-data"`, and the signature is
//! HMAC-SHA256 with the HTTP webhook signing key (not the API key; UTF-8
//! bytes) over `<timestamp><token>` only.
//!
//! `event-data` is not signed. A captured `signature` object therefore
//! authenticates any event-data put next to it, and the only defences are
//! the freshness window on its timestamp and using each token once: the
//! token is this scheme's id ([`Verified::id`](super::Verified), so
//! `idempotency.key: scheme` dedupes on it; there is no id header), which
//! makes a captured signature single-use. Treat event-data as a hint and
//! re-read the event from Mailgun's API before acting on it.
//! `parent-signature` (subaccounts) is not read.
//!
//! Because the signature is in the body, nothing can be rejected before the
//! body is read: [`Scheme::parse`] accepts every head and
//! [`Scheme::parse_body`] reads the signature.
//!
//! Sources: <https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks>
//! (the `signature` object, the signed bytes, the webhook signing key,
//! caching tokens, rejecting old timestamps).

use http::HeaderMap;

use super::{
    decode_hex, parse_timestamp, require_secret, Algorithm, Delivery, Failure, Key, Scheme,
    SignatureHeader, Signed, SignedRequest,
};

/// The `mailgun` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mailgun;

/// The longest token accepted (Mailgun's are 50 characters).
const MAX_TOKEN: usize = 256;

impl Scheme for Mailgun {
    fn name(&self) -> &'static str {
        "mailgun"
    }

    fn signature_headers(&self) -> Vec<&str> {
        Vec::new()
    }

    fn id_header(&self) -> Option<&str> {
        None
    }

    /// The token, from the body.
    fn carries_id(&self) -> bool {
        true
    }

    fn signs_timestamp(&self) -> bool {
        true
    }

    fn parse(&self, _headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        Ok(SignatureHeader::default())
    }

    fn parse_body(
        &self,
        _header: SignatureHeader,
        req: &SignedRequest<'_>,
    ) -> Result<SignatureHeader, Failure> {
        let doc: serde_json::Value =
            serde_json::from_slice(req.body).map_err(|_| Failure::MissingSignature)?;
        let sig = doc.get("signature").ok_or(Failure::MissingSignature)?;
        let field = |name: &str| -> Result<&str, Failure> {
            sig.get(name)
                .ok_or(Failure::MissingSignature)?
                .as_str()
                .ok_or(Failure::MalformedSignature)
        };
        let (timestamp, token, hex) = (field("timestamp")?, field("token")?, field("signature")?);
        let token_ok =
            (1..=MAX_TOKEN).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic());
        if !token_ok {
            return Err(Failure::MalformedSignature);
        }
        Ok(SignatureHeader {
            timestamp: Some(parse_timestamp(timestamp)?),
            timestamp_text: Some(timestamp.to_string()),
            id: Some(token.to_string()),
            signatures: vec![decode_hex(hex, Algorithm::Sha256.output_len())?],
        })
    }

    fn mac(&self, key: &Key, header: &SignatureHeader, _req: &SignedRequest<'_>) -> Vec<u8> {
        let ts = header.timestamp_text.as_deref().unwrap_or_default();
        let token = header.id.as_deref().unwrap_or_default();
        Algorithm::Sha256.mac(key, &[ts.as_bytes(), token.as_bytes()])
    }

    /// Puts a `signature` object (token = the delivery id) first in the
    /// JSON object `body` and returns that body.
    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let doc: serde_json::Value = serde_json::from_slice(d.body)
            .map_err(|_| "a Mailgun body is a JSON object".to_string())?;
        let obj = doc.as_object().ok_or("a Mailgun body is a JSON object")?;
        if obj.contains_key("signature") {
            return Err("the body already has a `signature`".into());
        }
        let token = d.id;
        if token.is_empty()
            || token.len() > MAX_TOKEN
            || !token.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(
                "Mailgun's token (the delivery id) must be 1 to 256 visible ASCII characters"
                    .into(),
            );
        }
        let ts = d.timestamp.to_string();
        let sig = hex::encode(Algorithm::Sha256.mac(key, &[ts.as_bytes(), token.as_bytes()]));
        let field = format!(
            "\"signature\":{}",
            serde_json::json!({"timestamp": ts, "token": token, "signature": sig})
        );
        Ok(Signed {
            headers: Vec::new(),
            body: Some(super::linear::insert_first_field(d.body, &field)),
            url: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    // Mailgun publishes no vector (its page shows code only). Computed with
    // Python's `hmac` (independent of this code):
    // hmac.new(b"mailgun_signing_key", b"1700000000" + b"a" * 50, hashlib.sha256).hexdigest()
    const SECRET: &str = "mailgun_signing_key";
    const T: i64 = 1_700_000_000;
    const SIG: &str = "9180d3ba47d0a132576084995a3a91c2e79f3b6f75b7c88dba228a2fd52b26ff";

    fn body(ts: &str, token: &str, sig: &str) -> Vec<u8> {
        format!(
            r#"{{"signature":{{"timestamp":"{ts}","token":"{token}","signature":"{sig}"}},"event-data":{{"event":"delivered","id":"ev1"}}}}"#
        )
        .into_bytes()
    }

    fn case() -> Case {
        let token = "a".repeat(50);
        Case::new(
            &Mailgun,
            vec![Key::new(SECRET)],
            &[("content-type", "application/json")],
            &body("1700000000", &token, SIG),
            T,
        )
    }

    #[test]
    fn vector_verifies_and_the_token_is_the_id() {
        let v = case().check().unwrap();
        assert_eq!(v.id, Some("a".repeat(50)));
        assert_eq!(v.timestamp, Some(T));
        assert_eq!(v.signature, hex::decode(SIG).unwrap());
        assert!(Mailgun.carries_id());
    }

    #[test]
    fn signed_fields_wrong_key_and_staleness() {
        let c = case();
        let tok = "a".repeat(50);
        for (ts, token) in [
            ("1700000001", tok.as_str()),
            ("1700000000", &"a".repeat(49)),
        ] {
            let mut c = c.clone();
            c.body = body(ts, token, SIG);
            assert_eq!(c.check(), Err(Failure::SignatureMismatch), "{ts} {token}");
        }
        let mut w = c.clone();
        w.keys = vec![Key::new("api-key-not-signing-key")];
        assert_eq!(w.check(), Err(Failure::SignatureMismatch));
        for now in [T + 100_000, T - 100_000] {
            let mut s = c.clone();
            s.now = now;
            assert_eq!(s.check(), Err(Failure::StaleTimestamp));
        }
        // Documented weakness: event-data is not covered.
        let mut forged = c.clone();
        forged.body = String::from_utf8(c.body.clone())
            .unwrap()
            .replace("delivered", "failed")
            .into_bytes();
        assert!(forged.check().is_ok());
    }

    #[test]
    fn missing_or_malformed_signature_object() {
        let c = case();
        let tok = "a".repeat(50);
        for (b, want) in [
            (br#"{"event-data":{}}"#.to_vec(), Failure::MissingSignature),
            (b"not json".to_vec(), Failure::MissingSignature),
            (
                br#"{"signature":{"timestamp":"1700000000","signature":"00"}}"#.to_vec(),
                Failure::MissingSignature,
            ),
            (
                br#"{"signature":{"timestamp":1700000000,"token":"t","signature":"00"}}"#.to_vec(),
                Failure::MalformedSignature,
            ),
            (body("17e8", &tok, SIG), Failure::MalformedSignature),
            (body("1700000000", "", SIG), Failure::MalformedSignature),
            (body("1700000000", "a b", SIG), Failure::MalformedSignature),
            (
                body("1700000000", &tok, &SIG[..62]),
                Failure::MalformedSignature,
            ),
        ] {
            let mut c = c.clone();
            c.body = b;
            assert_eq!(c.check(), Err(want), "{}", String::from_utf8_lossy(&c.body));
        }
    }

    #[test]
    fn sign_puts_the_signature_in_the_body() {
        let key = Key::new(SECRET);
        let tok = "a".repeat(50);
        let d = Delivery {
            method: "POST",
            url: None,
            body: br#"{"event-data":{"event":"delivered"}}"#,
            timestamp: T,
            id: &tok,
        };
        let s = Mailgun.sign_delivery(&key, &d).unwrap();
        assert!(s.headers.is_empty());
        let b = s.body.unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(doc["signature"]["signature"], SIG);
        assert_eq!(doc["event-data"]["event"], "delivered");
        assert!(Mailgun
            .sign_delivery(&key, &Delivery { id: "", ..d })
            .is_err());
    }
}
