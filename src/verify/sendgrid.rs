//! SendGrid (signed Event Webhook): `X-Twilio-Email-Event-Webhook-Signature:
//! <base64 DER ECDSA signature>` and `X-Twilio-Email-Event-Webhook-Timestamp:
//! <Unix seconds>`, ECDSA P-256 with SHA-256 over `<timestamp text><raw
//! body>`, verified with the "Verification Key" SendGrid shows: base64 of a
//! DER SubjectPublicKeyInfo (`MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE…`, PEM
//! armour optional), under `verify.public_keys`. The timestamp is signed, so
//! freshness is enforced (SendGrid documents no window). No delivery id
//! header (each event has `sg_event_id`).
//!
//! The body is a JSON array with `\r\n` after each event: it must be the raw
//! bytes. An ECDSA signature has two valid encodings (`s` and `n − s`); the
//! matched signature is kept in its low-`s` `r‖s` form, so both count as
//! one delivery for replay detection.
//!
//! Sources: <https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features>;
//! the official SDK, sendgrid-nodejs `packages/eventwebhook/src/eventwebhook.js`
//! and its spec (the vector below).

use base64::Engine as _;
use http::HeaderMap;

use super::public_key::{
    p256_canonical, p256_position, p256_private, p256_public_from_der, p256_public_of, p256_sign,
};
use super::{
    header_str, parse_timestamp, Delivery, Failure, Key, KeyKind, Scheme, SignatureHeader, Signed,
    SignedRequest,
};

/// The `sendgrid` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct SendGrid;

const HEADER: &str = "x-twilio-email-event-webhook-signature";
const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

/// A DER ECDSA P-256 signature is at most 72 bytes, 96 in base64.
const MAX_SIG_B64: usize = 96;

fn message(ts: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(ts.len() + body.len());
    m.extend_from_slice(ts.as_bytes());
    m.extend_from_slice(body);
    m
}

/// Base64 DER, with or without PEM armour and line breaks.
fn der_from_text(text: &str) -> Result<Vec<u8>, String> {
    let b64: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
        .split_whitespace()
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| {
            "the SendGrid key is not base64 (expected the DER key SendGrid shows)".to_string()
        })
}

impl Scheme for SendGrid {
    fn name(&self) -> &'static str {
        "sendgrid"
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

    fn key_kinds(&self) -> &'static [KeyKind] {
        &[KeyKind::PublicKey]
    }

    fn derive_public_key(&self, public_key: &str) -> Result<Key, String> {
        p256_public_from_der(&der_from_text(public_key)?)
    }

    /// Base64 PKCS#8 DER (or PEM), or 64 hex digits of the raw scalar.
    fn derive_private_key(&self, private_key: &str) -> Result<Key, String> {
        let t = private_key.trim();
        match hex::decode(t) {
            Ok(raw) if raw.len() == 32 => p256_private(&raw),
            _ => p256_private(&der_from_text(t)?),
        }
    }

    fn public_key_for(&self, private: &Key) -> Option<Key> {
        p256_public_of(private)
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        let sig = header_str(headers, HEADER)?.ok_or(Failure::MissingSignature)?;
        let ts = header_str(headers, TIMESTAMP_HEADER)?.ok_or(Failure::MissingSignature)?;
        let sig = sig.trim();
        if sig.len() > MAX_SIG_B64 {
            return Err(Failure::MalformedSignature);
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .map_err(|_| Failure::MalformedSignature)?;
        Ok(SignatureHeader {
            timestamp: Some(parse_timestamp(ts)?),
            timestamp_text: Some(ts.to_string()),
            signatures: vec![p256_canonical(&der).ok_or(Failure::MalformedSignature)?],
            ..Default::default()
        })
    }

    fn matches(
        &self,
        key: &Key,
        header: &SignatureHeader,
        req: &SignedRequest<'_>,
    ) -> Option<usize> {
        let ts = header.timestamp_text.as_deref()?;
        p256_position(key, &message(ts, req.body), &header.signatures)
    }

    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        if key.kind() != KeyKind::PrivateKey {
            return Err("sendgrid signs with SendGrid's private key: give --private-key FILE (P-256, PKCS#8 or hex scalar)".into());
        }
        let ts = d.timestamp.to_string();
        let der = p256_sign(key, &message(&ts, d.body))?;
        Ok(Signed::headers(vec![
            (
                "X-Twilio-Email-Event-Webhook-Signature".to_string(),
                base64::engine::general_purpose::STANDARD.encode(der),
            ),
            ("X-Twilio-Email-Event-Webhook-Timestamp".to_string(), ts),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    // The official vector of sendgrid-nodejs's eventwebhook spec, checked
    // independently with Python's `cryptography` (ECDSA/SHA-256 verify).
    const PUBLIC: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==";
    const TS: &str = "1600112502";
    const BODY: &[u8] = b"[{\"email\":\"hello@world.com\",\"event\":\"dropped\",\"reason\":\"Bounced Address\",\"sg_event_id\":\"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA\",\"sg_message_id\":\"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0\",\"smtp-id\":\"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>\",\"timestamp\":1600112492}]\r\n";
    const SIG: &str = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=";

    fn case() -> Case {
        Case::new(
            &SendGrid,
            vec![SendGrid.derive_public_key(PUBLIC).unwrap()],
            &[(HEADER, SIG), (TIMESTAMP_HEADER, TS)],
            BODY,
            1_600_112_502,
        )
    }

    #[test]
    fn official_vector_and_standard_failures() {
        let c = case();
        let other =
            p256_public_of(&SendGrid.derive_private_key(&"11".repeat(32)).unwrap()).unwrap();
        c.assert_standard(other);
        assert_eq!(
            c.with_header(TIMESTAMP_HEADER, "1600112503").check(),
            Err(Failure::SignatureMismatch)
        );
        // Without the trailing CRLF the body is another body.
        let mut t = c.clone();
        t.body.truncate(t.body.len() - 2);
        assert_eq!(t.check(), Err(Failure::SignatureMismatch));
        c.assert_malformed(HEADER, &["", "notbase64!", "AAAA", &"A".repeat(200)]);
        c.assert_malformed(TIMESTAMP_HEADER, &["", "x"]);
    }

    #[test]
    fn pem_armour_is_accepted_and_garbage_refused() {
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n",
            &PUBLIC[..64],
            &PUBLIC[64..]
        );
        assert_eq!(
            SendGrid.derive_public_key(&pem),
            SendGrid.derive_public_key(PUBLIC)
        );
        assert!(SendGrid.derive_public_key("not a key").is_err());
        assert!(SendGrid.derive_public_key("AAAA").is_err());
        assert!(SendGrid.derive_key("secret").is_err());
    }

    #[test]
    fn sign_then_verify_with_a_test_key() {
        let private = SendGrid.derive_private_key(&"22".repeat(32)).unwrap();
        let public = p256_public_of(&private).unwrap();
        let h = SendGrid.sign(&private, BODY, 1_700_000_000, "");
        let c = Case::new(&SendGrid, vec![public], &h, BODY, 1_700_000_000);
        assert!(c.check().is_ok());
    }
}
