//! Zendesk: `X-Zendesk-Webhook-Signature: <base64>` and
//! `X-Zendesk-Webhook-Signature-Timestamp: <ISO 8601 UTC, e.g.
//! 2021-03-25T05:09:27Z>`, HMAC-SHA256 with the webhook's signing secret as
//! UTF-8 text (it looks like base64 but is not decoded) over
//! `<timestamp text><raw body>`, no separator (a request without a body
//! signs the timestamp alone). The timestamp is signed, so freshness is
//! enforced. `X-Zendesk-Webhook-Invocation-Id` is the id.
//!
//! Sources: <https://developer.zendesk.com/documentation/webhooks/verifying/>
//! (headers, `base64(HMACSHA256(TIMESTAMP + BODY))`, the key as text) and
//! <https://developer.zendesk.com/documentation/webhooks/anatomy-of-a-webhook-request/>
//! (the invocation id). An older copy of the verifying page shows the body
//! before the timestamp; its example only verifies in that order, while the
//! current page and integrations use timestamp then body, as here. Test
//! deliveries from Zendesk's builder are signed with the static secret
//! `dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==`.

use base64::Engine as _;
use http::HeaderMap;

use super::{
    decode_base64, header_str, require_secret, Algorithm, Delivery, Failure, Key, Scheme,
    SignatureHeader, Signed, SignedRequest,
};

/// The `zendesk` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Zendesk;

const HEADER: &str = "x-zendesk-webhook-signature";
const TIMESTAMP_HEADER: &str = "x-zendesk-webhook-signature-timestamp";
const ID_HEADER: &str = "x-zendesk-webhook-invocation-id";

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` into Unix seconds.
pub(crate) fn parse_iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > days_in_month || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (inverse of
/// [`parse_iso8601`]).
fn format_iso8601(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // civil_from_days
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

impl Scheme for Zendesk {
    fn name(&self) -> &'static str {
        "zendesk"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![HEADER]
    }

    fn id_header(&self) -> Option<&str> {
        Some(ID_HEADER)
    }

    fn signs_timestamp(&self) -> bool {
        true
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        let value = header_str(headers, HEADER)?.ok_or(Failure::MissingSignature)?;
        let ts = header_str(headers, TIMESTAMP_HEADER)?.ok_or(Failure::MissingSignature)?;
        let ts = ts.trim();
        let seconds = parse_iso8601(ts).ok_or(Failure::MalformedSignature)?;
        Ok(SignatureHeader {
            timestamp: Some(seconds),
            timestamp_text: Some(ts.to_string()),
            signatures: vec![decode_base64(value.trim(), Algorithm::Sha256.output_len())?],
            ..Default::default()
        })
    }

    fn mac(&self, key: &Key, header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        let ts = header.timestamp_text.as_deref().unwrap_or_default();
        Algorithm::Sha256.mac(key, &[ts.as_bytes(), req.body])
    }

    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let ts = format_iso8601(d.timestamp);
        let sig = base64::engine::general_purpose::STANDARD
            .encode(Algorithm::Sha256.mac(key, &[ts.as_bytes(), d.body]));
        let mut headers = vec![
            ("X-Zendesk-Webhook-Signature-Timestamp".to_string(), ts),
            ("X-Zendesk-Webhook-Signature".to_string(), sig),
        ];
        if !d.id.is_empty() {
            headers.push((
                "X-Zendesk-Webhook-Invocation-Id".to_string(),
                d.id.to_string(),
            ));
        }
        Ok(Signed::headers(headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;
    use proptest::prelude::*;

    // Computed with Python's `hmac` and `base64` (independent of this code):
    // base64.b64encode(hmac.new(b"zendesk_secret",
    //     b"2021-03-25T05:09:27Z" + BODY, hashlib.sha256).digest())
    const SECRET: &str = "zendesk_secret";
    const TS: &str = "2021-03-25T05:09:27Z";
    const T: i64 = 1_616_648_967;
    const BODY: &[u8] = br#"{"type":"zen:event-type:ticket.created"}"#;
    const SIG: &str = "3A0e0525jUq+csUlkKqp6Ii68RCHFnIajUGZZKjMbT8=";

    fn case() -> Case {
        Case::new(
            &Zendesk,
            vec![Key::new(SECRET)],
            &[
                ("X-Zendesk-Webhook-Signature", SIG),
                ("X-Zendesk-Webhook-Signature-Timestamp", TS),
                ("X-Zendesk-Webhook-Invocation-Id", "inv_1"),
            ],
            BODY,
            T,
        )
    }

    #[test]
    fn vector_and_standard_failures() {
        let c = case();
        assert_eq!(c.check().map(|v| v.timestamp), Ok(Some(T)));
        c.assert_standard(Key::new("other"));
        assert_eq!(
            c.with_header(TIMESTAMP_HEADER, "2021-03-25T05:09:28Z")
                .check(),
            Err(Failure::SignatureMismatch)
        );
        assert_eq!(
            c.without_header(TIMESTAMP_HEADER).check(),
            Err(Failure::MissingSignature)
        );
        c.assert_malformed(HEADER, &["", "sha256=x", &SIG[..43]]);
        c.assert_malformed(
            TIMESTAMP_HEADER,
            &[
                "1616648967",
                "2021-03-25T05:09:27",
                "2021-03-25 05:09:27Z",
                "2021-13-25T05:09:27Z",
                "2021-02-29T05:09:27Z",
                "2021-03-25T05:09:27.000Z",
                "2021-03-25T05:09:27+00:00",
            ],
        );
        let signed = Zendesk.sign(&Key::new(SECRET), BODY, T, "inv_1");
        assert_eq!(signed[0].1, TS);
        assert_eq!(signed[1].1, SIG);
    }

    #[test]
    fn the_static_test_secret_is_used_as_text() {
        let k = Zendesk
            .derive_key("dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==")
            .unwrap();
        assert_eq!(
            k.as_bytes(),
            b"dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="
        );
    }

    #[test]
    fn iso8601_known_dates() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso8601("2000-02-29T23:59:59Z"), Some(951_868_799));
        assert_eq!(parse_iso8601(TS), Some(T));
        assert_eq!(parse_iso8601("1900-02-29T00:00:00Z"), None);
    }

    proptest! {
        #[test]
        fn iso8601_round_trips(t in 0i64..253_402_300_799) {
            prop_assert_eq!(parse_iso8601(&format_iso8601(t)), Some(t));
        }
    }
}
