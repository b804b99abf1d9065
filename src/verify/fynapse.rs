//! Fynapse: `Webhook-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`,
//! HMAC-SHA256 with the secret's UTF-8 bytes over `<t>.<raw body>`.
//!
//! Several `v1` values arrive while a secret rotates; one match is enough.
//! Unknown keys (a future `v2`) are skipped, as Stripe's parser does with the
//! same grammar. The delivery id (`Idempotency-Key`) is not signed.

use http::HeaderMap;

use super::{
    decode_hex, header_str, parse_timestamp, require_secret, Algorithm, Delivery, Failure, Key,
    Scheme, SignatureHeader, Signed, SignedRequest, MAX_SIGNATURES,
};

/// The `fynapse` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fynapse;

const HEADER: &str = "webhook-signature";

/// Parses the `t=…,v1=…` grammar shared by Fynapse and Stripe.
pub(crate) fn parse_t_v1(value: &str) -> Result<SignatureHeader, Failure> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in value.split(',') {
        let item = item.trim();
        let (k, v) = item.split_once('=').ok_or(Failure::MalformedSignature)?;
        match k {
            "t" => {
                if timestamp.is_some() {
                    return Err(Failure::MalformedSignature);
                }
                timestamp = Some(parse_timestamp(v)?);
            }
            "v1" => {
                if signatures.len() == MAX_SIGNATURES {
                    return Err(Failure::MalformedSignature);
                }
                signatures.push(decode_hex(v, Algorithm::Sha256.output_len())?);
            }
            _ => {}
        }
    }
    if timestamp.is_none() || signatures.is_empty() {
        return Err(Failure::MalformedSignature);
    }
    Ok(SignatureHeader {
        timestamp,
        id: None,
        signatures,
        ..Default::default()
    })
}

/// The `<t>.<body>` MAC shared by Fynapse and Stripe.
pub(crate) fn mac_t_body(key: &Key, header: &SignatureHeader, body: &[u8]) -> Vec<u8> {
    let t = header.timestamp.unwrap_or_default().to_string();
    Algorithm::Sha256.mac(key, &[t.as_bytes(), b".", body])
}

/// The `t=…,v1=…` header value a sender of this grammar attaches.
pub(crate) fn sign_t_v1(key: &Key, body: &[u8], timestamp: i64) -> String {
    let header = SignatureHeader {
        timestamp: Some(timestamp),
        ..Default::default()
    };
    let sig = hex::encode(mac_t_body(key, &header, body));
    format!("t={timestamp},v1={sig}")
}

impl Scheme for Fynapse {
    fn name(&self) -> &'static str {
        "fynapse"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![HEADER]
    }

    fn id_header(&self) -> Option<&str> {
        Some("idempotency-key")
    }

    fn signs_timestamp(&self) -> bool {
        true
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        let value = header_str(headers, HEADER)?.ok_or(Failure::MissingSignature)?;
        parse_t_v1(value)
    }

    fn mac(&self, key: &Key, header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        let body = req.body;
        mac_t_body(key, header, body)
    }

    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let (body, timestamp, _id) = (d.body, d.timestamp, d.id);
        Ok(Signed::headers(
            self.sign_headers(key, body, timestamp, _id),
        ))
    }
}

