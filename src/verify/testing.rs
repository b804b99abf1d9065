//! Helpers for the schemes' unit tests.

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
