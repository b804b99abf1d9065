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
mod grammar;
mod hubspot;
mod intercom;
mod linear;
mod mac;
mod mailgun;
mod paddle;
mod pagerduty;
mod public_key;
mod registry;
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
pub(crate) use grammar::{decode_base64, decode_hex, header_str, parse_timestamp};
pub use hubspot::HubSpot;
pub use intercom::Intercom;
pub use linear::Linear;
pub use mac::Algorithm;
pub use mailgun::Mailgun;
pub use paddle::Paddle;
pub use pagerduty::PagerDuty;
pub use registry::{scheme_by_name, SCHEME_NAMES};
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

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod testing;