impl Fynapse {
    fn sign_headers(
        &self,
        key: &Key,
        body: &[u8],
        timestamp: i64,
        _id: &str,
    ) -> Vec<(String, String)> {
        vec![(
            "Webhook-Signature".to_string(),
            sign_t_v1(key, body, timestamp),
        )]
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

    // Fynapse publishes no vector. Its algorithm is Stripe's under another
    // header name, so this is the same `<t>.<body>` HMAC-SHA256 vector as
    // the Stripe test's, computed with Python's `hmac` module (an
    // implementation independent of this one).
    const SECRET: &str = "whsec_test_secret";
    const T: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;
    const SIG: &str = "d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990";
    const TOL: Option<Duration> = Some(Duration::from_secs(300));

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_str(value).unwrap());
        h
    }

    fn keys() -> Vec<Key> {
        vec![Fynapse.derive_key(SECRET).unwrap()]
    }

    #[test]
    fn vector_verifies() {
        let h = headers(&format!("t={T},v1={SIG}"));
        assert_eq!(
            verify(&Fynapse, &h, BODY, &keys(), T, TOL),
            Ok(Verified {
                timestamp: Some(T),
                id: None,
                key_index: 0,
                signature: hex::decode(SIG).unwrap()
            })
        );
    }

    #[test]
    fn sign_reproduces_the_vector() {
        let out = Fynapse.sign(&keys()[0], BODY, T, "");
        assert_eq!(
            out,
            vec![("Webhook-Signature".into(), format!("t={T},v1={SIG}"))]
        );
    }

    #[test]
    fn upper_case_hex_and_spaces_are_accepted() {
        let h = headers(&format!("t={T}, v1={}", SIG.to_uppercase()));
        assert!(verify(&Fynapse, &h, BODY, &keys(), T, TOL).is_ok());
    }

    #[test]
    fn any_v1_and_any_secret_may_match() {
        let other = "0".repeat(64);
        let h = headers(&format!("t={T},v1={other},v1={SIG},v2=zz"));
        let rotated = vec![Key::new("new-secret"), keys()[0].clone()];
        assert!(verify(&Fynapse, &h, BODY, &rotated, T, TOL).is_ok());
        let h = headers(&format!("t={T},v1={other}"));
        assert_eq!(
            verify(&Fynapse, &h, BODY, &rotated, T, TOL),
            Err(Failure::SignatureMismatch)
        );
    }

    #[test]
    fn freshness_both_directions() {
        let h = headers(&format!("t={T},v1={SIG}"));
        assert!(verify(&Fynapse, &h, BODY, &keys(), T + 300, TOL).is_ok());
        assert!(verify(&Fynapse, &h, BODY, &keys(), T - 300, TOL).is_ok());
        for now in [T + 301, T - 301] {
            assert_eq!(
                verify(&Fynapse, &h, BODY, &keys(), now, TOL),
                Err(Failure::StaleTimestamp)
            );
        }
    }

    #[test]
    fn garbage_headers_are_malformed_or_missing() {
        assert_eq!(
            verify(&Fynapse, &HeaderMap::new(), BODY, &keys(), T, TOL),
            Err(Failure::MissingSignature)
        );
        let long = format!("t={T},v1={}", "a".repeat(10 * 1024));
        let too_many = format!("t={T}{}", format!(",v1={SIG}").repeat(MAX_SIGNATURES + 1));
        for bad in [
            "",
            "garbage",
            &format!("v1={SIG}"),
            &format!("t={T}"),
            &format!("t={T},v1=xyz"),
            &format!("t={T},v1={}", &SIG[..62]),
            &format!("t=abc,v1={SIG}"),
            &format!("t={T},t={T},v1={SIG}"),
            &format!("t={T};v1={SIG}"),
            &long,
            &too_many,
        ] {
            assert_eq!(
                verify(&Fynapse, &headers(bad), BODY, &keys(), T, TOL),
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
            let h = headers(&format!("t={T},v1={SIG}"));
            prop_assert_eq!(verify(&Fynapse, &h, &body, &keys(), T, TOL), Err(Failure::SignatureMismatch));
        }

        #[test]
        fn any_changed_signature_nibble_is_rejected(pos in 0usize..64, nibble in 0u8..16) {
            let mut sig: Vec<u8> = SIG.bytes().collect();
            let c = b"0123456789abcdef"[nibble as usize];
            prop_assume!(sig[pos] != c);
            sig[pos] = c;
            let h = headers(&format!("t={T},v1={}", String::from_utf8(sig).unwrap()));
            prop_assert_eq!(verify(&Fynapse, &h, BODY, &keys(), T, TOL), Err(Failure::SignatureMismatch));
        }

        #[test]
        fn any_changed_timestamp_is_rejected(delta in -300i64..=300) {
            prop_assume!(delta != 0);
            let h = headers(&format!("t={},v1={SIG}", T + delta));
            prop_assert_eq!(verify(&Fynapse, &h, BODY, &keys(), T, TOL), Err(Failure::SignatureMismatch));
        }

        #[test]
        fn arbitrary_headers_never_panic(s in "\\PC{0,200}") {
            if let Ok(v) = HeaderValue::from_str(&s) {
                let mut h = HeaderMap::new();
                h.insert(HEADER, v);
                let _ = verify(&Fynapse, &h, BODY, &keys(), T, TOL);
            }
        }
    }
}
