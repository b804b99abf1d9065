//! Twilio: `X-Twilio-Signature: <base64>`, HMAC-SHA1 with the account's
//! (primary) Auth Token as UTF-8 bytes over the URL Twilio requested
//! followed by the form parameters of the body: for each parameter name in
//! ascending byte order, the name then its decoded value, no separators (a
//! repeated name contributes each distinct value, values sorted). JSON
//! bodies are signed through the URL instead: Twilio adds
//! `bodySHA256=<hex SHA-256 of the raw body>` to the query and signs the
//! URL alone; hookgate checks both. No timestamp, no delivery id header.
//!
//! The URL is the public one the sender was given (`verify.public_url` plus
//! the request's query as received). As Twilio's SDKs do, a signature made
//! over the URL with its port removed (or with the default port added) is
//! accepted too, because Twilio is not consistent about ports.
//!
//! When a Webhooks Rule applies, Twilio signs with that rule's SharedKey
//! using HMAC-SHA256 and says so in `X-Twilio-Webhooks-Signature-Settings:
//! key=…,algorithm=HMAC_SHA256`; configure the SharedKey as another secret.
//!
//! Sorting and concatenating name+value pairs without separators is
//! Twilio's design: parameters can be reordered, and names and values
//! re-split (`a=1b` and `a1=b`), without changing the signature.
//!
//! Sources: <https://www.twilio.com/docs/usage/security> (the algorithm, the
//! official example), <https://www.twilio.com/docs/api/errors/57012> (JSON
//! bodies and `bodySHA256`); twilio-node `src/webhooks/webhooks.ts` and
//! `examples/WebhookSignatureValidation.md` (ports, repeated parameters,
//! the settings header).

use http::HeaderMap;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::{
    ct_position, decode_base64, header_str, require_secret, Algorithm, Delivery, Failure, Key,
    KeyKind, Scheme, SignatureHeader, Signed, SignedRequest,
};

/// The `twilio` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Twilio;

const HEADER: &str = "x-twilio-signature";
const SETTINGS_HEADER: &str = "x-twilio-webhooks-signature-settings";
const BODY_HASH: &str = "bodySHA256";

/// The HMAC a parsed signature was made with: its length says.
fn algorithm(header: &SignatureHeader) -> Option<Algorithm> {
    match header.signatures.first().map(Vec::len) {
        Some(20) => Some(Algorithm::Sha1),
        Some(32) => Some(Algorithm::Sha256),
        _ => None,
    }
}

/// The same URL with its port removed, or with the scheme's default port
/// added when it has none.
fn port_variant(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let (userinfo, hostport) = authority.split_at(host_start);
    let port_colon = hostport
        .rfind(':')
        .filter(|i| !hostport[*i..].contains(']'));
    let hostport = match port_colon {
        Some(i) => hostport[..i].to_string(),
        None => format!("{hostport}:{default}"),
    };
    Some(format!("{scheme}://{userinfo}{hostport}{tail}"))
}

/// The `bodySHA256` query parameter of `url`, if any.
fn body_hash_param(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == BODY_HASH)
        .map(|(_, v)| v.into_owned())
}

/// Decodes one `application/x-www-form-urlencoded` name or value: `+` is a
/// space, `%XX` a byte (a `%` not followed by two hex digits stays as is).
/// `None` unless the result is UTF-8: a lossy decoding would let different
/// bytes sign alike.
fn form_decode(s: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => match s.get(i + 1..i + 3).and_then(|h| {
                std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            }) {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The body's form parameters as Twilio concatenates them: names sorted,
/// each distinct value of a name sorted, `name` then `value`, nothing
/// between. `None` when a name or value is not UTF-8.
pub(crate) fn sorted_params(body: &[u8]) -> Option<Vec<u8>> {
    let mut pairs = Vec::new();
    for piece in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match piece.iter().position(|b| *b == b'=') {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &b""[..]),
        };
        pairs.push((form_decode(name)?, form_decode(value)?));
    }
    pairs.sort();
    pairs.dedup();
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    Some(out)
}

