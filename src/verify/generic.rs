//! Generic HMAC (`hmac`): one signature header holding `<prefix><hex|base64>`
//! of HMAC-SHA1/256/512, with the secret's UTF-8 bytes as key, over bytes
//! described by a template of literals and placeholders: `{body}`,
//! `{timestamp}` and `{id}` (values from configured headers), `{method}`
//! (the request method), `{url}` (the route's public URL with the query as
//! received: the route then needs `verify.public_url`) and `{form_sorted}`
//! (the body's form parameters, names sorted, each name then its value, as
//! Twilio signs them). For senders that have no dedicated scheme; built
//! from [`GenericOptions`], not by name.

use base64::Engine as _;
use http::{HeaderMap, HeaderName};

use super::twilio::sorted_params;
use super::{
    decode_base64, decode_hex, header_str, parse_timestamp, require_secret, Algorithm, Delivery,
    Failure, Key, Scheme, SignatureHeader, Signed, SignedRequest,
};

/// How the signature is written in its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Hexadecimal, either case when read, lower case when written.
    Hex,
    /// Standard-alphabet base64 with `=` padding (RFC 4648 §4).
    Base64,
}

/// The configuration of a [`GenericHmac`] scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenericOptions {
    /// The signature header's name, e.g. `X-Signature` (any case).
    pub header: String,
    /// Text the header value must start with, removed before decoding, e.g.
    /// `sha256=`; compared case-sensitively. May be empty.
    pub prefix: String,
    /// How the signature is encoded after the prefix.
    pub encoding: Encoding,
    /// The HMAC's hash function.
    pub algorithm: Algorithm,
    /// The signed bytes: literal text with `{body}` or `{form_sorted}`
    /// (exactly one of them, once), and `{timestamp}`, `{id}`, `{method}`,
    /// `{url}` placeholders, e.g. `{timestamp}.{body}` or
    /// `{url}{form_sorted}`.
    /// There is no escape for a literal `{` or `}`.
    ///
    /// Placeholders next to each other with no separator (`{timestamp}{body}`)
    /// let bytes move from one value to the other under the same signature;
    /// use them only when that is what the sender does.
    pub template: String,
    /// The header holding the Unix-seconds timestamp for `{timestamp}`.
    /// Set exactly when the template uses `{timestamp}`; it then enables the
    /// freshness check.
    pub timestamp_header: Option<String>,
    /// The header holding the delivery id for `{id}`. Set exactly when the
    /// template uses `{id}`; it is also the scheme's id header for dedupe.
    pub id_header: Option<String>,
}

/// One piece of the template, resolved once at construction.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(Box<[u8]>),
    Body,
    Timestamp,
    Id,
    Method,
    Url,
    FormSorted,
}

/// A configurable HMAC scheme, see [`GenericOptions`].
///
/// Header names are stored lower-case, as [`HeaderMap`] lookups need.
#[derive(Clone, Debug)]
pub struct GenericHmac {
    header: String,
    prefix: String,
    encoding: Encoding,
    algorithm: Algorithm,
    parts: Vec<Part>,
    timestamp_header: Option<String>,
    id_header: Option<String>,
}

/// Validates a header name and returns it lower-case.
fn header_name(field: &str, name: &str) -> Result<String, String> {
    HeaderName::from_bytes(name.trim().as_bytes())
        .map(|h| h.as_str().to_string())
        .map_err(|_| format!("{field}: `{name}` is not a valid header name"))
}

/// Splits a template into literal and placeholder parts.
fn parse_template(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        literal.push_str(&rest[..i]);
        if rest[i..].starts_with('}') {
            return Err(format!(
                "template `{template}`: `}}` without an opening `{{`"
            ));
        }
        let after = &rest[i + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("template `{template}`: `{{` without a closing `}}`"))?;
        let part = match &after[..end] {
            "body" => Part::Body,
            "timestamp" => Part::Timestamp,
            "id" => Part::Id,
            "method" => Part::Method,
            "url" => Part::Url,
            "form_sorted" => Part::FormSorted,
            other => {
                return Err(format!(
                    "template `{template}`: unknown placeholder `{{{other}}}` \
                     (known: {{body}}, {{timestamp}}, {{id}}, {{method}}, {{url}}, {{form_sorted}})"
                ))
            }
        };
        if !literal.is_empty() {
            parts.push(Part::Literal(
                std::mem::take(&mut literal).into_bytes().into(),
            ));
        }
        parts.push(part);
        rest = &after[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Literal(literal.into_bytes().into()));
    }
    Ok(parts)
}

