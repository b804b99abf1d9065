//! Signature verification: pure functions from (request, keys, now) to a
//! [`Verdict`].
//!
//! This module owns every fact about how senders sign their deliveries. It
//! knows nothing of Pingora, sockets or the dedupe cache: the gateway hands it
//! a [`SignedRequest`] (method, the route's public URL with the query as
//! received, headers, the whole raw body) and gets back either the
//! authenticated facts (signed timestamp, delivery id, which key matched,
//! the matched signature) or a [`Failure`] (which `hookgate::Reason` turns
//! into the label the gateway answers with).
//!
//! A scheme is one file implementing [`Scheme`]. Its job is narrow: read its
//! header(s) (and, for senders that sign inside the body, the body) into a
//! [`SignatureHeader`], say which bytes it signs, and (for the CLI and
//! tests) produce what a sender would send. The loop over keys and
//! candidate signatures, the constant-time comparison and the freshness
//! window live here, once, for every scheme; schemes that verify a
//! public-key signature instead of a MAC override [`Scheme::matches`].
//! Setup handshakes are answered from [`Scheme::handshake`] (after
//! verification) and [`Scheme::unsigned_handshake`] (never signs).

mod bitbucket;
mod body_mac;
mod calendly;
mod discord;
mod dropbox;
mod fynapse;
mod generic;
mod github;
mod gitlab;
mod hubspot;
mod intercom;
mod linear;
mod mac;
mod mailgun;
mod paddle;
mod pagerduty;
mod public_key;
mod sendgrid;
mod sentry;
mod shopify;
mod slack;
mod square;
mod standard_webhooks;
mod stripe;
mod twilio;
mod typeform;
mod vercel;
mod woocommerce;
mod zendesk;
mod zoom;

pub use bitbucket::Bitbucket;
pub use calendly::Calendly;
pub use discord::Discord;
pub use dropbox::Dropbox;
pub use fynapse::Fynapse;
pub use generic::{Encoding, GenericHmac, GenericOptions};
pub use github::GitHub;
pub use gitlab::GitLab;
pub use hubspot::HubSpot;
pub use intercom::Intercom;
pub use linear::Linear;
pub use mac::Algorithm;
pub use mailgun::Mailgun;
pub use paddle::Paddle;
pub use pagerduty::PagerDuty;
pub use sendgrid::SendGrid;
pub use sentry::Sentry;
pub use shopify::Shopify;
pub use slack::Slack;
pub use square::Square;
pub use standard_webhooks::StandardWebhooks;
pub use stripe::Stripe;
pub use twilio::Twilio;
pub use typeform::Typeform;
pub use vercel::Vercel;
pub use woocommerce::WooCommerce;
pub use zendesk::Zendesk;
pub use zoom::Zoom;

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

/// What kind of key material a [`Key`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// A shared secret: the HMAC key (or, for `gitlab`, the token itself).
    /// Configured under `verify.secrets`.
    Secret,
    /// A sender's public key, for schemes that verify a signature made with
    /// the sender's private key (Ed25519, ECDSA). Configured under
    /// `verify.public_keys`.
    PublicKey,
    /// A private key, only for producing signatures (`hookgate sign
    /// --private-key`, tests). Never used to verify.
    PrivateKey,
}

/// Key material derived from a configured secret or public key.
///
/// `Debug` never prints the bytes, so a key can sit in structs that are
/// logged without leaking.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    kind: KeyKind,
    bytes: Vec<u8>,
}

impl Key {
    /// Wraps the raw bytes of a shared secret (an HMAC key).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Key {
            kind: KeyKind::Secret,
            bytes: bytes.into(),
        }
    }

    /// Wraps a public key in the scheme's canonical form (Ed25519: the raw
    /// 32 bytes; P-256: the SEC1 encoded point).
    pub fn public(bytes: impl Into<Vec<u8>>) -> Self {
        Key {
            kind: KeyKind::PublicKey,
            bytes: bytes.into(),
        }
    }

    /// Wraps a private key (Ed25519: the 32-byte seed; P-256: the 32-byte
    /// scalar), for signing only.
    pub fn private(bytes: impl Into<Vec<u8>>) -> Self {
        Key {
            kind: KeyKind::PrivateKey,
            bytes: bytes.into(),
        }
    }

    /// What this key is.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Key({:?}, <{} bytes redacted>)",
            self.kind,
            self.bytes.len()
        )
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

