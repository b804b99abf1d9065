//! Shared checks for hookgate's fuzz targets.
//!
//! # Input format (scheme targets)
//!
//! An input reads like a request: header lines, a blank line, the body.
//! Lines starting with `@` are directives, not headers:
//!
//! ```text
//! @secret: whsec_test_secret        (any number; default: the target's vector secret)
//! @now: 1700000000                  (default: the target's vector time)
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
//! - `verify` is `parse` then `verify_parsed`; a parsed header has between
//!   1 and `MAX_SIGNATURES` signatures;
//! - `verify` says `Ok` only if one key's MAC is one of the candidate
//!   signatures and, with a tolerance and a signed timestamp, it is fresh;
//! - sign-then-verify holds: what `Scheme::sign` produces for the input's
//!   body and timestamp verifies under the same key, and stops verifying
//!   once the body changes; with the input's own id too, unless the
//!   scheme's grammar refuses that id (`malformed_signature`, never a
//!   mismatch).

use std::time::Duration;

use hookgate::verify::{self, Algorithm, Encoding, Failure, GenericOptions, Scheme};
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

/// Runs every check of the module doc on `scheme`.
pub fn check_scheme(scheme: &dyn Scheme, default_secret: &str, default_now: i64, data: &[u8]) {
    let input = split(data);
    let mut secrets: Vec<&str> = input.directives("secret").take(4).collect();
    if secrets.is_empty() {
        secrets.push(default_secret);
    }
    let keys: Vec<verify::Key> = secrets
        .iter()
        .filter_map(|s| scheme.derive_key(s).ok())
        .collect();
    let now = input
        .directive("now")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(default_now);
    let tolerance = match input.directive("tolerance") {
        Some("none") => None,
        Some(t) => Some(Duration::from_secs(t.trim().parse().unwrap_or(300))),
        None => Some(Duration::from_secs(300)),
    };
    let body = input.body;

    let parsed = scheme.parse(&input.headers);
    if let Ok(h) = &parsed {
        assert!(
            (1..=verify::MAX_SIGNATURES).contains(&h.signatures.len()),
            "a parsed header has 1..=MAX_SIGNATURES signatures: {h:?}"
        );
    }
    let verdict = verify::verify(scheme, &input.headers, body, &keys, now, tolerance);
    let again = parsed
        .clone()
        .and_then(|h| verify::verify_parsed(scheme, &h, body, &keys, now, tolerance));
    assert_eq!(verdict, again, "verify is parse then verify_parsed");
    if let Ok(v) = &verdict {
        let h = parsed.as_ref().expect("verified, so parsed");
        assert!(
            keys.iter()
                .any(|k| h.signatures.contains(&scheme.mac(k, h, body))),
            "verified without a matching MAC: {h:?}"
        );
        if let (Some(t), Some(ts)) = (tolerance, v.timestamp) {
            assert!(verify::is_fresh(ts, now, t), "verified a stale timestamp");
        }
    }

    // Sign, then verify what was signed.
    let Some(key) = keys.first() else {
        return;
    };
    let timestamp = parsed
        .as_ref()
        .ok()
        .and_then(|h| h.timestamp)
        .unwrap_or(now)
        .clamp(0, 9_999_999_999);
    let id = scheme
        .id_header()
        .and_then(|h| input.headers.get(h))
        .and_then(|v| v.to_str().ok());
    // A plain id must round-trip; the input's own id may also be one the
    // scheme's grammar refuses (Standard Webhooks: empty, or with a `.`),
    // and then only that refusal is allowed: never a mismatch.
    sign_then_verify(scheme, key, body, timestamp, "msg_fuzz", false);
    if let Some(id) = id {
        sign_then_verify(scheme, key, body, timestamp, id, true);
    }
}

fn sign_then_verify(
    scheme: &dyn Scheme,
    key: &verify::Key,
    body: &[u8],
    timestamp: i64,
    id: &str,
    id_may_be_refused: bool,
) {
    let mut signed = HeaderMap::new();
    for (name, value) in scheme.sign(key, body, timestamp, id) {
        let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) else {
            // The id came from a header value, so anything sign builds from
            // it is a header value too.
            panic!("sign produced a header that cannot be sent: {name}: {value:?}");
        };
        signed.append(n, v);
    }
    if let Some(h) = scheme.id_header() {
        if !signed.contains_key(h) {
            if let Ok(v) = HeaderValue::from_str(id) {
                signed.insert(HeaderName::from_bytes(h.as_bytes()).expect("lower-case"), v);
            }
        }
    }
    let fresh = Some(Duration::from_secs(300));
    let keys = std::slice::from_ref(key);
    let round_trip = verify::verify(scheme, &signed, body, keys, timestamp, fresh);
    if id_may_be_refused && round_trip == Err(Failure::MalformedSignature) {
        return;
    }
    assert!(
        round_trip.is_ok(),
        "sign-then-verify failed: {round_trip:?} for {signed:?}"
    );
    let mut tampered = body.to_vec();
    match tampered.first_mut() {
        Some(b) => *b ^= 1,
        None => tampered.push(b'x'),
    }
    assert_eq!(
        verify::verify(scheme, &signed, &tampered, keys, timestamp, fresh),
        Err(Failure::SignatureMismatch),
        "a changed body still verified"
    );
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
