//! Intercom: `X-Hub-Signature: sha1=<hex>`, HMAC-SHA1 over the raw JSON body
//! with the app's client secret (UTF-8 bytes). No timestamp; the delivery id
//! (`id`, `notif_…`) is in the body, not in a header.
//!
//! Source: <https://developers.intercom.com/intercom-api-reference/v1.0/reference/signed-notifications>
//! (header, `sha1=` prefix, HMAC-SHA1 of the body). Which secret (app
//! client secret today, per-subscription `hub_secret` in API v1.0) depends
//! on how the webhook was created; both are used as given.

use http::HeaderMap;

use super::body_mac::BodyMac;
use super::{
    require_secret, Algorithm, Delivery, Encoding, Failure, Key, Scheme, SignatureHeader, Signed,
    SignedRequest,
};

/// The `intercom` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Intercom;

const MAC: BodyMac = BodyMac {
    header: "x-hub-signature",
    header_display: "X-Hub-Signature",
    prefix: "sha1=",
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha1,
    list: None,
};

impl Scheme for Intercom {
    fn name(&self) -> &'static str {
        "intercom"
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

    // Intercom's page shows a signature without its secret, so no vector.
    // Computed with Python's `hmac` (independent of this code):
    // hmac.new(b"intercom_client_secret", BODY, hashlib.sha1).hexdigest()
    const SECRET: &str = "intercom_client_secret";
    const BODY: &[u8] = br#"{"type":"notification_event","id":"notif_1","topic":"ping"}"#;
    const SIG: &str = "sha1=fbec98ddd75e9d6d7345ee09807cc23fe24bf2f8";

    #[test]
    fn vector_and_standard_failures() {
        let c = Case::new(
            &Intercom,
            vec![Key::new(SECRET)],
            &[("X-Hub-Signature", SIG)],
            BODY,
            1_700_000_000,
        );
        c.assert_standard(Key::new("other"));
        c.assert_malformed(
            "x-hub-signature",
            &[
                "",
                &SIG[5..],
                "sha256=fbec98ddd75e9d6d7345ee09807cc23fe24bf2f8",
                "sha1=fbec98ddd75e9d6d7345ee09807cc23fe24bf2",
                "sha1=zzec98ddd75e9d6d7345ee09807cc23fe24bf2f8",
            ],
        );
        assert_eq!(Intercom.sign(&Key::new(SECRET), BODY, 0, "")[0].1, SIG);
    }
}
