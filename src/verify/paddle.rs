//! Paddle Billing: `Paddle-Signature: ts=<Unix seconds>;h1=<hex>[;h1=<hex>…]`,
//! HMAC-SHA256 with the notification destination's secret key (UTF-8
//! bytes) over `<ts>:<raw body>`. Several `h1` values arrive while a secret
//! rotates (any may match); other keys are skipped. The timestamp is
//! signed (Paddle's SDKs allow only 5 seconds; configure `tolerance` to
//! taste). No delivery id header (the body has `event_id`).
//!
//! Sources: <https://developer.paddle.com/webhooks/about/signature-verification>;
//! the official SDKs, paddle-node-sdk
//! `src/notifications/helpers/webhooks-validator.ts` and paddle-python-sdk
//! `paddle_billing/Notifications/PaddleSignature.py`.

use http::HeaderMap;

use super::{
    decode_hex, header_str, parse_timestamp, require_secret, Algorithm, Delivery, Failure, Key,
    Scheme, SignatureHeader, Signed, SignedRequest, MAX_SIGNATURES,
};

/// The `paddle` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Paddle;

const HEADER: &str = "paddle-signature";

fn mac_ts_body(key: &Key, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let t = timestamp.to_string();
    Algorithm::Sha256.mac(key, &[t.as_bytes(), b":", body])
}

impl Scheme for Paddle {
    fn name(&self) -> &'static str {
        "paddle"
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
        let value = header_str(headers, HEADER)?.ok_or(Failure::MissingSignature)?;
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for item in value.split(';') {
            let (k, v) = item
                .trim()
                .split_once('=')
                .ok_or(Failure::MalformedSignature)?;
            match k {
                "ts" if timestamp.is_none() => timestamp = Some(parse_timestamp(v)?),
                "ts" => return Err(Failure::MalformedSignature),
                "h1" if signatures.len() == MAX_SIGNATURES => {
                    return Err(Failure::MalformedSignature)
                }
                "h1" => signatures.push(decode_hex(v, Algorithm::Sha256.output_len())?),
                _ => {}
            }
        }
        if timestamp.is_none() || signatures.is_empty() {
            return Err(Failure::MalformedSignature);
        }
        Ok(SignatureHeader {
            timestamp,
            signatures,
            ..Default::default()
        })
    }

    fn mac(&self, key: &Key, header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        mac_ts_body(key, header.timestamp.unwrap_or_default(), req.body)
    }

    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let sig = hex::encode(mac_ts_body(key, d.timestamp, d.body));
        Ok(Signed::headers(vec![(
            "Paddle-Signature".to_string(),
            format!("ts={};h1={sig}", d.timestamp),
        )]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;
    use crate::verify::MAX_SIGNATURES;

    // The official vectors of paddle-node-sdk's webhooks-validator test
    // (secret `VALID_SECRET`), recomputed with Python's `hmac`.
    const SECRET: &str = "VALID_SECRET";
    const T: i64 = 1_698_796_800;
    const BODY: &[u8] = br#"{"data": ["1", "2"]}"#;
    const SIG: &str =
        "ts=1698796800;h1=a300428748dce5c70e4da19bffd60769591ea969c99dea3105d0ec9612cf43f9";
    const BODY2: &[u8] = br#"{"data": "value"}"#;
    const H1_2: &str = "28981e941fae76e53db32f3d2a83cb69db41476595e84e1970a1b5d98f62b261";

    fn case(sig: &str, body: &[u8]) -> Case {
        Case::new(
            &Paddle,
            vec![Key::new(SECRET)],
            &[("Paddle-Signature", sig)],
            body,
            T,
        )
    }

    #[test]
    fn vectors_and_standard_failures() {
        let c = case(SIG, BODY);
        c.assert_standard(Key::new("other"));
        assert!(case(&format!("ts={T};h1={H1_2}"), BODY2).check().is_ok());
        // The SDK test's negative: the same data, spaced differently.
        assert_eq!(
            case(SIG, br#"{ "data": [ "1", "2" ]}"#).check(),
            Err(Failure::SignatureMismatch)
        );
        assert_eq!(
            case(&SIG.replace("1698796800", "1698796801"), BODY).check(),
            Err(Failure::SignatureMismatch)
        );
        let too_many = format!("ts={T}{}", format!(";h1={H1_2}").repeat(MAX_SIGNATURES + 1));
        c.assert_malformed(
            "paddle-signature",
            &[
                "",
                "garbage",
                &SIG[..13],
                "h1=a300428748dce5c70e4da19bffd60769591ea969c99dea3105d0ec9612cf43f9",
                &format!("ts=abc;h1={H1_2}"),
                &format!("ts={T};ts={T};h1={H1_2}"),
                &format!("ts={T};h1=zz"),
                &too_many,
            ],
        );
        assert_eq!(Paddle.sign(&Key::new(SECRET), BODY, T, "")[0].1, SIG);
    }

    #[test]
    fn any_h1_may_match_and_unknown_keys_are_skipped() {
        assert!(case(&format!("ts={T};h1={H1_2};h1={}", &SIG[17..]), BODY)
            .check()
            .is_ok());
        assert!(case(&format!("{SIG};h2=whatever"), BODY).check().is_ok());
    }
}