/// The request as verification sees it: everything a sender may sign.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    /// The request method as received, e.g. `POST`.
    pub method: &'a str,
    /// The public URL the sender signed: the route's `verify.public_url`
    /// with the request's raw query string appended as received (see
    /// [`public_url`]). `None` when the route has none; schemes for which
    /// [`Scheme::needs_public_url`] is true then never verify.
    pub url: Option<&'a str>,
    /// The request's raw query string (without `?`), as received, if any.
    /// Only the unsigned handshakes read it (Dropbox's `?challenge=`).
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The whole raw body (empty before it is read).
    pub body: &'a [u8],
}

impl<'a> SignedRequest<'a> {
    /// A request with no public URL and no query.
    pub fn new(method: &'a str, headers: &'a HeaderMap, body: &'a [u8]) -> Self {
        SignedRequest {
            method,
            url: None,
            query: None,
            headers,
            body,
        }
    }

    /// The same request with its public URL (built with [`public_url`]).
    pub fn with_url(self, url: Option<&'a str>) -> Self {
        SignedRequest { url, ..self }
    }

    /// The same request with its raw query string.
    pub fn with_query(self, query: Option<&'a str>) -> Self {
        SignedRequest { query, ..self }
    }
}

/// The URL a URL-signing sender signed: the configured public URL (scheme,
/// host, optional port, path, exactly as given to the sender) with `?` and
/// the request's raw query appended when the request had one. Nothing is
/// re-encoded: senders sign the bytes they requested.
pub fn public_url(configured: &str, raw_query: Option<&str>) -> String {
    match raw_query {
        Some(q) => format!("{configured}?{q}"),
        None => configured.to_string(),
    }
}

/// What a scheme read from the request, before any signature is checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The timestamp the sender signed, in Unix seconds, if the scheme signs one.
    pub timestamp: Option<i64>,
    /// The timestamp exactly as the sender wrote it, for schemes whose signed
    /// bytes use that text rather than the seconds (HubSpot's milliseconds,
    /// Zendesk's ISO 8601, Mailgun's and Discord's strings).
    pub timestamp_text: Option<String>,
    /// The delivery id the scheme carries (and may sign), if any.
    pub id: Option<String>,
    /// Candidate signatures, already decoded from hex or base64. At least one,
    /// at most [`MAX_SIGNATURES`], once [`Scheme::parse_body`] has run (a
    /// scheme that signs inside the body, such as Mailgun, has none before).
    pub signatures: Vec<Vec<u8>>,
}

/// The facts a valid signature establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The signed timestamp (Unix seconds), for schemes that sign one.
    pub timestamp: Option<i64>,
    /// The scheme's delivery id, when the request carries one (for Mailgun,
    /// the signed token from the body).
    pub id: Option<String>,
    /// Which configured key matched (0-based, in configuration order); the
    /// key [`Scheme::handshake`] must be given.
    pub key_index: usize,
    /// The candidate signature that matched, decoded (ECDSA signatures in
    /// the canonical low-S `r‖s` form, so a re-encoded or malleated copy of
    /// a captured signature is the same bytes). A second dedupe identity
    /// against replays: the same signature twice is the same delivery.
    /// Empty when the scheme's signature does not identify a delivery
    /// (see [`Scheme::signature_identifies_delivery`]).
    pub signature: Vec<u8>,
}

/// The outcome of [`verify`].
pub type Verdict = Result<Verified, Failure>;

/// An answer the gateway sends itself, without forwarding, to a sender's
/// setup handshake. Always send it with `X-Content-Type-Options: nosniff`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeReply {
    /// The status code (200, or 204 for Discord's webhook-event PING).
    pub status: u16,
    /// The `Content-Type`, when there is a body.
    pub content_type: Option<&'static str>,
    /// The body.
    pub body: Vec<u8>,
}

impl HandshakeReply {
    /// A `200` JSON answer.
    pub(crate) fn json(value: &serde_json::Value) -> Self {
        HandshakeReply {
            status: 200,
            content_type: Some("application/json"),
            body: value.to_string().into_bytes(),
        }
    }
}

