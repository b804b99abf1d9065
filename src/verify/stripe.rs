//! Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`,
//! HMAC-SHA256 over `<t>.<raw body>`: Fynapse's grammar and MAC under
//! another header. The key is the endpoint secret's UTF-8 bytes as written,
//! `whsec_` prefix included (it is not base64-decoded). Legacy `v0` entries
//! are ignored. No delivery id header: the event id is in the body.

use http::HeaderMap;

use super::fynapse::{mac_t_body, parse_t_v1, sign_t_v1};
use super::{
    header_str, require_secret, Delivery, Failure, Key, Scheme, SignatureHeader, Signed,
    SignedRequest,
};

/// The `stripe` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stripe;

const HEADER: &str = "stripe-signature";

impl Scheme for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
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

impl Stripe {
    fn sign_headers(
        &self,
        key: &Key,
        body: &[u8],
        timestamp: i64,
        _id: &str,
    ) -> Vec<(String, String)> {
        vec![(
            "Stripe-Signature".to_string(),
            sign_t_v1(key, body, timestamp),
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::verify_body as verify;
    use crate::verify::{Verified, MAX_SIGNATURES};
    use http::HeaderValue;
    use proptest::prelude::*;
    use std::time::Duration;

    // Illustrative vector (Stripe publishes none): computed for this test
    // with Python's `hmac` module, an implementation independent of this one.
    // The `whsec_` prefix is part of the key.
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
        vec![Stripe.derive_key(SECRET).unwrap()]
    }

    #[test]
    fn vector_verifies() {
        let h = headers(&format!("t={T},v1={SIG}"));
        assert_eq!(
            verify(&Stripe, &h, BODY, &keys(), T, TOL),
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
        let out = Stripe.sign(&keys()[0], BODY, T, "evt_ignored");
        assert_eq!(
            out,
            vec![("Stripe-Signature".into(), format!("t={T},v1={SIG}"))]
        );
    }

    #[test]
    fn the_whsec_prefix_is_part_of_the_key() {
        assert_eq!(keys()[0].as_bytes(), SECRET.as_bytes());
        let h = headers(&format!("t={T},v1={SIG}"));
        let stripped = vec![Key::new("test_secret")];
        assert_eq!(
            verify(&Stripe, &h, BODY, &stripped, T, TOL),
            Err(Failure::SignatureMismatch)
        );
    }

    #[test]
    fn v0_is_ignored_and_any_v1_may_match() {
        let zero = "0".repeat(64);
        let h = headers(&format!("t={T},v1={zero},v0={zero},v1={SIG}"));
        assert!(verify(&Stripe, &h, BODY, &keys(), T, TOL).is_ok());
        // A v0 alone (even a correct MAC) is no signature for us.
        let h = headers(&format!("t={T},v0={SIG}"));
        assert_eq!(
            verify(&Stripe, &h, BODY, &keys(), T, TOL),
            Err(Failure::MalformedSignature)
        );
    }

    #[test]
    fn tampered_body_is_a_mismatch() {
        let h = headers(&format!("t={T},v1={SIG}"));
        let body = br#"{"id":"evt_test_webhook","object":"evenT"}"#;
        assert_eq!(
            verify(&Stripe, &h, body, &keys(), T, TOL),
            Err(Failure::SignatureMismatch)
        );
    }

    #[test]
    fn freshness_both_directions() {
        let h = headers(&format!("t={T},v1={SIG}"));
        assert!(verify(&Stripe, &h, BODY, &keys(), T + 300, TOL).is_ok());
        assert!(verify(&Stripe, &h, BODY, &keys(), T - 300, TOL).is_ok());
        for now in [T + 301, T - 301] {
            assert_eq!(
                verify(&Stripe, &h, BODY, &keys(), now, TOL),
                Err(Failure::StaleTimestamp)
            );
        }
    }

    #[test]
    fn garbage_headers_are_malformed_or_missing() {
        assert_eq!(
            verify(&Stripe, &HeaderMap::new(), BODY, &keys(), T, TOL),
            Err(Failure::MissingSignature)
        );
        // Fynapse's header name is not Stripe's.
        let mut other = HeaderMap::new();
        other.insert(
            "webhook-signature",
            HeaderValue::from_str(&format!("t={T},v1={SIG}")).unwrap(),
        );
        assert_eq!(
            verify(&Stripe, &other, BODY, &keys(), T, TOL),
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
            &format!("t=-1,v1={SIG}"),
            &long,
            &too_many,
        ] {
            assert_eq!(
                verify(&Stripe, &headers(bad), BODY, &keys(), T, TOL),
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
            prop_assert_eq!(verify(&Stripe, &h, &body, &keys(), T, TOL), Err(Failure::SignatureMismatch));
        }

        #[test]
        fn any_changed_timestamp_is_rejected(delta in -300i64..=300) {
            prop_assume!(delta != 0);
            let h = headers(&format!("t={},v1={SIG}", T + delta));
            prop_assert_eq!(verify(&Stripe, &h, BODY, &keys(), T, TOL), Err(Failure::SignatureMismatch));
        }

        #[test]
        fn arbitrary_headers_never_panic(s in "\\PC{0,200}") {
            if let Ok(v) = HeaderValue::from_str(&s) {
                let mut h = HeaderMap::new();
                h.insert(HEADER, v);
                let _ = verify(&Stripe, &h, BODY, &keys(), T, TOL);
            }
        }
    }
}
