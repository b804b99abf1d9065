//! Sentry (integration platform): `Sentry-Hook-Signature: <hex>`, HMAC-SHA256
//! with the integration's client secret (UTF-8 bytes) over the raw JSON
//! body. `Sentry-Hook-Timestamp` is sent but not signed, so there is no
//! freshness window; `Request-ID` (a UUID) is the delivery id;
//! `Sentry-Hook-Resource` names the resource (`installation`, `issue`, …).
//!
//! Sources: <https://docs.sentry.io/integrations/integration-platform/webhooks/>
//! (the four headers, HMAC-SHA256 with the client secret) and Sentry's
//! example app <https://github.com/getsentry/integration-platform-example>
//! (`verify_sentry_signature`). That example hashes the body re-serialised
//! as compact JSON; Sentry sends compact JSON, so the raw body is the same
//! bytes, and hookgate never re-serialises (a body sent with spaces would
//! not verify here).

use http::HeaderMap;

use super::body_mac::BodyMac;
use super::{
    require_secret, Algorithm, Delivery, Encoding, Failure, Key, Scheme, SignatureHeader, Signed,
    SignedRequest,
};

/// The `sentry` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sentry;

const MAC: BodyMac = BodyMac {
    header: "sentry-hook-signature",
    header_display: "Sentry-Hook-Signature",
    prefix: "",
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha256,
    list: None,
};

const ID_HEADER: &str = "request-id";

impl Scheme for Sentry {
    fn name(&self) -> &'static str {
        "sentry"
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
            headers.push(("Request-ID".to_string(), d.id.to_string()));
        }
        Ok(Signed::headers(headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    // Sentry publishes no vector and no SDK verify function. Computed with
    // Python's `hmac` (independent of this code):
    // hmac.new(b"sentry_client_secret", BODY, hashlib.sha256).hexdigest()
    const SECRET: &str = "sentry_client_secret";
    const BODY: &[u8] =
        br#"{"action":"created","data":{"issue":{"id":"1"}},"installation":{"uuid":"a"}}"#;
    const SIG: &str = "f7757aa9df12a0a7fe359498638ed5e99af725f6e9d4ccd6ec062a3f9ca5def4";
    const RID: &str = "a1b2c3d4-0000-4000-8000-000000000001";

    #[test]
    fn vector_and_standard_failures() {
        let c = Case::new(
            &Sentry,
            vec![Key::new(SECRET)],
            &[
                ("Sentry-Hook-Signature", SIG),
                ("Request-ID", RID),
                ("Sentry-Hook-Timestamp", "1700000000"),
            ],
            BODY,
            1_700_000_000,
        );
        c.assert_standard(Key::new("other"));
        c.assert_malformed(
            "sentry-hook-signature",
            &["", &format!("sha256={SIG}"), &SIG[..62], "zz"],
        );
        // The timestamp header is not signed: changing it changes nothing.
        assert!(c.with_header("sentry-hook-timestamp", "1").check().is_ok());
        assert_eq!(
            Sentry.sign(&Key::new(SECRET), BODY, 0, RID),
            vec![
                ("Sentry-Hook-Signature".to_string(), SIG.to_string()),
                ("Request-ID".to_string(), RID.to_string()),
            ]
        );
    }
}
