//! Tests of `generic.rs`.

use super::*;
use crate::verify::testing::verify_body as verify;
use crate::verify::Verified;
use http::HeaderValue;
use proptest::prelude::*;
use std::time::Duration;

// Every expected signature below was computed with Python's `hmac`,
// `hashlib` and `base64` modules (an implementation independent of this
// one), e.g. for `TS_ID`:
//   base64.b64encode(hmac.new(b"generic-secret",
//       b'evt_123.1700000000.{"event":"ping","n":42}', hashlib.sha256).digest())
const SECRET: &str = "generic-secret";
const BODY: &[u8] = br#"{"event":"ping","n":42}"#;
const T: i64 = 1_700_000_000;
const ID: &str = "evt_123";
const TOL: Option<Duration> = Some(Duration::from_secs(300));

fn opts(
    header: &str,
    prefix: &str,
    encoding: Encoding,
    algorithm: Algorithm,
    template: &str,
    ts: Option<&str>,
    id: Option<&str>,
) -> GenericOptions {
    GenericOptions {
        header: header.into(),
        prefix: prefix.into(),
        encoding,
        algorithm,
        template: template.into(),
        timestamp_header: ts.map(Into::into),
        id_header: id.map(Into::into),
    }
}

struct Case {
    scheme: GenericHmac,
    secret: &'static str,
    body: &'static [u8],
    timestamp: i64,
    id: &'static str,
    /// The headers a sender sends, signature last.
    headers: Vec<(&'static str, String)>,
}

impl Case {
    fn map(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in &self.headers {
            h.insert(*n, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn keys(&self) -> Vec<Key> {
        vec![self.scheme.derive_key(self.secret).unwrap()]
    }

    fn check(&self, h: &HeaderMap, body: &[u8], now: i64) -> Result<Verified, Failure> {
        verify(&self.scheme, h, body, &self.keys(), now, TOL)
    }
}

/// `{body}`, SHA-256, hex, with a prefix.
fn body_sha256_hex() -> Case {
    Case {
        scheme: GenericHmac::new(opts(
            "X-Signature",
            "sha256=",
            Encoding::Hex,
            Algorithm::Sha256,
            "{body}",
            None,
            None,
        ))
        .unwrap(),
        secret: SECRET,
        body: BODY,
        timestamp: T,
        id: "",
        headers: vec![(
            "x-signature",
            "sha256=2f24cf79dd92d5e3ce78aa8ed5d0cc6e65f52c16d8b89735bb8e8652bc649601".into(),
        )],
    }
}

/// `{body}`, SHA-1, base64, no prefix.
fn body_sha1_base64() -> Case {
    Case {
        scheme: GenericHmac::new(opts(
            "X-Body-Sig",
            "",
            Encoding::Base64,
            Algorithm::Sha1,
            "{body}",
            None,
            None,
        ))
        .unwrap(),
        secret: SECRET,
        body: BODY,
        timestamp: T,
        id: "",
        headers: vec![("x-body-sig", "rjLMEsf7mIza7hXR0mBF29wLmPM=".into())],
    }
}

/// `{timestamp}.{body}`, SHA-512, hex.
fn ts_sha512_hex() -> Case {
    Case {
        scheme: GenericHmac::new(opts("X-Sig", "", Encoding::Hex, Algorithm::Sha512, "{timestamp}.{body}", Some("X-Timestamp"), None)).unwrap(),
        secret: SECRET,
        body: BODY,
        timestamp: T,
        id: "",
        headers: vec![
            ("x-timestamp", T.to_string()),
            ("x-sig", "da4d03d93c8861e4b008247d91d4a27d2a4afb6e77a3f0e460e4fefa0c47491f291c1ce0840f27ef0c5f5e04a860ba054dee0acc76eb81e1fd5831c33d4aca64".into()),
        ],
    }
}

/// `{id}.{timestamp}.{body}`, SHA-256, base64, `v1,` prefix.
fn ts_id_sha256_base64() -> Case {
    Case {
        scheme: GenericHmac::new(opts(
            "X-Webhook-Signature",
            "v1,",
            Encoding::Base64,
            Algorithm::Sha256,
            "{id}.{timestamp}.{body}",
            Some("X-Webhook-Timestamp"),
            Some("X-Webhook-Id"),
        ))
        .unwrap(),
        secret: SECRET,
        body: BODY,
        timestamp: T,
        id: ID,
        headers: vec![
            ("x-webhook-id", ID.into()),
            ("x-webhook-timestamp", T.to_string()),
            (
                "x-webhook-signature",
                "v1,EtXXIZ7nV61UjvJWGf5NjcNnIKnL9HZj6QXWmYru+yE=".into(),
            ),
        ],
    }
}

/// Literals around `{body}` and `{id}`, no timestamp, SHA-1, hex.
fn id_sha1_hex() -> Case {
    Case {
        scheme: GenericHmac::new(opts(
            "X-Sig",
            "",
            Encoding::Hex,
            Algorithm::Sha1,
            "v=1;{body};id={id}",
            None,
            Some("X-Id"),
        ))
        .unwrap(),
        secret: SECRET,
        body: BODY,
        timestamp: T,
        id: ID,
        headers: vec![
            ("x-id", ID.into()),
            ("x-sig", "307f0bc8696f132d75a5448660cf15ca6e55fe27".into()),
        ],
    }
}

/// GitHub's official vector (§2.4), configured generically. (Without
/// `X-GitHub-Delivery`: an id header must be signed here, and GitHub's
/// is not.)
fn as_github() -> Case {
    Case {
        scheme: GenericHmac::new(opts(
            "X-Hub-Signature-256",
            "sha256=",
            Encoding::Hex,
            Algorithm::Sha256,
            "{body}",
            None,
            None,
        ))
        .unwrap(),
        secret: "It's a Secret to Everybody",
        body: b"Hello, World!",
        timestamp: T,
        id: "",
        headers: vec![(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".into(),
        )],
    }
}

/// Slack's official vector (§2.6), configured generically.
fn as_slack() -> Case {
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    Case {
        scheme: GenericHmac::new(opts(
            "X-Slack-Signature",
            "v0=",
            Encoding::Hex,
            Algorithm::Sha256,
            "v0:{timestamp}:{body}",
            Some("X-Slack-Request-Timestamp"),
            None,
        ))
        .unwrap(),
        secret: "8f742231b10e8888abcd99yyyzzz85a5",
        body: BODY,
        timestamp: 1_531_420_618,
        id: "",
        headers: vec![
            ("x-slack-request-timestamp", "1531420618".into()),
            (
                "x-slack-signature",
                "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503".into(),
            ),
        ],
    }
}

fn cases() -> Vec<Case> {
    vec![
        body_sha256_hex(),
        body_sha1_base64(),
        ts_sha512_hex(),
        ts_id_sha256_base64(),
        id_sha1_hex(),
        as_github(),
        as_slack(),
    ]
}

#[test]
fn vectors_verify() {
    for (i, c) in cases().iter().enumerate() {
        let want = (
            c.scheme.signs_timestamp().then_some(c.timestamp),
            (!c.id.is_empty()).then(|| c.id.to_string()),
            0,
        );
        let got = c
            .check(&c.map(), c.body, c.timestamp)
            .map(|v| (v.timestamp, v.id, v.key_index));
        assert_eq!(got, Ok(want), "case {i}");
    }
}

#[test]
fn sign_reproduces_the_vectors() {
    for (i, c) in cases().iter().enumerate() {
        let want: Vec<(String, String)> = c
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        assert_eq!(
            c.scheme.sign(&c.keys()[0], c.body, c.timestamp, c.id),
            want,
            "case {i}"
        );
    }
}

#[test]
fn names_are_lower_case_and_flags_follow_the_options() {
    let c = ts_id_sha256_base64();
    assert_eq!(c.scheme.name(), "hmac");
    assert_eq!(c.scheme.signature_headers(), vec!["x-webhook-signature"]);
    assert_eq!(c.scheme.id_header(), Some("x-webhook-id"));
    assert!(c.scheme.signs_timestamp());
    let c = body_sha256_hex();
    assert_eq!(c.scheme.id_header(), None);
    assert!(!c.scheme.signs_timestamp());
}

#[test]
fn tampered_body_id_or_timestamp_is_a_mismatch() {
    for (i, c) in cases().iter().enumerate() {
        let mut body = c.body.to_vec();
        body.push(b' ');
        assert_eq!(
            c.check(&c.map(), &body, c.timestamp),
            Err(Failure::SignatureMismatch),
            "case {i}"
        );
    }
    let c = ts_id_sha256_base64();
    let mut h = c.map();
    h.insert("x-webhook-id", HeaderValue::from_static("evt_124"));
    assert_eq!(c.check(&h, c.body, T), Err(Failure::SignatureMismatch));
    let mut h = c.map();
    h.insert(
        "x-webhook-timestamp",
        HeaderValue::from_static("1700000001"),
    );
    assert_eq!(c.check(&h, c.body, T), Err(Failure::SignatureMismatch));
}

#[test]
fn freshness_both_directions_when_a_timestamp_is_signed() {
    for c in [ts_sha512_hex(), ts_id_sha256_base64()] {
        assert!(c.check(&c.map(), c.body, T + 300).is_ok());
        assert!(c.check(&c.map(), c.body, T - 300).is_ok());
        for now in [T + 301, T - 301] {
            assert_eq!(c.check(&c.map(), c.body, now), Err(Failure::StaleTimestamp));
        }
    }
    // No signed timestamp, no window.
    let c = body_sha256_hex();
    assert!(c.check(&c.map(), c.body, T + 1_000_000).is_ok());
}

#[test]
fn missing_headers_are_missing() {
    for c in cases() {
        for (name, _) in &c.headers {
            let mut h = c.map();
            h.remove(*name);
            assert_eq!(
                c.check(&h, c.body, c.timestamp),
                Err(Failure::MissingSignature),
                "{name}"
            );
        }
    }
}

#[test]
fn garbage_headers_are_malformed() {
    let c = body_sha256_hex();
    let good = "2f24cf79dd92d5e3ce78aa8ed5d0cc6e65f52c16d8b89735bb8e8652bc649601";
    let long = format!("sha256={}", "a".repeat(10 * 1024));
    for bad in [
        "",
        "garbage",
        good,
        &format!("SHA256={good}"),
        &format!("sha256={}", &good[..62]),
        &format!("sha256={good}00"),
        &format!("sha256={}zz", &good[..62]),
        &long,
    ] {
        let mut h = HeaderMap::new();
        h.insert("x-signature", HeaderValue::from_str(bad).unwrap());
        assert_eq!(
            c.check(&h, c.body, T),
            Err(Failure::MalformedSignature),
            "{bad:?}"
        );
    }
    let c = ts_id_sha256_base64();
    for (name, value) in [
        (
            "x-webhook-signature",
            "v1,EtXXIZ7nV61UjvJWGf5NjcNnIKnL9HZj6QXWmYru+yE",
        ),
        (
            "x-webhook-signature",
            "v1,EtXXIZ7nV61UjvJWGf5NjcNnIKnL9HZj6QXWmYru-yE=",
        ),
        (
            "x-webhook-signature",
            "EtXXIZ7nV61UjvJWGf5NjcNnIKnL9HZj6QXWmYru+yE=",
        ),
        ("x-webhook-timestamp", "abc"),
        ("x-webhook-timestamp", "-1700000000"),
        ("x-webhook-timestamp", "1700000000000"),
        ("x-webhook-id", ""),
    ] {
        let mut h = c.map();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        assert_eq!(
            c.check(&h, c.body, T),
            Err(Failure::MalformedSignature),
            "{name}: {value:?}"
        );
    }
}

#[test]
fn templates_are_validated() {
    let build = |template: &str, ts: Option<&str>, id: Option<&str>| {
        GenericHmac::new(opts(
            "X-Sig",
            "",
            Encoding::Hex,
            Algorithm::Sha256,
            template,
            ts,
            id,
        ))
    };
    for (template, ts, id, says) in [
        ("", None, None, "{body} exactly once"),
        ("{timestamp}", Some("x-ts"), None, "{body} exactly once"),
        ("{body}{body}", None, None, "{body} exactly once"),
        ("{timestamp}.{body}", None, None, "no timestamp_header"),
        ("{body}", Some("x-ts"), None, "does not use {timestamp}"),
        ("{id}.{body}", None, None, "no id_header"),
        ("{body}", None, Some("x-id"), "does not use {id}"),
        ("{ts}.{body}", None, None, "unknown placeholder `{ts}`"),
        ("{BODY}", None, None, "unknown placeholder `{BODY}`"),
        (
            "{url}{form_sorted}{body}",
            None,
            None,
            "{body} exactly once",
        ),
        ("{url}", None, None, "{body} exactly once"),
        ("{{body}}", None, None, "unknown placeholder `{{body}`"),
        ("{body", None, None, "without a closing"),
        ("{body}}", None, None, "without an opening"),
        ("x}{body}", None, None, "without an opening"),
    ] {
        let err = build(template, ts, id).unwrap_err();
        assert!(err.contains(says), "{template:?}: {err}");
    }
    // Several uses of {timestamp} or {id} are fine.
    let ok = build(
        "{id}:{timestamp}:{body}:{timestamp}",
        Some("x-ts"),
        Some("x-id"),
    );
    assert!(ok.is_ok());
}

#[test]
fn method_url_and_form_sorted_parts() {
    // Twilio's scheme through the generic one: `{url}{form_sorted}`,
    // HMAC-SHA1, base64. Twilio's own security-page vector.
    let s = GenericHmac::new(opts(
        "X-Twilio-Signature",
        "",
        Encoding::Base64,
        Algorithm::Sha1,
        "{url}{form_sorted}",
        None,
        None,
    ))
    .unwrap();
    assert!(s.needs_public_url());
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    let body: &[u8] = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
    let mut h = HeaderMap::new();
    h.insert(
        "x-twilio-signature",
        HeaderValue::from_static("0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
    );
    let keys = [Key::new("12345")];
    let req = SignedRequest::new("POST", &h, body).with_url(Some(url));
    assert!(crate::verify::verify(&s, &req, &keys, T, TOL).is_ok());
    let other =
        SignedRequest::new("POST", &h, body).with_url(Some("https://mycompany.com/myapp.php"));
    assert_eq!(
        crate::verify::verify(&s, &other, &keys, T, TOL),
        Err(Failure::SignatureMismatch)
    );
    let none = SignedRequest::new("POST", &h, body);
    assert_eq!(
        crate::verify::verify(&s, &none, &keys, T, TOL),
        Err(Failure::SignatureMismatch)
    );

    // HubSpot v3's bytes: `{method}{url}{body}{timestamp}` (its timestamp
    // is in milliseconds, so only the bytes are checked here).
    let s = GenericHmac::new(opts(
        "X-Sig",
        "",
        Encoding::Hex,
        Algorithm::Sha256,
        "{method} {url} {body}",
        None,
        None,
    ))
    .unwrap();
    let d = |method| Delivery {
        method,
        url: Some(url),
        body: b"{}",
        timestamp: T,
        id: "",
    };
    let key = Key::new("k");
    let post = s.sign_delivery(&key, &d("POST")).unwrap();
    let mut h = HeaderMap::new();
    h.insert("x-sig", HeaderValue::from_str(&post.headers[0].1).unwrap());
    let req = |m| SignedRequest::new(m, &h, b"{}").with_url(Some(url));
    assert!(crate::verify::verify(&s, &req("POST"), std::slice::from_ref(&key), T, TOL).is_ok());
    assert_eq!(
        crate::verify::verify(&s, &req("PUT"), std::slice::from_ref(&key), T, TOL),
        Err(Failure::SignatureMismatch)
    );
    assert!(s
        .sign_delivery(
            &key,
            &Delivery {
                url: None,
                ..d("POST")
            }
        )
        .is_err());
}

#[test]
fn template_parts_are_split_once() {
    let s = GenericHmac::new(opts(
        "X-Sig",
        "",
        Encoding::Hex,
        Algorithm::Sha256,
        "v=1;{body};id={id}",
        None,
        Some("X-Id"),
    ))
    .unwrap();
    assert_eq!(
        s.parts,
        vec![
            Part::Literal(b"v=1;".to_vec().into()),
            Part::Body,
            Part::Literal(b";id=".to_vec().into()),
            Part::Id,
        ]
    );
}

#[test]
fn header_names_and_prefix_are_validated() {
    let build = |header: &str, prefix: &str, ts: Option<&str>, id: Option<&str>| {
        let template = match (ts, id) {
            (Some(_), Some(_)) => "{id}.{timestamp}.{body}",
            (Some(_), None) => "{timestamp}.{body}",
            (None, Some(_)) => "{id}.{body}",
            (None, None) => "{body}",
        };
        GenericHmac::new(opts(
            header,
            prefix,
            Encoding::Hex,
            Algorithm::Sha256,
            template,
            ts,
            id,
        ))
    };
    for (header, ts, id, says) in [
        ("", None, None, "header: `` is not a valid header name"),
        ("X Sig", None, None, "not a valid header name"),
        ("X-Sig:", None, None, "not a valid header name"),
        ("X-Sig", Some("x(ts)"), None, "timestamp_header"),
        ("X-Sig", None, Some("x\nid"), "id_header"),
        ("X-Sig", Some("x-sig"), None, "used twice"),
        ("X-Sig", Some("X-T"), Some("x-t"), "used twice"),
    ] {
        let err = build(header, "", ts, id).unwrap_err();
        assert!(err.contains(says), "{header:?} {ts:?} {id:?}: {err}");
    }
    for prefix in [" sha256=", "sha256=\t", "sigé=", "a\nb"] {
        let err = build("X-Sig", prefix, None, None).unwrap_err();
        assert!(err.contains("prefix"), "{prefix:?}: {err}");
    }
    assert!(build("X-Sig", "HMAC sha256=", None, None).is_ok());
}

proptest! {
    #[test]
    fn any_changed_body_byte_is_rejected(which in 0usize..7, pos in 0usize..1024, flip in 1u8..=255) {
        let c = cases().swap_remove(which);
        let mut body = c.body.to_vec();
        let pos = pos % body.len();
        body[pos] ^= flip;
        prop_assert_eq!(c.check(&c.map(), &body, c.timestamp), Err(Failure::SignatureMismatch));
    }

    #[test]
    fn arbitrary_headers_never_panic(sig in "\\PC{0,200}", ts in "\\PC{0,20}", id in "\\PC{0,40}") {
        let c = ts_id_sha256_base64();
        if let (Ok(s), Ok(t), Ok(i)) = (HeaderValue::from_str(&sig), HeaderValue::from_str(&ts), HeaderValue::from_str(&id)) {
            let mut h = HeaderMap::new();
            h.insert("x-webhook-signature", s);
            h.insert("x-webhook-timestamp", t);
            h.insert("x-webhook-id", i);
            let _ = c.check(&h, c.body, T);
        }
    }

    #[test]
    fn arbitrary_templates_never_panic(template in "[{}a-z.]{0,40}") {
        let _ = GenericHmac::new(opts("X-Sig", "", Encoding::Hex, Algorithm::Sha256, &template, Some("x-ts"), Some("x-id")));
    }
}
