//! Calendly: `Calendly-Webhook-Signature: t=<Unix seconds>,v1=<hex>`,
//! HMAC-SHA256 with the webhook signing key (UTF-8 bytes) over
//! `<t>.<raw body>`: Stripe's grammar and signed bytes under another header.
//! The timestamp is signed, so freshness is enforced (Calendly's guidance is
//! a few minutes). No delivery id header.
//!
//! Sources: <https://developer.calendly.com/api-docs/overview/webhooks/webhook-signatures>
//! (signing key, header) and the integrations that verify it (Hookdeck's
//! Calendly guide, <https://www.skills.sh/hookdeck/webhook-skills/calendly-webhooks>,
//! for the `t.`-prefixed signed bytes). Calendly publishes no vector and no
//! SDK.

use http::HeaderMap;

use super::fynapse::{mac_t_body, parse_t_v1, sign_t_v1};
use super::{
    header_str, require_secret, Delivery, Failure, Key, Scheme, SignatureHeader, Signed,
    SignedRequest,
};

/// The `calendly` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Calendly;

const HEADER: &str = "calendly-webhook-signature";

impl Scheme for Calendly {
    fn name(&self) -> &'static str {
        "calendly"
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
        parse_t_v1(header_str(headers, HEADER)?.ok_or(Failure::MissingSignature)?)
    }

    fn mac(&self, key: &Key, header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        mac_t_body(key, header, req.body)
    }

    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        Ok(Signed::headers(vec![(
            "Calendly-Webhook-Signature".to_string(),
            sign_t_v1(key, d.body, d.timestamp),
        )]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    // Computed with Python's `hmac` (independent of this code):
    // hmac.new(b"calendly_signing_key", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    const SECRET: &str = "calendly_signing_key";
    const T: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"event":"invitee.created"}"#;
    const SIG: &str =
        "t=1700000000,v1=7c7e325be658164dc380d838840ca9f061137cfceeeb8eb8554524cb38913971";

    #[test]
    fn vector_and_standard_failures() {
        let c = Case::new(
            &Calendly,
            vec![Key::new(SECRET)],
            &[("Calendly-Webhook-Signature", SIG)],
            BODY,
            T,
        );
        c.assert_standard(Key::new("other"));
        assert_eq!(
            c.with_header(HEADER, &SIG.replace("t=1700000000", "t=1700000001"))
                .check(),
            Err(Failure::SignatureMismatch)
        );
        c.assert_malformed(
            HEADER,
            &["", "garbage", &SIG[..13], &SIG[13..], "t=x,v1=00"],
        );
        assert_eq!(Calendly.sign(&Key::new(SECRET), BODY, T, "")[0].1, SIG);
    }
}
