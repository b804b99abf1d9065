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
#[path = "generic_tests.rs"]
mod tests;
