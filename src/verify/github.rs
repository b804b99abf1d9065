//! GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 with the secret's
//! UTF-8 bytes over the raw body alone. No timestamp is signed, so there is
//! no freshness window; replay protection is the dedupe on `X-GitHub-Delivery`
//! (one GUID per event, kept on redelivery). The legacy SHA-1
//! `X-Hub-Signature` is not read.

use http::HeaderMap;

use super::{
    decode_hex, header_str, require_secret, Algorithm, Delivery, Failure, Key, Scheme,
    SignatureHeader, Signed, SignedRequest,
};

/// The `github` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct GitHub;

const HEADER: &str = "x-hub-signature-256";
const ID_HEADER: &str = "x-github-delivery";
const PREFIX: &str = "sha256=";

impl Scheme for GitHub {
    fn name(&self) -> &'static str {
        "github"
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
        let hex = value
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(Failure::MalformedSignature)?;
        Ok(SignatureHeader {
            timestamp: None,
            id: None,
            signatures: vec![decode_hex(hex, Algorithm::Sha256.output_len())?],
            ..Default::default()
        })
    }

    fn mac(&self, key: &Key, _header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        let body = req.body;
        Algorithm::Sha256.mac(key, &[body])
    }

    /// The signature header, plus `X-GitHub-Delivery` when `id` is not empty.
    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let (body, _timestamp, id) = (d.body, d.timestamp, d.id);
        Ok(Signed::headers(
            self.sign_headers(key, body, _timestamp, id),
        ))
    }
}

impl GitHub {
    fn sign_headers(
        &self,
        key: &Key,
        body: &[u8],
        _timestamp: i64,
        id: &str,
    ) -> Vec<(String, String)> {
        let sig = hex::encode(Algorithm::Sha256.mac(key, &[body]));
        let mut out = vec![("X-Hub-Signature-256".to_string(), format!("{PREFIX}{sig}"))];
        if !id.is_empty() {
            out.push(("X-GitHub-Delivery".to_string(), id.to_string()));
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

    // The official example of GitHub's "Validating webhook deliveries" page
    // (<https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries>),
    // recomputed with Python's `hmac`.
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    const NOW: i64 = 1_700_000_000;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_str(value).unwrap());
        h
    }

    fn keys() -> Vec<Key> {
        vec![GitHub.derive_key(SECRET).unwrap()]
    }

    fn check(h: &HeaderMap, body: &[u8]) -> Result<Verified, Failure> {
        verify(&GitHub, h, body, &keys(), NOW, None)
    }

    #[test]
    fn vector_verifies() {
        assert_eq!(
            check(&headers(SIG), BODY),
            Ok(Verified {
                timestamp: None,
                id: None,
                key_index: 0,
                signature: hex::decode(&SIG["sha256=".len()..]).unwrap()
            })
        );
    }

    #[test]
    fn sign_reproduces_the_vector() {
        let guid = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
        assert_eq!(
            GitHub.sign(&keys()[0], BODY, NOW, guid),
            vec![
                ("X-Hub-Signature-256".into(), SIG.into()),
                ("X-GitHub-Delivery".into(), guid.into()),
            ]
        );
        assert_eq!(
            GitHub.sign(&keys()[0], BODY, NOW, ""),
            vec![("X-Hub-Signature-256".into(), SIG.into())]
        );
    }

    #[test]
    fn upper_case_hex_is_accepted() {
        let upper = format!("sha256={}", SIG["sha256=".len()..].to_uppercase());
        assert!(check(&headers(&upper), BODY).is_ok());
    }

    #[test]
    fn tampered_body_or_secret_is_a_mismatch() {
        assert_eq!(
            check(&headers(SIG), b"Hello, World?"),
            Err(Failure::SignatureMismatch)
        );
        let other = vec![Key::new("It's a secret to everybody")];
        assert_eq!(
            verify(&GitHub, &headers(SIG), BODY, &other, NOW, None),
            Err(Failure::SignatureMismatch)
        );
    }

    #[test]
    fn any_secret_may_match() {
        let rotated = vec![Key::new("new"), keys()[0].clone()];
        assert!(verify(&GitHub, &headers(SIG), BODY, &rotated, NOW, None).is_ok());
    }

    #[test]
    fn garbage_headers_are_malformed_or_missing() {
        assert_eq!(
            check(&HeaderMap::new(), BODY),
            Err(Failure::MissingSignature)
        );
        // The legacy SHA-1 header alone is not enough.
        let mut legacy = HeaderMap::new();
        legacy.insert(
            "x-hub-signature",
            HeaderValue::from_static("sha1=0000000000000000000000000000000000000000"),
        );
        assert_eq!(check(&legacy, BODY), Err(Failure::MissingSignature));
        let hex = &SIG["sha256=".len()..];
        let long = format!("sha256={}", "a".repeat(10 * 1024));
        for bad in [
            "",
            "garbage",
            hex,
            &format!("sha1={hex}"),
            &format!("SHA256={hex}"),
            &format!("sha256={}", &hex[..62]),
            &format!("sha256={hex}00"),
            &format!("sha256={}zz", &hex[..62]),
            &format!("sha256={hex},sha256={hex}"),
            &long,
        ] {
            assert_eq!(
                check(&headers(bad), BODY),
                Err(Failure::MalformedSignature),
                "{bad:?}"
            );
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
