//! Shared checks for hookgate's fuzz targets.
//!
//! # Input format (scheme targets)
//!
//! An input reads like a request: header lines, a blank line, the body.
//! Lines starting with `@` are directives, not headers:
//!
//! ```text
//! @secret: whsec_test_secret        (any number; default: the target's vector secret)
//! @private_key: 9d61…               (public-key schemes instead of @secret: signing
//!                                    keys, each verified with its public key)
//! @now: 1700000000                  (default: the target's vector time)
//! @method: POST                     (default POST)
//! @url: https://h.example/in?x=1    (the public URL URL-signed schemes sign)
//! @tolerance: 300                   (seconds; `none` for no freshness check)
//! @header: X-Signature              (scheme_hmac only: GenericOptions, see below)
//! Webhook-Signature: t=1700000000,v1=d95c…
//!
//! {"id":"evt_test_webhook","object":"event"}
//! ```
//!
//! `scheme_hmac` also reads `@header`, `@prefix`, `@encoding` (hex|base64),
//! `@algorithm` (sha1|sha256|sha512), `@template`, `@timestamp_header` and
//! `@id_header`. Lines that are neither a valid header nor a directive are
//! skipped, so every byte string is some input. The seed corpus is written
//! in this format, so the official vectors sit in it as they are published.
//!
//! # What is checked
//!
//! Nothing panics, and:
//! - `verify` is `parse` then `verify_parsed`; a verified header has between
//!   1 and `MAX_SIGNATURES` signatures;
//! - `verify` says `Ok` only if the key at `key_index` matches one of the
//!   candidate signatures and, with a tolerance and a signed timestamp, it
//!   is fresh; handshakes never panic;
//! - sign-then-verify holds: what `Scheme::sign_delivery` produces for the
//!   input's body, URL and timestamp verifies under the same key (or the
//!   public key of the signing key), and stops verifying once the body
//!   changes (where the body is signed); with the input's own id too,
//!   unless the scheme's grammar refuses that id (`malformed_signature`,
//!   never a mismatch).

use std::time::Duration;

use hookgate::verify::{
    self, Algorithm, Delivery, Encoding, Failure, GenericOptions, Key, KeyKind, Scheme,
    SignedRequest,
};
use http::{HeaderMap, HeaderName, HeaderValue};

/// An input split into directives, headers and body.
pub struct Input<'a> {
    pub directives: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: &'a [u8],
}