/// A delivery to sign, for `hookgate sign`/`send` and tests.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    /// The method the sender uses (`POST`).
    pub method: &'a str,
    /// The public URL the delivery goes to, for URL-signing schemes.
    pub url: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
    /// Unix seconds, for schemes that sign a timestamp.
    pub timestamp: i64,
    /// The delivery id, for schemes that carry one.
    pub id: &'a str,
}

/// What a sender sends for a [`Delivery`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signed {
    /// Header lines, in the order a sender writes them.
    pub headers: Vec<(String, String)>,
    /// The body to send instead of the given one, when the scheme signs
    /// inside the body (Mailgun); `None`: send the body as given.
    pub body: Option<Vec<u8>>,
    /// The URL to send to instead of the given one, when the scheme adds to
    /// it (Twilio's `bodySHA256` for JSON bodies); `None`: unchanged.
    pub url: Option<String>,
}

impl Signed {
    /// Only headers.
    pub fn headers(headers: Vec<(String, String)>) -> Self {
        Signed {
            headers,
            ..Signed::default()
        }
    }
}

/// A webhook signature scheme: how one sender signs its deliveries.
///
/// Implementations are pure and cheap to share (`Send + Sync`); the gateway
/// holds one per route. The gateway's order is:
///
/// 1. [`may_be_unsigned_handshake`](Scheme::may_be_unsigned_handshake) on the
///    head; if true, read the body and try
///    [`unsigned_handshake`](Scheme::unsigned_handshake) (answer it, forward
///    nothing). Otherwise:
/// 2. [`parse`](Scheme::parse) the headers (reject early on failure);
/// 3. read the body, [`verify_parsed`];
/// 4. on success, [`handshake`](Scheme::handshake) with the matched key;
///    answer it if it says so, else go on (dedupe, forward).
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

    /// Whether [`Verified::id`] is set for every verified request, so that
    /// `idempotency.key: scheme` can use it even without an
    /// [`id_header`](Scheme::id_header) (Mailgun's token is in the body).
    fn carries_id(&self) -> bool {
        self.id_header().is_some()
    }

    /// Whether the scheme signs a timestamp (and so can enforce freshness).
    fn signs_timestamp(&self) -> bool;

    /// Whether the signed bytes include the public URL: the route must then
    /// have `verify.public_url`, and routes of other schemes must not.
    fn needs_public_url(&self) -> bool {
        false
    }

    /// The key kinds verification takes: `[Secret]` (most), `[PublicKey]`
    /// (Discord, SendGrid) or both (Standard Webhooks: `v1` with secrets,
    /// `v1a` with public keys). Config reads `verify.secrets` for
    /// [`KeyKind::Secret`] and `verify.public_keys` for
    /// [`KeyKind::PublicKey`].
    fn key_kinds(&self) -> &'static [KeyKind] {
        &[KeyKind::Secret]
    }

    /// Turns a configured secret into the key. The default is the secret's
    /// raw UTF-8 bytes. Errors never repeat the secret.
    fn derive_key(&self, secret: &str) -> Result<Key, String> {
        if !self.key_kinds().contains(&KeyKind::Secret) {
            return Err(format!(
                "the {} scheme verifies with the sender's public key: configure public_keys, not secrets",
                self.name()
            ));
        }
        Ok(Key::new(secret.as_bytes()))
    }

    /// Turns a configured public key, in the form its provider shows it,
    /// into the key.
    fn derive_public_key(&self, _public_key: &str) -> Result<Key, String> {
        Err(format!(
            "the {} scheme verifies with a shared secret: configure secrets, not public_keys",
            self.name()
        ))
    }

    /// Turns a private key into a signing key (for `hookgate sign
    /// --private-key` and tests), for schemes that verify with public keys.
    fn derive_private_key(&self, _private_key: &str) -> Result<Key, String> {
        Err(format!(
            "the {} scheme signs with a shared secret, not a private key",
            self.name()
        ))
    }

    /// The public key matching a private key from
    /// [`derive_private_key`](Scheme::derive_private_key) (tests, and
    /// `hookgate sign` to show what to configure).
    fn public_key_for(&self, _private: &Key) -> Option<Key> {
        None
    }

    /// Reads the signature header(s). Cheap and body-free, so the gateway can
    /// reject a missing or malformed signature before reading the body.
    /// A scheme that signs inside the body returns a header with no
    /// signatures here, and reads them in [`parse_body`](Scheme::parse_body).
    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure>;

    /// Completes what [`parse`](Scheme::parse) read with what is in the body
    /// or URL (Mailgun's signature, Linear's signed timestamp). Runs before
    /// any signature is checked; the default returns `header` unchanged.
    fn parse_body(
        &self,
        header: SignatureHeader,
        _req: &SignedRequest<'_>,
    ) -> Result<SignatureHeader, Failure> {
        Ok(header)
    }

    /// Computes the MAC this scheme expects for `req` under `key`, for
    /// HMAC schemes. Schemes that verify otherwise override
    /// [`matches`](Scheme::matches) and leave this empty (an empty MAC
    /// matches nothing).
    fn mac(&self, _key: &Key, _header: &SignatureHeader, _req: &SignedRequest<'_>) -> Vec<u8> {
        Vec::new()
    }

    /// Which candidate signature, if any, `key` authenticates. The default
    /// computes [`mac`](Scheme::mac) once and compares it with every
    /// candidate in constant time; public-key schemes override it.
    fn matches(
        &self,
        key: &Key,
        header: &SignatureHeader,
        req: &SignedRequest<'_>,
    ) -> Option<usize> {
        if key.kind() != KeyKind::Secret {
            return None;
        }
        let expected = self.mac(key, header, req);
        ct_position(&expected, &header.signatures)
    }

    /// Whether the matched signature identifies one delivery, so that seeing
    /// it twice means a replay ([`Verified::signature`]). False where the
    /// same bytes are legitimately sent again: GitLab's token is the same
    /// on every request, and Dropbox re-sends the same notification body
    /// whenever an account changes again.
    fn signature_identifies_delivery(&self) -> bool {
        true
    }

    /// The answer to a setup handshake carried by a request whose signature
    /// has just verified under `key` (the matched key,
    /// [`Verified::key_index`]), or `None` for an ordinary delivery. Never
    /// called on an unauthenticated request, so a handshake that computes a
    /// MAC (Zoom) only ever signs bytes the sender itself authenticated.
    fn handshake(&self, _req: &SignedRequest<'_>, _key: &Key) -> Option<HandshakeReply> {
        None
    }

    /// Whether this scheme has a handshake at all (signed or not), so config
    /// can refuse `verify.handshake` on the others.
    fn has_handshake(&self) -> bool {
        false
    }

    /// Cheap, from the head only: whether the request may be one of the
    /// sender's unsigned handshakes, so the gateway reads its body and asks
    /// [`unsigned_handshake`](Scheme::unsigned_handshake) instead of
    /// rejecting it for a missing signature.
    fn may_be_unsigned_handshake(
        &self,
        _method: &str,
        _headers: &HeaderMap,
        _query: Option<&str>,
    ) -> bool {
        false
    }

    /// The answer to an unsigned handshake (Dropbox's `GET ?challenge=`,
    /// WooCommerce's creation ping), or `None`. It takes no key: it never
    /// signs anything, it only echoes or acknowledges.
    fn unsigned_handshake(&self, _req: &SignedRequest<'_>) -> Option<HandshakeReply> {
        None
    }

    /// What a sender would send for `delivery` under `key` (a secret, or for
    /// public-key schemes a private key from
    /// [`derive_private_key`](Scheme::derive_private_key)).
    fn sign_delivery(&self, key: &Key, delivery: &Delivery<'_>) -> Result<Signed, String>;

    /// The headers a sender would attach to a `POST` of `body` with no URL
    /// (for schemes that sign neither the URL nor inside the body; empty
    /// when the scheme cannot sign that way, or `key` is of the wrong kind).
    /// `timestamp` and `id` are used when the scheme signs or carries them.
    fn sign(&self, key: &Key, body: &[u8], timestamp: i64, id: &str) -> Vec<(String, String)> {
        let d = Delivery {
            method: "POST",
            url: None,
            body,
            timestamp,
            id,
        };
        self.sign_delivery(key, &d)
            .map(|s| s.headers)
            .unwrap_or_default()
    }
}