impl GenericHmac {
    /// Builds the scheme, checking that the header names are valid and
    /// distinct, that the prefix can appear in a header value, and that the
    /// template has `{body}` exactly once, `{timestamp}` exactly when
    /// `timestamp_header` is set, `{id}` exactly when `id_header` is set, and
    /// no other placeholder.
    pub fn new(o: GenericOptions) -> Result<Self, String> {
        let header = header_name("header", &o.header)?;
        let timestamp_header = o
            .timestamp_header
            .as_deref()
            .map(|h| header_name("timestamp_header", h))
            .transpose()?;
        let id_header = o
            .id_header
            .as_deref()
            .map(|h| header_name("id_header", h))
            .transpose()?;
        let mut names = vec![&header];
        names.extend(timestamp_header.iter());
        names.extend(id_header.iter());
        for (i, a) in names.iter().enumerate() {
            if names[i + 1..].contains(a) {
                return Err(format!(
                    "header `{a}` is used twice; the signature, timestamp and id headers must differ"
                ));
            }
        }

        // A header value is visible ASCII, and loses leading spaces in transit.
        if !o.prefix.bytes().all(|b| (0x20..0x7f).contains(&b)) || o.prefix.starts_with(' ') {
            return Err(format!(
                "prefix `{}` cannot start a header value: use printable ASCII, not starting with a space",
                o.prefix.escape_debug()
            ));
        }

        let parts = parse_template(&o.template)?;
        let count = |p: &Part| parts.iter().filter(|q| *q == p).count();
        if count(&Part::Body) + count(&Part::FormSorted) != 1 {
            return Err(format!(
                "template `{}` must contain {{body}} exactly once (or {{form_sorted}} instead)",
                o.template
            ));
        }
        // A placeholder needs its header, and a header its placeholder.
        for (part, name, has_header) in [
            (Part::Timestamp, "timestamp", timestamp_header.is_some()),
            (Part::Id, "id", id_header.is_some()),
        ] {
            match (count(&part) > 0, has_header) {
                (true, false) => {
                    return Err(format!(
                        "template `{}` uses {{{name}}} but no {name}_header is set",
                        o.template
                    ))
                }
                (false, true) => {
                    return Err(format!(
                        "{name}_header is set but template `{}` does not use {{{name}}}",
                        o.template
                    ))
                }
                _ => {}
            }
        }

        Ok(GenericHmac {
            header,
            prefix: o.prefix,
            encoding: o.encoding,
            algorithm: o.algorithm,
            parts,
            timestamp_header,
            id_header,
        })
    }

    /// Whether the template signs the public URL.
    fn uses_url(&self) -> bool {
        self.parts.contains(&Part::Url)
    }

    /// The MAC over the template with every value in place; empty (matches
    /// nothing) when the template uses `{url}` and there is none.
    fn mac_parts(
        &self,
        key: &Key,
        timestamp: Option<i64>,
        id: &str,
        req: &SignedRequest<'_>,
    ) -> Vec<u8> {
        if self.uses_url() && req.url.is_none() {
            return Vec::new();
        }
        let t = timestamp.map(|t| t.to_string()).unwrap_or_default();
        let form = if self.parts.contains(&Part::FormSorted) {
            match sorted_params(req.body) {
                Some(f) => f,
                None => return Vec::new(),
            }
        } else {
            Vec::new()
        };
        let pieces: Vec<&[u8]> = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Literal(l) => l,
                Part::Body => req.body,
                Part::Timestamp => t.as_bytes(),
                Part::Id => id.as_bytes(),
                Part::Method => req.method.as_bytes(),
                Part::Url => req.url.unwrap_or_default().as_bytes(),
                Part::FormSorted => &form,
            })
            .collect();
        self.algorithm.mac(key, &pieces)
    }
}

impl Scheme for GenericHmac {
    fn name(&self) -> &'static str {
        "hmac"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![&self.header]
    }

    fn id_header(&self) -> Option<&str> {
        self.id_header.as_deref()
    }

    fn signs_timestamp(&self) -> bool {
        self.timestamp_header.is_some()
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        let value = header_str(headers, &self.header)?.ok_or(Failure::MissingSignature)?;
        let encoded = value
            .trim()
            .strip_prefix(self.prefix.as_str())
            .ok_or(Failure::MalformedSignature)?;
        let len = self.algorithm.output_len();
        let signature = match self.encoding {
            Encoding::Hex => decode_hex(encoded, len)?,
            Encoding::Base64 => decode_base64(encoded, len)?,
        };
        let timestamp = match &self.timestamp_header {
            None => None,
            Some(name) => {
                let ts = header_str(headers, name)?.ok_or(Failure::MissingSignature)?;
                Some(parse_timestamp(ts.trim())?)
            }
        };
        let id = match &self.id_header {
            None => None,
            Some(name) => {
                let id = header_str(headers, name)?.ok_or(Failure::MissingSignature)?;
                if id.is_empty() {
                    return Err(Failure::MalformedSignature);
                }
                Some(id.to_string())
            }
        };
        Ok(SignatureHeader {
            timestamp,
            id,
            signatures: vec![signature],
            ..Default::default()
        })
    }

    fn needs_public_url(&self) -> bool {
        self.uses_url()
    }

    fn mac(&self, key: &Key, header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        let id = header.id.as_deref().unwrap_or_default();
        self.mac_parts(key, header.timestamp, id, req)
    }

    /// The id and timestamp headers (when configured), then the signature
    /// header; names lower-case.
    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        if self.uses_url() && d.url.is_none() {
            return Err("this template signs {url}: give the public URL".into());
        }
        Ok(Signed::headers(self.sign_headers(key, d)))
    }
}

impl GenericHmac {
    fn sign_headers(&self, key: &Key, d: &Delivery<'_>) -> Vec<(String, String)> {
        let (timestamp, id) = (d.timestamp, d.id);
        let headers = HeaderMap::new();
        let req = SignedRequest::new(d.method, &headers, d.body).with_url(d.url);
        let ts = self.timestamp_header.as_ref().map(|_| timestamp);
        let mac = self.mac_parts(key, ts, id, &req);
        let encoded = match self.encoding {
            Encoding::Hex => hex::encode(mac),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(mac),
        };
        let mut out = Vec::new();
        if let Some(h) = &self.id_header {
            out.push((h.clone(), id.to_string()));
        }
        if let Some(h) = &self.timestamp_header {
            out.push((h.clone(), timestamp.to_string()));
        }
        out.push((self.header.clone(), format!("{}{encoded}", self.prefix)));
        out
    }
}

#[cfg(test)]
mod tests {
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
        assert!(
            crate::verify::verify(&s, &req("POST"), std::slice::from_ref(&key), T, TOL).is_ok()
        );
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
}