impl Input<'_> {
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn directives<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.directives
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits `data` at the first blank line; reads the head line by line.
pub fn split(data: &[u8]) -> Input<'_> {
    let (head, body) = match find(data, b"\r\n\r\n") {
        Some(i) => (&data[..i], &data[i + 4..]),
        None => match find(data, b"\n\n") {
            Some(i) => (&data[..i], &data[i + 2..]),
            None => (data, &data[data.len()..]),
        },
    };
    let mut directives = vec![];
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let Some(d) = name.strip_prefix(b"@") {
            if let (Ok(d), Ok(v)) = (std::str::from_utf8(d), std::str::from_utf8(value)) {
                directives.push((d.trim().to_string(), v.to_string()));
            }
            continue;
        }
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    Input {
        directives,
        headers,
        body,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The verifying keys and the signing key of an input: for schemes that
/// take secrets, the `@secret` directives (default: the target's secret);
/// for public-key schemes, `@private_key` directives (default: the target's
/// private key), each verified with its public key.
fn keys(
    scheme: &dyn Scheme,
    default_key: &str,
    input: &Input<'_>,
    private: bool,
) -> (Vec<Key>, Option<Key>) {
    let takes_secrets = !private && scheme.key_kinds().contains(&KeyKind::Secret);
    let directive = if takes_secrets { "secret" } else { "private_key" };
    let mut texts: Vec<&str> = input.directives(directive).take(4).collect();
    if texts.is_empty() {
        texts.push(default_key);
    }
    if takes_secrets {
        let keys: Vec<Key> = texts.iter().filter_map(|s| scheme.derive_key(s).ok()).collect();
        let signer = keys.first().cloned();
        return (keys, signer);
    }
    let private: Vec<Key> = texts
        .iter()
        .filter_map(|s| scheme.derive_private_key(s).ok())
        .collect();
    let public = private
        .iter()
        .filter_map(|k| scheme.public_key_for(k))
        .collect();
    (public, private.first().cloned())
}

/// Runs every check of the module doc on `scheme`. `default_key` is the
/// target's secret, or its private key for a scheme that takes only public
/// keys.
pub fn check_scheme(scheme: &dyn Scheme, default_key: &str, default_now: i64, data: &[u8]) {
    check(scheme, default_key, default_now, data, false)
}

/// [`check_scheme`] with private keys (`@private_key`) for a scheme that
/// takes secrets too (Standard Webhooks `v1a`).
pub fn check_scheme_private(scheme: &dyn Scheme, default_private: &str, default_now: i64, data: &[u8]) {
    check(scheme, default_private, default_now, data, true)
}

fn check(scheme: &dyn Scheme, default_key: &str, default_now: i64, data: &[u8], private: bool) {
    let input = split(data);
    let (keys, signer) = keys(scheme, default_key, &input, private);
    let now = input
        .directive("now")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(default_now);
    let tolerance = match input.directive("tolerance") {
        Some("none") => None,
        Some(t) => Some(Duration::from_secs(t.trim().parse().unwrap_or(300))),
        None => Some(Duration::from_secs(300)),
    };
    let method = input.directive("method").unwrap_or("POST").trim();
    let url = input
        .directive("url")
        .map(str::trim)
        .unwrap_or("https://hooks.example.com/in?x=1");
    let query = url.split_once('?').map(|(_, q)| q);
    let body = input.body;
    let req = SignedRequest::new(method, &input.headers, body)
        .with_url(Some(url))
        .with_query(query);

    // Handshakes never panic; the unsigned ones never need a key.
    if scheme.may_be_unsigned_handshake(method, &input.headers, query) {
        let _ = scheme.unsigned_handshake(&req);
    }

    let parsed = scheme.parse(&input.headers);
    let completed = parsed
        .clone()
        .and_then(|h| scheme.parse_body(h, &req));
    if let Ok(h) = &completed {
        // A scheme that signs inside the body (mailgun) finds its signature
        // there; parse_body refuses an empty list via verify_parsed.
        assert!(
            h.signatures.len() <= verify::MAX_SIGNATURES,
            "at most MAX_SIGNATURES signatures: {h:?}"
        );
    }
    let verdict = verify::verify(scheme, &req, &keys, now, tolerance);
    let again = parsed
        .clone()
        .and_then(|h| verify::verify_parsed(scheme, &h, &req, &keys, now, tolerance));
    assert_eq!(verdict, again, "verify is parse then verify_parsed");
    if let Ok(v) = &verdict {
        let h = completed.as_ref().expect("verified, so parsed");
        assert!(
            (1..=verify::MAX_SIGNATURES).contains(&h.signatures.len()),
            "verified with {} signatures",
            h.signatures.len()
        );
        let key = keys.get(v.key_index).expect("key_index is a configured key");
        assert!(
            scheme.matches(key, h, &req).is_some(),
            "verified without a matching key: {h:?}"
        );
        if let (Some(t), Some(ts)) = (tolerance, v.timestamp) {
            assert!(verify::is_fresh(ts, now, t), "verified a stale timestamp");
        }
        if let Some(reply) = scheme.handshake(&req, key) {
            assert!((200..300).contains(&reply.status), "{reply:?}");
        }
    }

    // Sign, then verify what was signed.
    let (Some(signer), Some(verifier)) = (signer, keys.first()) else {
        return;
    };
    let timestamp = completed
        .as_ref()
        .ok()
        .and_then(|h| h.timestamp)
        .unwrap_or(now)
        .clamp(0, 9_999_999_999);
    let id = scheme
        .id_header()
        .and_then(|h| input.headers.get(h))
        .and_then(|v| v.to_str().ok());
    let ctx = Signing {
        scheme,
        signer: &signer,
        verifier,
        method,
        url,
        body,
        timestamp,
    };
    // A plain id must round-trip; the input's own id may also be one the
    // scheme's grammar refuses (Standard Webhooks: empty, or with a `.`),
    // and then only that refusal is allowed: never a mismatch.
    ctx.sign_then_verify("msg_fuzz", false);
    if let Some(id) = id {
        ctx.sign_then_verify(id, true);
    }
}

/// One sign-then-verify setting.
struct Signing<'a> {
    scheme: &'a dyn Scheme,
    signer: &'a Key,
    verifier: &'a Key,
    method: &'a str,
    url: &'a str,
    body: &'a [u8],
    timestamp: i64,
}

