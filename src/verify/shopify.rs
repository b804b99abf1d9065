//! Shopify: `X-Shopify-Hmac-Sha256: <base64>`, HMAC-SHA256 with the app's
//! client secret (UTF-8 bytes) over the raw body, standard padded base64, no
//! prefix, one value. No timestamp is signed; replay protection is the dedupe
//! on `X-Shopify-Webhook-Id`.

use base64::Engine as _;
use http::HeaderMap;

use super::{
    decode_base64, header_str, require_secret, Algorithm, Delivery, Failure, Key, Scheme,
    SignatureHeader, Signed, SignedRequest,
};

/// The `shopify` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shopify;

const HEADER: &str = "x-shopify-hmac-sha256";
const ID_HEADER: &str = "x-shopify-webhook-id";

impl Scheme for Shopify {
    fn name(&self) -> &'static str {
        "shopify"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![HEADER]
    }

    fn id_header(&self) -> Option<&str> {
        Some(ID_HEADER)
    }

    fn signs_timestamp(&self) -> bool {
        false
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        let value = header_str(headers, HEADER)?.ok_or(Failure::MissingSignature)?;
        Ok(SignatureHeader {
            timestamp: None,
            id: None,
            signatures: vec![decode_base64(value.trim(), Algorithm::Sha256.output_len())?],
            ..Default::default()
        })
    }

    fn mac(&self, key: &Key, _header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        let body = req.body;
        Algorithm::Sha256.mac(key, &[body])
    }

    /// The signature header, plus `X-Shopify-Webhook-Id` when `id` is not empty.
    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let (body, _timestamp, id) = (d.body, d.timestamp, d.id);
        Ok(Signed::headers(
            self.sign_headers(key, body, _timestamp, id),
        ))
    }
}

impl Shopify {
    fn sign_headers(
        &self,
        key: &Key,
        body: &[u8],
        _timestamp: i64,
        id: &str,
    ) -> Vec<(String, String)> {
        let sig =
            base64::engine::general_purpose::STANDARD.encode(Algorithm::Sha256.mac(key, &[body]));
        let mut out = vec![("X-Shopify-Hmac-Sha256".to_string(), sig)];
        if !id.is_empty() {
            out.push(("X-Shopify-Webhook-Id".to_string(), id.to_string()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::verify_body as verify;
    use crate::verify::Verified;
    use http::HeaderValue;
    use proptest::prelude::*;

    // Shopify publishes no vector. This one was computed for this test with
    // Python's `hmac` module (an implementation independent of this one):
    // base64(hmac.new(b"shop-secret", b'{"id":1}', hashlib.sha256).digest()).
    const SECRET: &str = "shop-secret";
    const BODY: &[u8] = br#"{"id":1}"#;
    const SIG: &str = "plW8VGqq0nDMIEhDqaNNW99asdUCy7EIqLZVcQwtAZ0=";
    const NOW: i64 = 1_700_000_000;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_str(value).unwrap());
        h
    }

    fn keys() -> Vec<Key> {
        vec![Shopify.derive_key(SECRET).unwrap()]
    }

    fn check(h: &HeaderMap, body: &[u8]) -> Result<Verified, Failure> {
        verify(&Shopify, h, body, &keys(), NOW, None)
    }

    #[test]
    fn vector_verifies() {
        assert_eq!(
            check(&headers(SIG), BODY),
            Ok(Verified {
                timestamp: None,
                id: None,
                key_index: 0,
                signature: base64::engine::general_purpose::STANDARD
                    .decode(SIG)
                    .unwrap()
            })
        );
    }

    #[test]
    fn sign_reproduces_the_vector() {
        assert_eq!(
            Shopify.sign(
                &keys()[0],
                BODY,
                NOW,
                "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
            ),
            vec![
                ("X-Shopify-Hmac-Sha256".into(), SIG.into()),
                (
                    "X-Shopify-Webhook-Id".into(),
                    "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into()
                ),
            ]
        );
        assert_eq!(
            Shopify.sign(&keys()[0], BODY, NOW, ""),
            vec![("X-Shopify-Hmac-Sha256".into(), SIG.into())]
        );
    }

    #[test]
    fn tampered_body_is_a_mismatch() {
        assert_eq!(
            check(&headers(SIG), br#"{"id":2}"#),
            Err(Failure::SignatureMismatch)
        );
    }

    #[test]
    fn old_and_new_secrets_both_match_during_rotation() {
        let rotated = vec![Key::new("new-shop-secret"), keys()[0].clone()];
        assert!(verify(&Shopify, &headers(SIG), BODY, &rotated, NOW, None).is_ok());
    }

    #[test]
    fn garbage_headers_are_malformed_or_missing() {
        assert_eq!(
            check(&HeaderMap::new(), BODY),
            Err(Failure::MissingSignature)
        );
        let long = "A".repeat(10 * 1024);
        for bad in [
            "",
            "garbage",
            "plW8VGqq0nDMIEhDqaNNW99asdUCy7EIqLZVcQwtAZ0",
            "plW8VGqq0nDMIEhDqaNNW99asdUCy7EIqLZVcQwtAZ1=",
            "plW8VGqq0nDMIEhDqaNNW99asdUCy7EIqLZVcQwtAZ0==",
            "plW8VGqq0nDMIEhDqaNNW99asdUCy7EIqLZVcQwtAZ0=,plW8VGqq0nDMIEhDqaNNW99asdUCy7EIqLZVcQwtAZ0=",
            "sha256=plW8VGqq0nDMIEhDqaNNW99asdUCy7EIqLZVcQwtAZ0=",
            "a5563c546aaad279cc20484368a34d5bdf5ab1d50bcbb1082a8b6571",
            &long,
        ] {
            assert_eq!(check(&headers(bad), BODY), Err(Failure::MalformedSignature), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn any_changed_body_byte_is_rejected(pos in 0usize..BODY.len(), flip in 1u8..=255) {
            let mut body = BODY.to_vec();
            body[pos] ^= flip;
            prop_assert_eq!(check(&headers(SIG), &body), Err(Failure::SignatureMismatch));
        }

        #[test]
        fn arbitrary_headers_never_panic(s in "\\PC{0,200}") {
            if let Ok(v) = HeaderValue::from_str(&s) {
                let mut h = HeaderMap::new();
                h.insert(HEADER, v);
                let _ = check(&h, BODY);
            }
        }
    }
}
