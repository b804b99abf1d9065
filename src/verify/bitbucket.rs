//! Bitbucket Cloud: `X-Hub-Signature: sha256=<hex>`, HMAC-SHA256 with the
//! webhook's secret (UTF-8 bytes) over the raw body; sent only when a
//! secret is set on the webhook. No timestamp. `X-Request-UUID` is the
//! request id (also `X-Hook-UUID` for the webhook, `X-Event-Key` for the
//! event, `X-Attempt-Number`).
//!
//! Sources: <https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/>
//! (secret, header, HMAC-SHA256 hex),
//! <https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/>
//! (request headers), <https://bitbucket.org/blog/enhanced-webhook-security>.
//! Same header name as Intercom's SHA-1 signature: the configured scheme
//! decides, never the header.

use http::HeaderMap;

use super::body_mac::BodyMac;
use super::{
    require_secret, Algorithm, Delivery, Encoding, Failure, Key, Scheme, SignatureHeader, Signed,
    SignedRequest,
};

/// The `bitbucket` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bitbucket;

const MAC: BodyMac = BodyMac {
    header: "x-hub-signature",
    header_display: "X-Hub-Signature",
    prefix: "sha256=",
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha256,
    list: None,
};

const ID_HEADER: &str = "x-request-uuid";

impl Scheme for Bitbucket {
    fn name(&self) -> &'static str {
        "bitbucket"
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
            headers.push(("X-Request-UUID".to_string(), d.id.to_string()));
        }
        Ok(Signed::headers(headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    // Bitbucket publishes no vector and no SDK verify function. Computed with
    // Python's `hmac` (independent of this code):
    // hmac.new(b"bitbucket_secret", BODY, hashlib.sha256).hexdigest()
    const SECRET: &str = "bitbucket_secret";
    const BODY: &[u8] = br#"{"push":{"changes":[]},"repository":{"full_name":"team/repo"}}"#;
    const SIG: &str = "sha256=a48b6a73a9fd8705666ecafff78c33a50ec5ca25d43d79f40010d13c639fe880";

    #[test]
    fn vector_and_standard_failures() {
        let c = Case::new(
            &Bitbucket,
            vec![Key::new(SECRET)],
            &[("X-Hub-Signature", SIG), ("X-Request-UUID", "req-1")],
            BODY,
            1_700_000_000,
        );
        c.assert_standard(Key::new("other"));
        c.assert_malformed(
            "x-hub-signature",
            &[
                "",
                &SIG[7..],
                // Intercom's SHA-1 form under the same header name.
                "sha1=fbec98ddd75e9d6d7345ee09807cc23fe24bf2f8",
                &SIG[..69],
            ],
        );
        assert_eq!(Bitbucket.sign(&Key::new(SECRET), BODY, 0, "")[0].1, SIG);
    }
}