impl Scheme for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![HEADER]
    }

    fn id_header(&self) -> Option<&str> {
        None
    }

    fn signs_timestamp(&self) -> bool {
        false
    }

    fn needs_public_url(&self) -> bool {
        true
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        let value = header_str(headers, HEADER)?.ok_or(Failure::MissingSignature)?;
        let algorithm = match header_str(headers, SETTINGS_HEADER)? {
            None => Algorithm::Sha1,
            Some(settings) => {
                let alg = settings
                    .split(',')
                    .filter_map(|kv| kv.trim().split_once('='))
                    .find(|(k, _)| *k == "algorithm")
                    .map(|(_, v)| v);
                match alg {
                    Some("HMAC_SHA1") | None => Algorithm::Sha1,
                    Some("HMAC_SHA256") => Algorithm::Sha256,
                    Some(_) => return Err(Failure::MalformedSignature),
                }
            }
        };
        Ok(SignatureHeader {
            signatures: vec![decode_base64(value.trim(), algorithm.output_len())?],
            ..Default::default()
        })
    }

    /// Tries the URL as given and its port variant; for a URL carrying
    /// `bodySHA256`, the body must also hash to it.
    fn matches(
        &self,
        key: &Key,
        header: &SignatureHeader,
        req: &SignedRequest<'_>,
    ) -> Option<usize> {
        if key.kind() != KeyKind::Secret {
            return None;
        }
        let (url, alg) = (req.url?, algorithm(header)?);
        let body_hash = body_hash_param(url);
        let params = match body_hash {
            Some(_) => Vec::new(),
            None => sorted_params(req.body)?,
        };
        let candidates = [Some(url.to_string()), port_variant(url)];
        let found = candidates.iter().flatten().find_map(|u| {
            ct_position(&alg.mac(key, &[u.as_bytes(), &params]), &header.signatures)
        })?;
        match body_hash {
            None => Some(found),
            Some(expected) => {
                let actual = hex::encode(Sha256::digest(req.body));
                bool::from(actual.as_bytes().ct_eq(expected.as_bytes())).then_some(found)
            }
        }
    }

    /// A JSON body (starting with `{` or `[`) is signed the way Twilio signs
    /// JSON: `bodySHA256` is added to the URL, returned in [`Signed::url`].
    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let url = d.url.ok_or("twilio signs the URL: give the public URL")?;
        let json = d
            .body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| matches!(b, b'{' | b'['));
        let (url, new_url, params) = if json {
            let sep = if url.contains('?') { '&' } else { '?' };
            let u = format!(
                "{url}{sep}{BODY_HASH}={}",
                hex::encode(Sha256::digest(d.body))
            );
            (u.clone(), Some(u), Vec::new())
        } else {
            let params = sorted_params(d.body).ok_or("the form body is not UTF-8")?;
            (url.to_string(), None, params)
        };
        let sig = Algorithm::Sha1.mac(key, &[url.as_bytes(), &params]);
        Ok(Signed {
            headers: vec![(
                "X-Twilio-Signature".to_string(),
                super::body_mac::encode(super::Encoding::Base64, &sig),
            )],
            body: None,
            url: new_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    // The official vectors (Auth Token `12345`): Twilio's security page
    // example, and twilio-node's spec/validation.spec.js (form, port, JSON
    // with bodySHA256), recomputed with Python's `hmac`, `hashlib`, `base64`.
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const DOCS_BODY: &[u8] = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
    const DOCS_SIG: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
    const SDK_BODY: &[u8] = b"To=%2B18005551212&From=%2B14158675309&CallSid=CA1234567890ABCDE&Digits=1234&Caller=%2B14158675309";
    const SDK_SIG: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    const SDK_PORT_SIG: &str = "kvajT1Ptam85bY51eRf/AJRuM3w=";
    const JSON_BODY: &[u8] = br#"{"property": "value", "boolean": true}"#;
    const JSON_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    const JSON_SIG: &str = "a9nBmqA0ju/hNViExpshrM61xv4=";

    fn case(sig: &str, body: &[u8], url: &str) -> Case {
        Case::new(
            &Twilio,
            vec![Key::new(TOKEN)],
            &[("X-Twilio-Signature", sig)],
            body,
            1_700_000_000,
        )
        .url(url)
    }

    #[test]
    fn docs_vector_and_standard_failures() {
        let c = case(DOCS_SIG, DOCS_BODY, URL);
        c.assert_standard(Key::new("54321"));
        c.assert_malformed(
            HEADER,
            &[
                "",
                "0/KCTR6DLpKmkAf8muzZqo1nDgQ",
                "0_KCTR6DLpKmkAf8muzZqo1nDgQ=",
                "AAAA",
            ],
        );
        // Parameters reordered in the body: same signature (sorted).
        assert!(case(SDK_SIG, SDK_BODY, URL).check().is_ok());
        // The query is part of the URL.
        let other = URL.replace("foo=1", "foo=2");
        assert_eq!(
            case(DOCS_SIG, DOCS_BODY, &other).check(),
            Err(Failure::SignatureMismatch)
        );
        let sign = Twilio
            .sign_delivery(
                &Key::new(TOKEN),
                &Delivery {
                    method: "POST",
                    url: Some(URL),
                    body: DOCS_BODY,
                    timestamp: 0,
                    id: "",
                },
            )
            .unwrap();
        assert_eq!(sign.headers[0].1, DOCS_SIG);
    }

    #[test]
    fn port_variants_verify() {
        // Signed with :443, received at the URL without it, and back.
        assert!(case(SDK_PORT_SIG, SDK_BODY, URL).check().is_ok());
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert!(case(SDK_SIG, SDK_BODY, with_port).check().is_ok());
        assert_eq!(
            port_variant("http://u:p@h:8080/x?y").as_deref(),
            Some("http://u:p@h/x?y")
        );
        assert_eq!(
            port_variant("https://[::1]/x").as_deref(),
            Some("https://[::1]:443/x")
        );
    }

    #[test]
    fn json_bodies_are_signed_through_body_sha256() {
        let url = format!("{URL}&bodySHA256={JSON_HASH}");
        let c = case(JSON_SIG, JSON_BODY, &url);
        c.assert_standard(Key::new("54321"));
        // The body hash is checked, not only the URL signature.
        let mut t = c.clone();
        t.body = br#"{"property": "value", "boolean": false}"#.to_vec();
        assert_eq!(t.check(), Err(Failure::SignatureMismatch));
        // Other official JSON vectors.
        let bare = format!("https://mycompany.com/myapp.php?bodySHA256={JSON_HASH}");
        assert!(case("y77kIzt2vzLz71DgmJGsen2scGs=", JSON_BODY, &bare)
            .check()
            .is_ok());
        let s = Twilio
            .sign_delivery(
                &Key::new(TOKEN),
                &Delivery {
                    method: "POST",
                    url: Some(URL),
                    body: JSON_BODY,
                    timestamp: 0,
                    id: "",
                },
            )
            .unwrap();
        assert_eq!(
            (s.headers[0].1.as_str(), s.url.as_deref()),
            (JSON_SIG, Some(url.as_str()))
        );
    }

    #[test]
    fn shared_key_sha256_settings() {
        let key = Key::new("shared-key");
        let sig = super::super::body_mac::encode(
            super::super::Encoding::Base64,
            &Algorithm::Sha256.mac(&key, &[URL.as_bytes(), &sorted_params(DOCS_BODY).unwrap()]),
        );
        let mut c = case(&sig, DOCS_BODY, URL);
        c.keys = vec![Key::new(TOKEN), key];
        let c = c.with_header(SETTINGS_HEADER, "key=WS1,algorithm=HMAC_SHA256");
        assert_eq!(c.check().map(|v| v.key_index), Ok(1));
        c.assert_malformed(SETTINGS_HEADER, &["key=WS1,algorithm=MD5"]);
        // Without the settings header, a 32-byte signature is malformed.
        assert_eq!(
            c.without_header(SETTINGS_HEADER).check(),
            Err(Failure::MalformedSignature)
        );
    }

    #[test]
    fn repeated_parameters_contribute_each_distinct_value_sorted() {
        assert_eq!(sorted_params(b"b=2&a=1&b=1&b=2").unwrap(), b"a1b1b2");
        assert_eq!(sorted_params(b"a=%2B1+2&&c&d=%zz").unwrap(), b"a+1 2cd%zz");
        // Not UTF-8 once decoded: no signature can match.
        assert_eq!(sorted_params(b"a=%80"), None);
        assert_eq!(sorted_params(b"a=\xff"), None);
    }
}