/// The index of the first candidate equal to `expected`; every candidate is
/// compared, each in constant time. An empty `expected` matches nothing.
pub(crate) fn ct_position(expected: &[u8], candidates: &[Vec<u8>]) -> Option<usize> {
    if expected.is_empty() {
        return None;
    }
    let mut found = None;
    for (i, candidate) in candidates.iter().enumerate() {
        // `ct_eq` on slices of different length is false, in constant time
        // for the length it is given.
        let eq = bool::from(expected.ct_eq(candidate.as_slice()));
        if eq && found.is_none() {
            found = Some(i);
        }
    }
    found
}

/// Whether a handshake token (Zoom's `plainToken`, Slack's `challenge`) is
/// one a sender would send: 1 to `max` URL-safe characters. Anything else
/// is not answered.
pub(crate) fn token_ok(token: &str, max: usize) -> bool {
    (1..=max).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

/// Refuses to HMAC-sign with anything but a secret.
pub(crate) fn require_secret(scheme: &dyn Scheme, key: &Key) -> Result<(), String> {
    match key.kind() {
        KeyKind::Secret => Ok(()),
        _ => Err(format!(
            "the {} scheme signs with a shared secret",
            scheme.name()
        )),
    }
}

/// Verifies a request: signature first, then freshness.
///
/// Every key is tried against every candidate signature (rotation on either
/// side); each comparison runs in constant time. Freshness is checked only
/// once the timestamp is known to be authentic, and in both directions:
/// `|now - timestamp| <= tolerance`. `tolerance: None` skips it.
pub fn verify(
    scheme: &dyn Scheme,
    req: &SignedRequest<'_>,
    keys: &[Key],
    now: i64,
    tolerance: Option<Duration>,
) -> Verdict {
    let header = scheme.parse(req.headers)?;
    verify_parsed(scheme, &header, req, keys, now, tolerance)
}

/// [`verify`] for a header already parsed by [`Scheme::parse`].
pub fn verify_parsed(
    scheme: &dyn Scheme,
    header: &SignatureHeader,
    req: &SignedRequest<'_>,
    keys: &[Key],
    now: i64,
    tolerance: Option<Duration>,
) -> Verdict {
    let header = scheme.parse_body(header.clone(), req)?;
    if header.signatures.is_empty() || header.signatures.len() > MAX_SIGNATURES {
        return Err(Failure::MalformedSignature);
    }
    let mut matched = None;
    for (i, key) in keys.iter().enumerate() {
        if let Some(c) = scheme.matches(key, &header, req) {
            matched = Some((i, c));
            break;
        }
    }
    let Some((key_index, candidate)) = matched else {
        return Err(Failure::SignatureMismatch);
    };
    if let (Some(tolerance), Some(ts)) = (tolerance, header.timestamp) {
        if !is_fresh(ts, now, tolerance) {
            return Err(Failure::StaleTimestamp);
        }
    }
    let signature = match (
        scheme.signature_identifies_delivery(),
        header.signatures.get(candidate),
    ) {
        (true, Some(s)) => s.clone(),
        _ => Vec::new(),
    };
    Ok(Verified {
        timestamp: header.timestamp,
        id: header.id,
        key_index,
        signature,
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
    "gitlab",
    "dropbox",
    "intercom",
    "typeform",
    "woocommerce",
    "pagerduty",
    "vercel",
    "sentry",
    "bitbucket",
    "zoom",
    "paddle",
    "calendly",
    "zendesk",
    "linear",
    "mailgun",
    "twilio",
    "square",
    "hubspot",
    "discord",
    "sendgrid",
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
        "gitlab" => Some(Box::new(GitLab)),
        "dropbox" => Some(Box::new(Dropbox)),
        "intercom" => Some(Box::new(Intercom)),
        "typeform" => Some(Box::new(Typeform)),
        "woocommerce" => Some(Box::new(WooCommerce)),
        "pagerduty" => Some(Box::new(PagerDuty)),
        "vercel" => Some(Box::new(Vercel)),
        "sentry" => Some(Box::new(Sentry)),
        "bitbucket" => Some(Box::new(Bitbucket)),
        "zoom" => Some(Box::new(Zoom)),
        "paddle" => Some(Box::new(Paddle)),
        "calendly" => Some(Box::new(Calendly)),
        "zendesk" => Some(Box::new(Zendesk)),
        "linear" => Some(Box::new(Linear)),
        "mailgun" => Some(Box::new(Mailgun)),
        "twilio" => Some(Box::new(Twilio)),
        "square" => Some(Box::new(Square)),
        "hubspot" => Some(Box::new(HubSpot)),
        "discord" => Some(Box::new(Discord)),
        "sendgrid" => Some(Box::new(SendGrid)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

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

    /// The signing and verifying key a round trip uses for `scheme`: a
    /// secret where the scheme takes one, else a private key and its public
    /// key.
    fn round_trip_keys(scheme: &dyn Scheme) -> (Key, Key) {
        if scheme.key_kinds().contains(&KeyKind::Secret) {
            let k = scheme.derive_key("whsec_cm91bmQtdHJpcC1zZWNyZXQ=").unwrap();
            return (k.clone(), k);
        }
        let private = match scheme.name() {
            "discord" => "11".repeat(32),
            "sendgrid" => "22".repeat(32),
            other => panic!("no test private key for {other}"),
        };
        let private = scheme.derive_private_key(&private).unwrap();
        let public = scheme.public_key_for(&private).unwrap();
        (private, public)
    }

    fn round_trip(
        scheme: &dyn Scheme,
        sign_key: &Key,
        verify_key: &Key,
        body: &[u8],
        t: i64,
        id: &str,
    ) -> Result<(), TestCaseError> {
        let url = "https://hooks.example.com/in/route?x=1";
        let d = Delivery {
            method: "POST",
            url: Some(url),
            body,
            timestamp: t,
            id,
        };
        let signed = match scheme.sign_delivery(sign_key, &d) {
            Ok(s) => s,
            // Linear and Mailgun sign JSON objects only.
            Err(_) if matches!(scheme.name(), "linear" | "mailgun") && !body.starts_with(b"{") => {
                return Ok(())
            }
            // Twilio signs form parameters, which must be UTF-8.
            Err(_) if scheme.name() == "twilio" && twilio::sorted_params(body).is_none() => {
                return Ok(())
            }
            Err(e) => return Err(TestCaseError::fail(format!("{}: {e}", scheme.name()))),
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &signed.headers {
            headers.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        let body = signed.body.clone().unwrap_or_else(|| body.to_vec());
        let url = signed.url.clone().unwrap_or_else(|| url.to_string());
        let keys = [verify_key.clone()];
        let req = SignedRequest::new("POST", &headers, &body).with_url(Some(&url));
        let v = verify(scheme, &req, &keys, t, Some(Duration::from_secs(300)));
        prop_assert!(v.is_ok(), "{}: {v:?} for {signed:?}", scheme.name());
        let v = v.unwrap();
        if scheme.signs_timestamp() {
            prop_assert_eq!(v.timestamp, Some(t), "{}", scheme.name());
        }
        // A changed body no longer verifies, where the body is signed.
        if !matches!(scheme.name(), "gitlab" | "mailgun") {
            let mut tampered = body.clone();
            match tampered.first_mut() {
                Some(b) => *b ^= 1,
                None => tampered.push(b'x'),
            }
            let req = SignedRequest::new("POST", &headers, &tampered).with_url(Some(&url));
            let v = verify(scheme, &req, &keys, t, Some(Duration::from_secs(300)));
            prop_assert!(v.is_err(), "{}: a changed body verified", scheme.name());
        }
        Ok(())
    }

    fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "[ -~]{0,40}".prop_map(|v| serde_json::json!({"event": v, "n": 1})
                .to_string()
                .into_bytes()),
            "[a-zA-Z0-9_]{1,8}=[ -~]{0,20}(&[a-z]{1,5}=[0-9]{0,5}){0,3}"
                .prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..64),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn every_scheme_signs_then_verifies(
            which in 0usize..SCHEME_NAMES.len(),
            body in body_strategy(),
            t in 1_000_000_000i64..4_000_000_000,
            id in "[A-Za-z0-9_-]{1,40}",
        ) {
            let scheme = scheme_by_name(SCHEME_NAMES[which]).unwrap();
            let (sign_key, verify_key) = round_trip_keys(scheme.as_ref());
            round_trip(scheme.as_ref(), &sign_key, &verify_key, &body, t, &id)?;
        }

        #[test]
        fn standard_webhooks_v1a_signs_then_verifies(
            body in body_strategy(),
            t in 1_000_000_000i64..4_000_000_000,
            id in "[A-Za-z0-9_-]{1,40}",
        ) {
            let private = StandardWebhooks.derive_private_key("whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=").unwrap();
            let public = StandardWebhooks.public_key_for(&private).unwrap();
            round_trip(&StandardWebhooks, &private, &public, &body, t, &id)?;
        }

        #[test]
        fn generic_url_templates_sign_then_verify(
            body in body_strategy(),
            t in 1_000_000_000i64..4_000_000_000,
            id in "[A-Za-z0-9_-]{1,40}",
        ) {
            let scheme = GenericHmac::new(GenericOptions {
                header: "X-Sig".into(),
                prefix: "v1=".into(),
                encoding: Encoding::Base64,
                algorithm: Algorithm::Sha256,
                template: "{method}\n{url}\n{id}\n{timestamp}\n{body}".into(),
                timestamp_header: Some("X-Ts".into()),
                id_header: Some("X-Id".into()),
            }).unwrap();
            let k = Key::new("generic");
            round_trip(&scheme, &k, &k, &body, t, &id)?;
        }
    }

    #[test]
    fn every_scheme_says_what_it_needs() {
        for name in SCHEME_NAMES {
            let s = scheme_by_name(name).unwrap();
            assert!(!s.key_kinds().is_empty(), "{name}");
            assert!(!s.key_kinds().contains(&KeyKind::PrivateKey), "{name}");
            let url = matches!(*name, "twilio" | "square" | "hubspot");
            assert_eq!(s.needs_public_url(), url, "{name}");
            let pk = matches!(*name, "discord" | "sendgrid" | "standard-webhooks");
            assert_eq!(s.key_kinds().contains(&KeyKind::PublicKey), pk, "{name}");
            let hs = matches!(
                *name,
                "slack" | "zoom" | "discord" | "dropbox" | "woocommerce"
            );
            assert_eq!(s.has_handshake(), hs, "{name}");
        }
    }

    #[test]
    fn key_debug_is_redacted() {
        let k = Key::new("super-secret");
        assert!(!format!("{k:?}").contains("super"));
    }
}

/// Helpers for the schemes' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// [`verify`] for a `POST` with no public URL, as the body-only schemes'
    /// tests call it.
    pub(crate) fn verify_body(
        scheme: &dyn Scheme,
        headers: &HeaderMap,
        body: &[u8],
        keys: &[Key],
        now: i64,
        tolerance: Option<Duration>,
    ) -> Verdict {
        verify(
            scheme,
            &SignedRequest::new("POST", headers, body),
            keys,
            now,
            tolerance,
        )
    }

    /// Header pairs into a map (test input is well-formed).
    pub(crate) fn header_map<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_ref().as_bytes()).unwrap(),
                http::HeaderValue::from_str(v.as_ref()).unwrap(),
            );
        }
        h
    }

    /// The tolerance every scheme test uses.
    pub(crate) const TOL: Option<Duration> = Some(Duration::from_secs(300));

    /// A vector and the request around it, to vary one thing at a time.
    #[derive(Clone)]
    pub(crate) struct Case {
        pub scheme: &'static dyn Scheme,
        pub keys: Vec<Key>,
        pub method: &'static str,
        pub url: Option<String>,
        pub headers: HeaderMap,
        pub body: Vec<u8>,
        pub now: i64,
    }

    impl Case {
        /// A `POST` with no URL, verified at `now` with `keys`.
        pub(crate) fn new<K: AsRef<str>, V: AsRef<str>>(
            scheme: &'static dyn Scheme,
            keys: Vec<Key>,
            headers: &[(K, V)],
            body: &[u8],
            now: i64,
        ) -> Self {
            Case {
                scheme,
                keys,
                method: "POST",
                url: None,
                headers: header_map(headers),
                body: body.to_vec(),
                now,
            }
        }

        pub(crate) fn url(mut self, url: &str) -> Self {
            self.url = Some(url.to_string());
            self
        }

        pub(crate) fn check(&self) -> Verdict {
            let req = SignedRequest::new(self.method, &self.headers, &self.body)
                .with_url(self.url.as_deref());
            verify(self.scheme, &req, &self.keys, self.now, TOL)
        }

        /// The same case with one header set to `value`.
        pub(crate) fn with_header(&self, name: &str, value: &str) -> Self {
            let mut c = self.clone();
            c.headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
            c
        }

        pub(crate) fn without_header(&self, name: &str) -> Self {
            let mut c = self.clone();
            c.headers.remove(name);
            c
        }

        /// The checks every scheme must pass around its vector: it verifies
        /// (with the first key); a changed body byte, a changed URL (for
        /// URL-signed schemes) and a wrong key are mismatches; a late or
        /// early `now` is stale where a timestamp is signed; a missing
        /// signature header is missing. `wrong` is a key of the right kind
        /// that is not the sender's.
        pub(crate) fn assert_standard(&self, wrong: Key) {
            let name = self.scheme.name();
            let v = self.check();
            assert!(v.is_ok(), "{name}: the vector must verify: {v:?}");
            assert_eq!(v.map(|v| v.key_index), Ok(0), "{name}");

            for pos in [0, self.body.len() / 2, self.body.len().saturating_sub(1)] {
                let mut c = self.clone();
                if let Some(b) = c.body.get_mut(pos) {
                    *b ^= 0x01;
                    assert_eq!(
                        c.check(),
                        Err(Failure::SignatureMismatch),
                        "{name}: body byte {pos}"
                    );
                }
            }
            let mut c = self.clone();
            c.body.push(b' ');
            assert_eq!(
                c.check(),
                Err(Failure::SignatureMismatch),
                "{name}: appended byte"
            );

            if self.scheme.needs_public_url() {
                let url = self.url.clone().unwrap();
                for other in [
                    url.replacen("https://", "http://", 1),
                    format!("{url}x"),
                    url.replacen("://", "://x", 1),
                ] {
                    let mut c = self.clone();
                    c.url = Some(other.clone());
                    assert_eq!(
                        c.check(),
                        Err(Failure::SignatureMismatch),
                        "{name}: url {other}"
                    );
                }
                let mut c = self.clone();
                c.url = None;
                assert_eq!(c.check(), Err(Failure::SignatureMismatch), "{name}: no url");
            }

            let mut c = self.clone();
            c.keys = vec![wrong.clone()];
            assert_eq!(
                c.check(),
                Err(Failure::SignatureMismatch),
                "{name}: wrong key"
            );
            // Rotation: the right key second still verifies, and says so.
            let mut c = self.clone();
            c.keys = vec![wrong, self.keys[0].clone()];
            assert_eq!(c.check().map(|v| v.key_index), Ok(1), "{name}: rotation");

            if self.scheme.signs_timestamp() {
                for now in [self.now + 100_000, self.now - 100_000] {
                    let mut c = self.clone();
                    c.now = now;
                    assert_eq!(c.check(), Err(Failure::StaleTimestamp), "{name}: now {now}");
                }
            } else {
                let mut c = self.clone();
                c.now = self.now + 100_000_000;
                assert!(c.check().is_ok(), "{name}: no timestamp, no window");
            }

            for h in self.scheme.signature_headers() {
                if self.headers.contains_key(h) {
                    assert_eq!(
                        self.without_header(h).check(),
                        Err(Failure::MissingSignature),
                        "{name}: without {h}"
                    );
                }
            }
        }

        /// Each value of `header` is refused as malformed.
        pub(crate) fn assert_malformed(&self, header: &str, values: &[&str]) {
            for v in values {
                assert_eq!(
                    self.with_header(header, v).check(),
                    Err(Failure::MalformedSignature),
                    "{}: {header}: {v:?}",
                    self.scheme.name()
                );
            }
        }
    }
}
