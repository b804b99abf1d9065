//! The small grammar every scheme's headers share: bounded header text,
//! Unix-seconds timestamps, and strict hex and base64 signatures.

use http::HeaderMap;

use super::{Failure, MAX_SIGNATURE_HEADER_LEN};

/// The value of a header as text, if present and visible ASCII.
pub(crate) fn header_str<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<Option<&'a str>, Failure> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => {
            if v.len() > MAX_SIGNATURE_HEADER_LEN {
                return Err(Failure::MalformedSignature);
            }
            v.to_str()
                .map(Some)
                .map_err(|_| Failure::MalformedSignature)
        }
    }
}

/// Parses a Unix-seconds timestamp: ASCII digits only, no sign, no spaces.
pub(crate) fn parse_timestamp(s: &str) -> Result<i64, Failure> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Failure::MalformedSignature);
    }
    s.parse().map_err(|_| Failure::MalformedSignature)
}

/// Decodes a hex signature of exactly `len` bytes (either case).
pub(crate) fn decode_hex(s: &str, len: usize) -> Result<Vec<u8>, Failure> {
    if s.len() != len * 2 {
        return Err(Failure::MalformedSignature);
    }
    hex::decode(s).map_err(|_| Failure::MalformedSignature)
}

/// Decodes a standard-alphabet, padded base64 signature of exactly `len`
/// bytes. Non-canonical encodings (stray trailing bits) are refused.
pub(crate) fn decode_base64(s: &str, len: usize) -> Result<Vec<u8>, Failure> {
    use base64::Engine as _;
    if s.len() != len.div_ceil(3) * 4 {
        return Err(Failure::MalformedSignature);
    }
    let out = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| Failure::MalformedSignature)?;
    if out.len() != len {
        return Err(Failure::MalformedSignature);
    }
    Ok(out)
}
