//! HubSpot (signature v3): `X-HubSpot-Signature-v3: <base64>` and
//! `X-HubSpot-Request-Timestamp: <Unix milliseconds>`, HMAC-SHA256 with the
//! app's client secret (UTF-8 bytes) over `<METHOD><URL><raw body><timestamp
//! text>`, no separators. The URL is the full public URL (scheme, host,
//! path, query). The timestamp is signed, so freshness is enforced (HubSpot
//! says to reject requests older than 5 minutes). No delivery id header
//! (each event in the body array has `eventId`). The v1/v2 signatures
//! (`X-HubSpot-Signature`, plain SHA-256, no timestamp) are not read.
//!
//! HubSpot's page says to decode some percent-escapes in the URL before
//! signing (`%3A` `%2F` `%3F` `%40` `%21` `%24` `%27` `%28` `%29` `%2A`
//! `%2C` `%3B`); its SDKs decode nothing. Both forms are tried, so a URL
//! with such escapes verifies whichever HubSpot signed.
//!
//! Sources: <https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests>,
//! <https://developers.hubspot.com/changelog/introducing-version-3-of-webhook-signatures>;
//! the official SDKs, hubspot-api-python `hubspot/utils/signature.py` (and
//! its test, the vector below) and hubspot-api-nodejs `src/utils/signature.ts`.

use base64::Engine as _;
use http::HeaderMap;

use super::{
    ct_position, decode_base64, header_str, require_secret, Algorithm, Delivery, Failure, Key,
    KeyKind, Scheme, SignatureHeader, Signed, SignedRequest,
};

/// The `hubspot` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct HubSpot;

const HEADER: &str = "x-hubspot-signature-v3";
const TIMESTAMP_HEADER: &str = "x-hubspot-request-timestamp";

/// HubSpot's documented decoding of the URL before signing.
fn decode_listed(url: &str) -> String {
    const TABLE: &[(&str, &str)] = &[
        ("%3A", ":"),
        ("%2F", "/"),
        ("%3F", "?"),
        ("%40", "@"),
        ("%21", "!"),
        ("%24", "$"),
        ("%27", "'"),
        ("%28", "("),
        ("%29", ")"),
        ("%2A", "*"),
        ("%2C", ","),
        ("%3B", ";"),
    ];
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        match TABLE
            .iter()
            .find(|(e, _)| tail.len() >= 3 && tail[..3].eq_ignore_ascii_case(e))
        {
            Some((_, c)) => {
                out.push_str(c);
                rest = &tail[3..];
            }
            None => {
                out.push('%');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn mac_v3(key: &Key, method: &str, url: &str, body: &[u8], ts: &str) -> Vec<u8> {
    Algorithm::Sha256.mac(
        key,
        &[method.as_bytes(), url.as_bytes(), body, ts.as_bytes()],
    )
}

impl Scheme for HubSpot {
    fn name(&self) -> &'static str {
        "hubspot"
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

    fn needs_public_url(&self) -> bool {
        true
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        let value = header_str(headers, HEADER)?.ok_or(Failure::MissingSignature)?;
        let ts = header_str(headers, TIMESTAMP_HEADER)?
            .ok_or(Failure::MissingSignature)?
            .trim();
        if ts.is_empty() || ts.len() > 15 || !ts.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Failure::MalformedSignature);
        }
        let ms: i64 = ts.parse().map_err(|_| Failure::MalformedSignature)?;
        Ok(SignatureHeader {
            timestamp: Some(ms / 1000),
            timestamp_text: Some(ts.to_string()),
            signatures: vec![decode_base64(value.trim(), Algorithm::Sha256.output_len())?],
            ..Default::default()
        })
    }

    fn matches(
        &self,
        key: &Key,
        header: &SignatureHeader,
        req: &SignedRequest<'_>,
    ) -> Option<usize> {
        if key.kind() != KeyKind::Secret {
            return None;
        }
        let url = req.url?;
        let ts = header.timestamp_text.as_deref()?;
        let found = ct_position(
            &mac_v3(key, req.method, url, req.body, ts),
            &header.signatures,
        );
        let decoded = decode_listed(url);
        if found.is_some() || decoded == url {
            return found;
        }
        ct_position(
            &mac_v3(key, req.method, &decoded, req.body, ts),
            &header.signatures,
        )
    }

    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let url = d.url.ok_or("hubspot signs the URL: give the public URL")?;
        let ts = d.timestamp.saturating_mul(1000).to_string();
        let sig = mac_v3(key, d.method, url, d.body, &ts);
        Ok(Signed::headers(vec![
            ("X-HubSpot-Request-Timestamp".to_string(), ts),
            (
                "X-HubSpot-Signature-v3".to_string(),
                base64::engine::general_purpose::STANDARD.encode(sig),
            ),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    // The official v3 vector of hubspot-api-python's
    // tests/spec/utils/test_signature.py, recomputed with Python's `hmac`.
    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const URL: &str = "https://www.example.com/webhook_uri";
    const BODY: &[u8] = b"{'example_field':'example_value'}";
    const TS: &str = "1693657560000";
    const SIG: &str = "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=";

    fn case() -> Case {
        Case::new(
            &HubSpot,
            vec![Key::new(SECRET)],
            &[(HEADER, SIG), (TIMESTAMP_HEADER, TS)],
            BODY,
            1_693_657_560,
        )
        .url(URL)
    }

    #[test]
    fn vector_and_standard_failures() {
        let c = case();
        assert_eq!(c.check().map(|v| v.timestamp), Ok(Some(1_693_657_560)));
        c.assert_standard(Key::new("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"));
        // The method is signed.
        let mut g = c.clone();
        g.method = "PUT";
        assert_eq!(g.check(), Err(Failure::SignatureMismatch));
        // So is the timestamp's text.
        assert_eq!(
            c.with_header(TIMESTAMP_HEADER, "1693657560001").check(),
            Err(Failure::SignatureMismatch)
        );
        assert_eq!(
            c.without_header(TIMESTAMP_HEADER).check(),
            Err(Failure::MissingSignature)
        );
        c.assert_malformed(HEADER, &["", &SIG[..43], "v3=abc"]);
        c.assert_malformed(TIMESTAMP_HEADER, &["", "abc", "-1", "1693657560000000000"]);
        let d = Delivery {
            method: "POST",
            url: Some(URL),
            body: BODY,
            timestamp: 1_693_657_560,
            id: "",
        };
        let s = HubSpot.sign_delivery(&Key::new(SECRET), &d).unwrap();
        assert_eq!(s.headers[1].1, SIG);
    }

    #[test]
    fn decoded_url_form_is_accepted_too() {
        let encoded = "https://www.example.com/webhook_uri?a=b%3Ac%40d";
        let decoded = "https://www.example.com/webhook_uri?a=b:c@d";
        assert_eq!(decode_listed(encoded), decoded);
        assert_eq!(decode_listed("%2f%20%"), "/%20%");
        let key = Key::new(SECRET);
        for signed_url in [encoded, decoded] {
            let sig = base64::engine::general_purpose::STANDARD
                .encode(mac_v3(&key, "POST", signed_url, BODY, TS));
            let c = case().with_header(HEADER, &sig).url(encoded);
            assert!(c.check().is_ok(), "{signed_url}");
        }
    }
}
