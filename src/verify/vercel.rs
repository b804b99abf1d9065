//! Vercel: `x-vercel-signature: <hex>`, HMAC-SHA1 over the raw body with the
//! webhook's secret (shown once when the webhook is created) or, for an
//! integration's webhooks, the integration's client secret, as UTF-8
//! bytes. No timestamp; the event id (`id`) is in the body.
//!
//! Sources: Vercel's webhooks page <https://vercel.com/docs/observability/webhooks>
//! and the integrations that verify it (Trigger.dev's Vercel provider,
//! <https://trigger.dev/docs/webhooks/providers/vercel>): header, HMAC-SHA1
//! hex of the raw body, which secret. Not checked against a Vercel vector:
//! Vercel publishes none.

use http::HeaderMap;

use super::body_mac::BodyMac;
use super::{
    require_secret, Algorithm, Delivery, Encoding, Failure, Key, Scheme, SignatureHeader, Signed,
    SignedRequest,
};

/// The `vercel` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Vercel;

const MAC: BodyMac = BodyMac {
    header: "x-vercel-signature",
    header_display: "x-vercel-signature",
    prefix: "",
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha1,
    list: None,
};

impl Scheme for Vercel {
    fn name(&self) -> &'static str {
        "vercel"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![MAC.header]
    }

    fn id_header(&self) -> Option<&str> {
        None
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

    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        Ok(Signed::headers(vec![MAC.sign(key, d.body)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    // Vercel publishes no vector. Computed with Python's `hmac`
    // (independent of this code):
    // hmac.new(b"vercel_secret", BODY, hashlib.sha1).hexdigest()
    const SECRET: &str = "vercel_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"deployment.created"}"#;
    const SIG: &str = "507ece7ec831710c18e18adfcb8bbc1aed96db76";

    #[test]
    fn vector_and_standard_failures() {
        let c = Case::new(
            &Vercel,
            vec![Key::new(SECRET)],
            &[("x-vercel-signature", SIG)],
            BODY,
            1_700_000_000,
        );
        c.assert_standard(Key::new("other"));
        c.assert_malformed(
            "x-vercel-signature",
            &[
                "",
                &format!("sha1={SIG}"),
                &SIG[..38],
                &format!("{SIG}00"),
                "zz",
            ],
        );
        assert_eq!(Vercel.sign(&Key::new(SECRET), BODY, 0, "")[0].1, SIG);
    }
}
