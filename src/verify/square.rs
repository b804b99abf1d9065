//! Square: `x-square-hmacsha256-signature: <base64>`, HMAC-SHA256 with the
//! webhook subscription's signature key (UTF-8 bytes) over the notification
//! URL followed by the raw body, no separator. The URL is the one configured
//! on the subscription, byte for byte (`verify.public_url`, plus the query
//! as received). No timestamp; no delivery id header (the body has
//! `event_id`). The legacy SHA-1 `x-square-signature` is not read.
//!
//! Sources: <https://developer.squareup.com/docs/webhooks/step3validate>;
//! the official SDK, square-nodejs-sdk `WebhooksHelper.verifySignature` and
//! its tests (the vectors below).

use base64::Engine as _;
use http::HeaderMap;

use super::{
    decode_base64, header_str, require_secret, Algorithm, Delivery, Failure, Key, Scheme,
    SignatureHeader, Signed, SignedRequest,
};

/// The `square` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Square;

const HEADER: &str = "x-square-hmacsha256-signature";

impl Scheme for Square {
    fn name(&self) -> &'static str {
        "square"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![HEADER]
    }

    fn id_header(&self) -> Option<&str> {
        None
    }

    fn signs_timestamp(&self) -> bool {
        false
    }

    fn needs_public_url(&self) -> bool {
        true
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        let value = header_str(headers, HEADER)?.ok_or(Failure::MissingSignature)?;
        Ok(SignatureHeader {
            signatures: vec![decode_base64(value.trim(), Algorithm::Sha256.output_len())?],
            ..Default::default()
        })
    }

    /// Empty (matches nothing) without a public URL.
    fn mac(&self, key: &Key, _header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        match req.url {
            Some(url) => Algorithm::Sha256.mac(key, &[url.as_bytes(), req.body]),
            None => Vec::new(),
        }
    }

    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let url = d.url.ok_or("square signs the URL: give the public URL")?;
        let sig = Algorithm::Sha256.mac(key, &[url.as_bytes(), d.body]);
        Ok(Signed::headers(vec![(
            "x-square-hmacsha256-signature".to_string(),
            base64::engine::general_purpose::STANDARD.encode(sig),
        )]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    // The official vectors of square-nodejs-sdk's webhooks tests,
    // recomputed with Python's `hmac` and `base64`.
    const KEY: &str = "Ibxx_5AKakO-3qeNVR61Dw";
    const URL: &str = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9";
    const BODY: &[u8] = br#"{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}"#;
    const SIG: &str = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=";

    #[test]
    fn vectors_and_standard_failures() {
        let c = Case::new(
            &Square,
            vec![Key::new(KEY)],
            &[(HEADER, SIG)],
            BODY,
            1_700_000_000,
        )
        .url(URL);
        c.assert_standard(Key::new("signature-key"));
        c.assert_malformed(HEADER, &["", &SIG[..43], "sha256=abc"]);
        // A trailing slash is another URL.
        let mut s = c.clone();
        s.url = Some(format!("{URL}/"));
        assert_eq!(s.check(), Err(Failure::SignatureMismatch));
        let c2 = Case::new(
            &Square,
            vec![Key::new("signature-key")],
            &[(HEADER, "W3FlCNk5IA3ZQ2LHTWoajvzfaDu/OwY2tNHIHC3IUOA=")],
            br#"{"data":{"type":"webhooks","id":"fake_id"}}"#,
            1_700_000_000,
        )
        .url("https://webhook.site/webhooks");
        assert!(c2.check().is_ok());
        let d = Delivery {
            method: "POST",
            url: Some(URL),
            body: BODY,
            timestamp: 0,
            id: "",
        };
        assert_eq!(
            Square.sign_delivery(&Key::new(KEY), &d).unwrap().headers[0].1,
            SIG
        );
    }
}
