//! Signature verification: pure functions from (headers, body, keys, now) to a
//! [`Verdict`].
//!
//! This module owns every fact about how senders sign their deliveries. It
//! knows nothing of Pingora, sockets or the dedupe cache: the gateway hands it
//! the request headers and the whole raw body, and gets back either the
//! authenticated facts (signed timestamp, delivery id) or a [`Failure`]
//! (which `hookgate::Reason` turns into the label the gateway answers with).
//!
//! A scheme is one file implementing [`Scheme`]. Its job is narrow: read its
//! header(s) into a [`SignatureHeader`], say which bytes it signs, and (for
//! the CLI and tests) produce the headers a sender would. The loop over keys
//! and candidate signatures, the constant-time comparison and the freshness
//! window live here, once, for every scheme.

mod fynapse;
mod generic;
mod github;
mod mac;
mod shopify;
mod slack;
mod standard_webhooks;
mod stripe;

pub use fynapse::Fynapse;
pub use generic::{Encoding, GenericHmac, GenericOptions};
pub use github::GitHub;
pub use mac::Algorithm;
pub use shopify::Shopify;
pub use slack::Slack;
pub use standard_webhooks::StandardWebhooks;
pub use stripe::Stripe;

use std::fmt;
use std::time::Duration;

use http::HeaderMap;
use subtle::ConstantTimeEq;

/// At most this many candidate signatures are considered in one header.
///
/// Rotation needs two or three; the cap bounds the work a forged header can
/// ask for (keys × candidates HMAC comparisons).
pub const MAX_SIGNATURES: usize = 8;

/// At most this many bytes of a signature header are parsed. A longer header
/// is malformed: no real sender needs more, and it bounds parsing work.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 4096;

/// An HMAC key derived from a configured secret.
///
/// `Debug` never prints the bytes, so a key can sit in structs that are
/// logged without leaking.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl Key {
    /// Wraps raw key bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Key(bytes.into())
    }

    /// The raw key bytes, for the HMAC.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(<{} bytes redacted>)", self.0.len())
    }
}

/// Why a request failed verification. Each maps to one rejection reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The scheme's signature header (or a header it needs, such as the
    /// timestamp) is absent.
    MissingSignature,
    /// A header is present but does not follow the scheme's grammar.
    MalformedSignature,
    /// No candidate signature matches any key.
    SignatureMismatch,
    /// The signature holds but its signed timestamp is outside the window.
    StaleTimestamp,
}

impl Failure {
    /// What went wrong, in words. The stable label the gateway answers
    /// with is `hookgate::Reason::from(failure).label()`.
    pub fn describe(self) -> &'static str {
        match self {
            Failure::MissingSignature => "the signature header is absent",
            Failure::MalformedSignature => "the signature header does not parse",
            Failure::SignatureMismatch => "no signature matches any key",
            Failure::StaleTimestamp => "the signed timestamp is outside the tolerance",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// What a scheme read from the request headers, before any HMAC is computed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The timestamp the sender signed, in Unix seconds, if the scheme signs one.
    pub timestamp: Option<i64>,
    /// The delivery id the scheme carries (and may sign), if any.
    pub id: Option<String>,
    /// Candidate signatures, already decoded from hex or base64. At least one,
    /// at most [`MAX_SIGNATURES`].
    pub signatures: Vec<Vec<u8>>,
}

/// The facts a valid signature establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The signed timestamp (Unix seconds), for schemes that sign one.
    pub timestamp: Option<i64>,
    /// The scheme's delivery id, when the request carries one.
    pub id: Option<String>,
}

/// The outcome of [`verify`].
pub type Verdict = Result<Verified, Failure>;

/// A webhook signature scheme: how one sender signs its deliveries.
///
/// Implementations are pure and cheap to share (`Send + Sync`); the gateway
/// holds one per route.
pub trait Scheme: Send + Sync + fmt::Debug {
    /// The scheme's name as written in the config (`fynapse`, `stripe`, …).
    fn name(&self) -> &'static str;

    /// The headers that carry the signature, lower-case;
    /// `forward.strip_signature` removes these before forwarding.
    ///
    /// Borrowed from `self` (not `'static`) so that a configured scheme such
    /// as [`GenericHmac`] can name its own headers.
    fn signature_headers(&self) -> Vec<&str>;

    /// The header carrying the sender's own delivery id, lower-case, used by
    /// `idempotency.key: scheme`. `None` when the scheme has none.
    fn id_header(&self) -> Option<&str>;

    /// Whether the scheme signs a timestamp (and so can enforce freshness).
    fn signs_timestamp(&self) -> bool;

    /// Turns a configured secret into the HMAC key. The default is the
    /// secret's raw UTF-8 bytes.
    fn derive_key(&self, secret: &str) -> Result<Key, String> {
        Ok(Key::new(secret.as_bytes()))
    }

    /// Reads the signature header(s). Cheap and body-free, so the gateway can
    /// reject a missing or malformed signature before reading the body.
    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure>;

    /// Computes the MAC this scheme expects for `body` under `key`.
    fn mac(&self, key: &Key, header: &SignatureHeader, body: &[u8]) -> Vec<u8>;

