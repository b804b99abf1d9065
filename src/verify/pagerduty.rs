//! PagerDuty (v3 webhooks): `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`,
//! HMAC-SHA256 with the subscription's secret (UTF-8 bytes) over the raw
//! body. Several `v1=` values arrive while a secret rotates (any may match);
//! other versions are skipped. No timestamp. `X-Webhook-Id` is the same on
//! every attempt of a delivery, so it is the id.
//!
//! Sources: PagerDuty's developer docs, `docs/webhooks/04-Signatures.md` and
//! `02-Behavior.md` (`X-Webhook-Id`) in <https://github.com/PagerDuty/developer-docs>;
//! the official Go client's verifier
//! <https://github.com/PagerDuty/go-pagerduty/blob/main/webhookv3/webhookv3.go>.

use http::HeaderMap;

use super::body_mac::BodyMac;
use super::{
    require_secret, Algorithm, Delivery, Encoding, Failure, Key, Scheme, SignatureHeader, Signed,
    SignedRequest,
};

/// The `pagerduty` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct PagerDuty;

const MAC: BodyMac = BodyMac {
    header: "x-pagerduty-signature",
    header_display: "X-PagerDuty-Signature",
    prefix: "v1=",
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha256,
    list: Some(','),
};

const ID_HEADER: &str = "x-webhook-id";

impl Scheme for PagerDuty {
    fn name(&self) -> &'static str {
        "pagerduty"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![MAC.header]
    }

    fn id_header(&self) -> Option<&str> {
        Some(ID_HEADER)
    }

    fn signs_timestamp(&self) -> bool {
        false
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        MAC.parse(headers)
    }

    fn mac(&self, key: &Key, _header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        MAC.mac(key, req.body)
    }

    /// The signature header, plus the id header when the id is not empty.
    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let mut headers = vec![MAC.sign(key, d.body)];
        if !d.id.is_empty() {
            headers.push(("X-Webhook-Id".to_string(), d.id.to_string()));
        }
        Ok(Signed::headers(headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;
    use crate::verify::MAX_SIGNATURES;

    // The official vector: the "valid" case of go-pagerduty's
    // webhookv3/webhookv3_test.go (secret, `defaultBody`, signature),
    // recomputed with Python's `hmac`.
    const SECRET: &str = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK";
    const BODY: &str = include_str!("testdata/pagerduty_body.json");
    const SIG: &str = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd";
    // That test's "mismatch" signature.
    const WRONG: &str = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5";

    fn case(sig: &str) -> Case {
        Case::new(
            &PagerDuty,
            vec![Key::new(SECRET)],
            &[("X-PagerDuty-Signature", sig), ("X-Webhook-Id", "wh_1")],
            BODY.trim_end().as_bytes(),
            1_700_000_000,
        )
    }

    #[test]
    fn vector_and_standard_failures() {
        let c = case(SIG);
        c.assert_standard(Key::new("other"));
        assert_eq!(case(WRONG).check(), Err(Failure::SignatureMismatch));
        let too_many = [WRONG; MAX_SIGNATURES + 1].join(",");
        c.assert_malformed(
            "x-pagerduty-signature",
            &["", "garbage", &SIG[3..], "v1=", "v1=00", &too_many],
        );
    }

    #[test]
    fn any_of_several_signatures_and_other_versions_skipped() {
        assert_eq!(
            case(&format!("{WRONG},{SIG}")).check().map(|v| v.key_index),
            Ok(0)
        );
        assert!(case(&format!("{WRONG}, {SIG}")).check().is_ok());
        assert!(case(&format!("v2=abc,{SIG}")).check().is_ok());
        assert_eq!(
            case("v2=abc").check(),
            Err(Failure::MalformedSignature),
            "nothing usable"
        );
    }

    #[test]
    fn sign_reproduces_the_vector() {
        let h = PagerDuty.sign(&Key::new(SECRET), BODY.trim_end().as_bytes(), 0, "wh_1");
        assert_eq!(h[0], ("X-PagerDuty-Signature".to_string(), SIG.to_string()));
        assert_eq!(h[1], ("X-Webhook-Id".to_string(), "wh_1".to_string()));
    }
}
