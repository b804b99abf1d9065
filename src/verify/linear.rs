//! Linear: `Linear-Signature: <hex>`, HMAC-SHA256 with the webhook's signing
//! secret (UTF-8 bytes) over the raw body. The timestamp is inside the
//! signed body, `webhookTimestamp` (Unix milliseconds), so freshness is
//! enforced on it. A `linear-timestamp` header may also be sent, but it is
//! not signed: a captured body replayed with a fresh header would pass a
//! check on it, so it is never read. `Linear-Delivery` is the delivery id.
//!
//! Sources: <https://developers.linear.app/docs/graphql/webhooks> (signature,
//! `webhookTimestamp`, retries); the official SDK `@linear/sdk`
//! (`LinearWebhookClient.verify`, which trusts only the body's
//! `webhookTimestamp` and allows one minute); `Linear-Delivery` as described
//! by integrations (not read in Linear's own pages).

use http::HeaderMap;

use super::body_mac::BodyMac;
use super::{
    require_secret, Algorithm, Delivery, Encoding, Failure, Key, Scheme, SignatureHeader, Signed,
    SignedRequest,
};

/// The `linear` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Linear;

const MAC: BodyMac = BodyMac {
    header: "linear-signature",
    header_display: "Linear-Signature",
    prefix: "",
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha256,
    list: None,
};

const ID_HEADER: &str = "linear-delivery";
const TS_FIELD: &str = "webhookTimestamp";

impl Scheme for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![MAC.header]
    }

    fn id_header(&self) -> Option<&str> {
        Some(ID_HEADER)
    }

    fn signs_timestamp(&self) -> bool {
        true
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        MAC.parse(headers)
    }

    /// Reads `webhookTimestamp` (milliseconds) from the JSON body, if it is
    /// there; it is only used once the body's signature verified.
    fn parse_body(
        &self,
        mut header: SignatureHeader,
        req: &SignedRequest<'_>,
    ) -> Result<SignatureHeader, Failure> {
        header.timestamp = serde_json::from_slice::<serde_json::Value>(req.body)
            .ok()
            .and_then(|doc| doc.get(TS_FIELD)?.as_i64())
            .filter(|ms| *ms >= 0)
            .map(|ms| ms / 1000);
        Ok(header)
    }

    /// A body without a usable `webhookTimestamp` is never authentic: Linear
    /// always signs one, and without it there is no freshness to check.
    fn matches(
        &self,
        key: &Key,
        header: &SignatureHeader,
        req: &SignedRequest<'_>,
    ) -> Option<usize> {
        header.timestamp?;
        if key.kind() != super::KeyKind::Secret {
            return None;
        }
        super::ct_position(&MAC.mac(key, req.body), &header.signatures)
    }

    fn mac(&self, key: &Key, _header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        MAC.mac(key, req.body)
    }

    /// Signs the body as given when it has a `webhookTimestamp`; otherwise
    /// adds `"webhookTimestamp":<timestamp × 1000>` at the start of the JSON
    /// object and signs (and returns) that body.
    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let doc: serde_json::Value = serde_json::from_slice(d.body)
            .map_err(|_| "a Linear body is a JSON object".to_string())?;
        let obj = doc.as_object().ok_or("a Linear body is a JSON object")?;
        let body = if obj.contains_key(TS_FIELD) {
            None
        } else {
            Some(insert_first_field(
                d.body,
                &format!("\"{TS_FIELD}\":{}", d.timestamp.saturating_mul(1000)),
            ))
        };
        let signed_body = body.as_deref().unwrap_or(d.body);
        let mut headers = vec![MAC.sign(key, signed_body)];
        if !d.id.is_empty() {
            headers.push(("Linear-Delivery".to_string(), d.id.to_string()));
        }
        Ok(Signed {
            headers,
            body,
            url: None,
        })
    }
}

/// Puts `field` (`"name":value`) first in the JSON object `body`, keeping
/// the rest of its bytes. `body` is known to be a JSON object.
pub(crate) fn insert_first_field(body: &[u8], field: &str) -> Vec<u8> {
    let Some(open) = body.iter().position(|b| *b == b'{') else {
        return body.to_vec();
    };
    let rest = &body[open + 1..];
    let empty = rest
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'}');
    let mut out = body[..=open].to_vec();
    out.extend_from_slice(field.as_bytes());
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    // An SDK vector: computed with Python's `hmac`, then checked with the
    // official SDK, npm `@linear/sdk` 98.0.0:
    //   import { LinearWebhookClient } from "@linear/sdk/webhooks";
    //   Date.now = () => 1700000000123 + 1000;
    //   new LinearWebhookClient("linear_secret").verify(Buffer.from(BODY), SIG)  // true
    // (and `false`/throws for the body with one more byte).
    const SECRET: &str = "linear_secret";
    const BODY: &[u8] = br#"{"action":"create","type":"Issue","data":{"id":"i1"},"webhookTimestamp":1700000000123}"#;
    const SIG: &str = "69890897f855843ca4c4293748802e660da3e5ad7aa21f5f8a1cc459151977c5";
    const T: i64 = 1_700_000_000;

    fn case() -> Case {
        Case::new(
            &Linear,
            vec![Key::new(SECRET)],
            &[("Linear-Signature", SIG), ("Linear-Delivery", "d-1")],
            BODY,
            T,
        )
    }

    #[test]
    fn vector_and_standard_failures() {
        let c = case();
        assert_eq!(c.check().map(|v| v.timestamp), Ok(Some(T)));
        c.assert_standard(Key::new("other"));
        c.assert_malformed("linear-signature", &["", "sha256=00", &SIG[..62], "zz"]);
        // The unsigned header is never read.
        let h = c.with_header("linear-timestamp", "1");
        assert!(h.check().is_ok());
    }

    #[test]
    fn body_timestamp_is_required() {
        // Correctly signed bodies without a usable timestamp are refused.
        let key = Key::new(SECRET);
        for body in [
            &br#"{"action":"create"}"#[..],
            b"not json",
            br#"{"webhookTimestamp":"soon"}"#,
        ] {
            let mut c = case();
            c.body = body.to_vec();
            c = c.with_header(
                "linear-signature",
                &hex::encode(Algorithm::Sha256.mac(&key, &[body])),
            );
            assert_eq!(c.check(), Err(Failure::SignatureMismatch), "{body:?}");
        }
    }

    #[test]
    fn sign_adds_the_timestamp_when_missing() {
        let key = Key::new(SECRET);
        let d = |body| Delivery {
            method: "POST",
            url: None,
            body,
            timestamp: T,
            id: "",
        };
        let s = Linear.sign_delivery(&key, &d(BODY)).unwrap();
        assert_eq!((s.headers[0].1.as_str(), s.body), (SIG, None));
        let s = Linear.sign_delivery(&key, &d(br#"{"a":1}"#)).unwrap();
        assert_eq!(
            s.body.as_deref(),
            Some(&br#"{"webhookTimestamp":1700000000000,"a":1}"#[..])
        );
        let s = Linear.sign_delivery(&key, &d(b" { } ")).unwrap();
        assert_eq!(
            s.body.as_deref(),
            Some(&br#" {"webhookTimestamp":1700000000000 } "#[..])
        );
        assert!(Linear.sign_delivery(&key, &d(b"[1]")).is_err());
    }
}
