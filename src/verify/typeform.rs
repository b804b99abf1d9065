//! Typeform: `Typeform-Signature: sha256=<base64>`, HMAC-SHA256 with the
//! webhook's `secret` (UTF-8 bytes) over the raw body, standard padded
//! base64. No timestamp; no delivery id header (the body has `event_id`).
//!
//! Source: <https://www.typeform.com/developers/webhooks/secure-your-webhooks/>
//! (header, `sha256=` prefix, base64 HMAC-SHA256 of the body).

use http::HeaderMap;

use super::body_mac::BodyMac;
use super::{
    require_secret, Algorithm, Delivery, Encoding, Failure, Key, Scheme, SignatureHeader, Signed,
    SignedRequest,
};

/// The `typeform` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Typeform;

const MAC: BodyMac = BodyMac {
    header: "typeform-signature",
    header_display: "Typeform-Signature",
    prefix: "sha256=",
    encoding: Encoding::Base64,
    algorithm: Algorithm::Sha256,
    list: None,
};

impl Scheme for Typeform {
    fn name(&self) -> &'static str {
        "typeform"
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

    // Typeform publishes no vector and no SDK verify function. Computed with
    // Python's `hmac` and `base64` (independent of this code):
    // base64.b64encode(hmac.new(b"typeform_secret", BODY, hashlib.sha256).digest())
    const SECRET: &str = "typeform_secret";
    const BODY: &[u8] = br#"{"event_id":"01HXYZ","event_type":"form_response"}"#;
    const SIG: &str = "sha256=D8p6FSFYugD/oKjZrcPEiACvOiPlmhAFmenyKBOTnDM=";

    #[test]
    fn vector_and_standard_failures() {
        let c = Case::new(
            &Typeform,
            vec![Key::new(SECRET)],
            &[("Typeform-Signature", SIG)],
            BODY,
            1_700_000_000,
        );
        c.assert_standard(Key::new("other"));
        c.assert_malformed(
            "typeform-signature",
            &[
                "",
                &SIG[7..],
                "sha256=D8p6FSFYugD/oKjZrcPEiACvOiPlmhAFmenyKBOTnDM",
                "sha256=D8p6FSFYugD_oKjZrcPEiACvOiPlmhAFmenyKBOTnDM=",
                "sha1=D8p6FSFYugD/oKjZrcPEiACvOiPlmhAFmenyKBOTnDM=",
            ],
        );
        assert_eq!(Typeform.sign(&Key::new(SECRET), BODY, 0, "")[0].1, SIG);
    }
}