    /// The headers a sender would attach to `body` (for `hookgate sign`,
    /// `send` and tests). `timestamp` and `id` are used when the scheme
    /// signs or carries them.
    fn sign(&self, key: &Key, body: &[u8], timestamp: i64, id: &str) -> Vec<(String, String)>;
}

/// Verifies a request: signature first, then freshness.
///
/// Every key is tried against every candidate signature (rotation on either
/// side); each comparison runs in constant time. Freshness is checked only
/// once the timestamp is known to be authentic, and in both directions:
/// `|now - timestamp| <= tolerance`. `tolerance: None` skips it.
pub fn verify(
    scheme: &dyn Scheme,
    headers: &HeaderMap,
    body: &[u8],
    keys: &[Key],
    now: i64,
    tolerance: Option<Duration>,
) -> Verdict {
    let header = scheme.parse(headers)?;
    verify_parsed(scheme, &header, body, keys, now, tolerance)
}

/// [`verify`] for a header already parsed by [`Scheme::parse`].
pub fn verify_parsed(
    scheme: &dyn Scheme,
    header: &SignatureHeader,
    body: &[u8],
    keys: &[Key],
    now: i64,
    tolerance: Option<Duration>,
) -> Verdict {
    let mut matched = false;
    for key in keys {
        let expected = scheme.mac(key, header, body);
        for candidate in &header.signatures {
            // `ct_eq` on slices of different length is false, in constant time
            // for the length it is given.
            matched |= bool::from(expected.as_slice().ct_eq(candidate.as_slice()));
        }
        if matched {
            break;
        }
    }
    if !matched {
        return Err(Failure::SignatureMismatch);
    }
    if let (Some(tolerance), Some(ts)) = (tolerance, header.timestamp) {
        if !is_fresh(ts, now, tolerance) {
            return Err(Failure::StaleTimestamp);
        }
    }
    Ok(Verified {
        timestamp: header.timestamp,
        id: header.id.clone(),
    })
}

/// Now, in Unix seconds: the `now` that [`verify`] takes. A clock before
/// 1970 reads as 0, which no fresh timestamp matches.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Whether `timestamp` lies within `tolerance` of `now`, in either direction.
pub fn is_fresh(timestamp: i64, now: i64, tolerance: Duration) -> bool {
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    now.abs_diff(timestamp) <= tolerance.unsigned_abs()
}

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

/// The schemes this build can construct from their config name alone.
///
/// `hmac` ([`GenericHmac`]) is not listed: it needs [`GenericOptions`].
pub const SCHEME_NAMES: &[&str] = &[
    "fynapse",
    "stripe",
    "standard-webhooks",
    "github",
    "shopify",
    "slack",
];

/// Looks a built-in scheme up by its config name. `None` for unknown names
/// and for `hmac`, which is built with [`GenericHmac::new`].
pub fn scheme_by_name(name: &str) -> Option<Box<dyn Scheme>> {
    match name {
        "fynapse" => Some(Box::new(Fynapse)),
        "stripe" => Some(Box::new(Stripe)),
        "standard-webhooks" => Some(Box::new(StandardWebhooks)),
        "github" => Some(Box::new(GitHub)),
        "shopify" => Some(Box::new(Shopify)),
        "slack" => Some(Box::new(Slack)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_is_symmetric_and_inclusive() {
        let t = Duration::from_secs(300);
        assert!(is_fresh(1000, 1300, t));
        assert!(is_fresh(1300, 1000, t));
        assert!(!is_fresh(1000, 1301, t));
        assert!(!is_fresh(1301, 1000, t));
        assert!(is_fresh(i64::MIN, i64::MAX, Duration::MAX) || !is_fresh(i64::MIN, i64::MAX, t));
    }

    #[test]
    fn timestamps_are_plain_digits() {
        assert_eq!(parse_timestamp("1700000000"), Ok(1_700_000_000));
        for bad in ["", "-1", "+1", " 1", "1e9", "0x10", "9999999999999"] {
            assert_eq!(
                parse_timestamp(bad),
                Err(Failure::MalformedSignature),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn every_listed_name_builds_its_scheme() {
        for name in SCHEME_NAMES {
            let scheme = scheme_by_name(name).unwrap();
            assert_eq!(scheme.name(), *name);
            for h in scheme
                .signature_headers()
                .into_iter()
                .chain(scheme.id_header())
            {
                assert_eq!(h, h.to_ascii_lowercase(), "{name}: {h}");
                assert!(
                    http::HeaderName::from_bytes(h.as_bytes()).is_ok(),
                    "{name}: {h}"
                );
            }
        }
        assert!(scheme_by_name("hmac").is_none());
        assert!(scheme_by_name("nope").is_none());
    }

    #[test]
    fn base64_signatures_are_strict() {
        let ok = "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(decode_base64(ok, 32).map(|v| v.len()), Ok(32));
        for bad in [
            "",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
            "g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1O==",
        ] {
            assert_eq!(
                decode_base64(bad, 32),
                Err(Failure::MalformedSignature),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn key_debug_is_redacted() {
        let k = Key::new("super-secret");
        assert!(!format!("{k:?}").contains("super"));
    }
}