impl Signing<'_> {
    fn sign_then_verify(&self, id: &str, id_may_be_refused: bool) {
        let scheme = self.scheme;
        let d = Delivery {
            method: self.method,
            url: Some(self.url),
            body: self.body,
            timestamp: self.timestamp,
            id,
        };
        let signed = match scheme.sign_delivery(self.signer, &d) {
            Ok(s) => s,
            // Some schemes can only sign some bodies (Linear and Mailgun a
            // JSON object, Twilio UTF-8 form parameters) or some ids
            // (Mailgun's token): a refusal to sign is not a bug.
            Err(e) => {
                assert!(!e.is_empty());
                return;
            }
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &signed.headers {
            let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                // The id came from a header value, so anything sign builds
                // from it is a header value too.
                panic!("sign produced a header that cannot be sent: {name}: {value:?}");
            };
            headers.append(n, v);
        }
        if let Some(h) = scheme.id_header() {
            if !headers.contains_key(h) {
                if let Ok(v) = HeaderValue::from_str(id) {
                    headers.insert(HeaderName::from_bytes(h.as_bytes()).expect("lower-case"), v);
                }
            }
        }
        let body = signed.body.clone().unwrap_or_else(|| self.body.to_vec());
        let url = signed.url.clone().unwrap_or_else(|| self.url.to_string());
        let fresh = Some(Duration::from_secs(300));
        let keys = std::slice::from_ref(self.verifier);
        let req = SignedRequest::new(self.method, &headers, &body).with_url(Some(&url));
        let round_trip = verify::verify(scheme, &req, keys, self.timestamp, fresh);
        if id_may_be_refused && round_trip == Err(Failure::MalformedSignature) {
            return;
        }
        assert!(
            round_trip.is_ok(),
            "sign-then-verify failed: {round_trip:?} for {signed:?}"
        );
        // GitLab's token and Mailgun's signature do not cover the body.
        if matches!(scheme.name(), "gitlab" | "mailgun") {
            return;
        }
        let mut tampered = body.clone();
        match tampered.first_mut() {
            Some(b) => *b ^= 1,
            None => tampered.push(b'x'),
        }
        let req = SignedRequest::new(self.method, &headers, &tampered).with_url(Some(&url));
        assert!(
            verify::verify(scheme, &req, keys, self.timestamp, fresh).is_err(),
            "a changed body still verified"
        );
    }
}

/// The generic scheme: options from the input's directives, then
/// [`check_scheme`] if [`verify::GenericHmac::new`] accepts them.
pub fn check_generic(data: &[u8]) {
    let input = split(data);
    let d = |name: &str| input.directive(name).map(str::to_string);
    let options = GenericOptions {
        header: d("header").unwrap_or_else(|| "X-Signature".into()),
        prefix: d("prefix").unwrap_or_default(),
        encoding: match input.directive("encoding") {
            Some("base64") => Encoding::Base64,
            _ => Encoding::Hex,
        },
        algorithm: match input.directive("algorithm") {
            Some("sha1") => Algorithm::Sha1,
            Some("sha512") => Algorithm::Sha512,
            _ => Algorithm::Sha256,
        },
        template: d("template").unwrap_or_else(|| "{body}".into()),
        timestamp_header: d("timestamp_header"),
        id_header: d("id_header"),
    };
    match verify::GenericHmac::new(options) {
        Ok(scheme) => check_scheme(&scheme, "generic-secret", 1_700_000_000, data),
        Err(e) => assert!(!e.is_empty()),
    }
}

/// Loads `data` as a config file. Nothing may panic; an error names
/// something.
pub fn check_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match hookgate::config::from_yaml(text, "fuzz.yaml") {
        Ok(config) => {
            let table = hookgate::gateway::RouteTable::new(&config.routes);
            for route in table.routes() {
                let _ = format!("{route:?}");
            }
            let _ = table.find(Some("hooks.example.com"), "/webhooks/fynapse?x=1");
        }
        Err(e) => assert!(!e.problems.is_empty(), "an error with no problem: {e}"),
    }
}

/// Moves this process into a network namespace of its own (only a loopback
/// that is down), so that config loading, which resolves upstream host
/// names, sends nothing anywhere whatever host the fuzzer writes. Panics if
/// that is impossible: better no run than lookups leaving the machine.
pub fn isolate_network() {
    // SAFETY: unshare takes flags only and touches no memory of ours.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
        return;
    }
    let first = std::io::Error::last_os_error();
    // Without CAP_SYS_ADMIN: a user namespace first (allowed on most
    // distributions to unprivileged users; needs a single thread, which
    // libFuzzer's initialisation still is).
    // SAFETY: as above.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } == 0 {
        return;
    }
    panic!(
        "config_yaml must run without network (it resolves host names): \
         unshare(CLONE_NEWNET) failed ({first}), and with a user namespace too ({})",
        std::io::Error::last_os_error()
    );
}
