//! WooCommerce: `X-WC-Webhook-Signature: <base64>`, HMAC-SHA256 over the raw
//! body (the JSON WooCommerce sends), standard padded base64, no prefix. The
//! key is the webhook's secret after WordPress's
//! `wp_specialchars_decode(secret, ENT_QUOTES)`: `&amp;`, `&lt;`, `&gt;`,
//! `&quot;` and `&#039;` (and their numeric forms) become `&`, `<`, `>`,
//! `"`, `'`, so a secret typed with those characters is used as WordPress
//! uses it. No timestamp. `X-WC-Webhook-Delivery-ID` is new for every
//! delivery (WooCommerce has no automatic retries), so it tells deliveries
//! apart but does not survive a manual re-send.
//!
//! Setup handshake (unsigned): when a webhook is created, WooCommerce POSTs
//! `webhook_id=<id>` with no `X-WC-*` header and needs exactly `200`, or the
//! webhook is not saved. hookgate answers it itself (nothing forwarded,
//! nothing signed): only a body that is exactly `webhook_id=<digits>`.
//!
//! Source: woocommerce `plugins/woocommerce/includes/class-wc-webhook.php`
//! (<https://github.com/woocommerce/woocommerce/blob/trunk/plugins/woocommerce/includes/class-wc-webhook.php>):
//! `get_delivery_headers`, `generate_signature`, `deliver_ping`.

use http::HeaderMap;

use super::body_mac::BodyMac;
use super::{
    require_secret, Algorithm, Delivery, Encoding, Failure, HandshakeReply, Key, Scheme,
    SignatureHeader, Signed, SignedRequest,
};

/// The `woocommerce` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct WooCommerce;

const MAC: BodyMac = BodyMac {
    header: "x-wc-webhook-signature",
    header_display: "X-WC-Webhook-Signature",
    prefix: "",
    encoding: Encoding::Base64,
    algorithm: Algorithm::Sha256,
    list: None,
};

const ID_HEADER: &str = "x-wc-webhook-delivery-id";

/// The longest creation ping: `webhook_id=` and up to 20 digits.
const MAX_PING: usize = 31;

/// `wp_specialchars_decode($secret, ENT_QUOTES)`.
fn specialchars_decode(s: &str) -> String {
    const ENTITIES: &[(&str, char)] = &[
        ("&amp;", '&'),
        ("&#038;", '&'),
        ("&#x26;", '&'),
        ("&lt;", '<'),
        ("&#060;", '<'),
        ("&#x3c;", '<'),
        ("&gt;", '>'),
        ("&#062;", '>'),
        ("&#x3e;", '>'),
        ("&quot;", '"'),
        ("&#034;", '"'),
        ("&#x22;", '"'),
        ("&#039;", '\''),
        ("&#39;", '\''),
        ("&#x27;", '\''),
    ];
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        match ENTITIES
            .iter()
            .find(|(e, _)| tail.len() >= e.len() && tail[..e.len()].eq_ignore_ascii_case(e))
        {
            Some((e, c)) => {
                out.push(*c);
                rest = &tail[e.len()..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `body` is WooCommerce's creation ping, `webhook_id=<digits>`.
fn is_ping(body: &[u8]) -> bool {
    body.strip_prefix(b"webhook_id=")
        .is_some_and(|id| (1..=20).contains(&id.len()) && id.iter().all(u8::is_ascii_digit))
}

impl Scheme for WooCommerce {
    fn name(&self) -> &'static str {
        "woocommerce"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![MAC.header]
    }

    fn id_header(&self) -> Option<&str> {
        Some(ID_HEADER)
    }

    fn signs_timestamp(&self) -> bool {
        false
    }

    fn derive_key(&self, secret: &str) -> Result<Key, String> {
        Ok(Key::new(specialchars_decode(secret)))
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        MAC.parse(headers)
    }

    fn mac(&self, key: &Key, _header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        MAC.mac(key, req.body)
    }

    fn has_handshake(&self) -> bool {
        true
    }

    /// A short `POST` without a signature header: perhaps the creation
    /// ping. Only a declared length of at most 31 bytes qualifies,
    /// so an unsigned request cannot make the gateway read a large body.
    fn may_be_unsigned_handshake(
        &self,
        method: &str,
        headers: &HeaderMap,
        _query: Option<&str>,
    ) -> bool {
        let short = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok())
            .is_some_and(|n| n <= MAX_PING);
        method == "POST" && short && !headers.contains_key(MAC.header)
    }

    fn unsigned_handshake(&self, req: &SignedRequest<'_>) -> Option<HandshakeReply> {
        (req.method == "POST" && !req.headers.contains_key(MAC.header) && is_ping(req.body)).then(
            || HandshakeReply {
                status: 200,
                content_type: None,
                body: Vec::new(),
            },
        )
    }

    /// The signature header, plus the delivery id when it is not empty.
    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let mut headers = vec![MAC.sign(key, d.body)];
        if !d.id.is_empty() {
            headers.push(("X-WC-Webhook-Delivery-ID".to_string(), d.id.to_string()));
        }
        Ok(Signed::headers(headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    // WooCommerce publishes no vector; its reference is PHP's
    // base64_encode(hash_hmac('sha256', $payload, $secret, true)).
    // Computed with Python's `hmac` and `base64` (independent of this code):
    // base64.b64encode(hmac.new(b"wc_secret", b'{"id":1}', hashlib.sha256).digest())
    const SECRET: &str = "wc_secret";
    const BODY: &[u8] = br#"{"id":1}"#;
    const SIG: &str = "hlMElbkJLWYXum9slTStkeWEeaQIrhf52NjjlrWgua0=";

    #[test]
    fn vector_and_standard_failures() {
        let key = WooCommerce.derive_key(SECRET).unwrap();
        let c = Case::new(
            &WooCommerce,
            vec![key.clone()],
            &[
                ("X-WC-Webhook-Signature", SIG),
                ("X-WC-Webhook-Delivery-ID", "d1"),
            ],
            BODY,
            1_700_000_000,
        );
        c.assert_standard(Key::new("other"));
        c.assert_malformed(
            "x-wc-webhook-signature",
            &[
                "",
                "sha256=abc",
                &SIG[..43],
                "hlMElbkJLWYXum9slTStkeWEeaQIrhf52NjjlrWgua0",
            ],
        );
        assert_eq!(WooCommerce.sign(&key, BODY, 0, "")[0].1, SIG);
    }

    #[test]
    fn secret_is_html_entity_decoded_as_wordpress_does() {
        let k = |s| WooCommerce.derive_key(s).unwrap();
        assert_eq!(
            k("a&amp;b&lt;c&gt;d&quot;e&#039;f"),
            Key::new("a&b<c>d\"e'f")
        );
        assert_eq!(k("plain"), Key::new("plain"));
        assert_eq!(k("a&b&amp"), Key::new("a&b&amp"));
        assert_eq!(k("&AMP;"), Key::new("&"));
    }

    #[test]
    fn creation_ping_is_acknowledged_only_as_it_is_sent() {
        let h = HeaderMap::new();
        let ping = |body: &'static [u8]| SignedRequest::new("POST", &h, body);
        let reply = WooCommerce
            .unsigned_handshake(&ping(b"webhook_id=42"))
            .unwrap();
        assert_eq!((reply.status, reply.body.len()), (200, 0));
        let short = crate::verify::testing::header_map(&[("content-length", "13")]);
        assert!(WooCommerce.may_be_unsigned_handshake("POST", &short, None));
        // No declared length, or a long one: rejected before the body.
        assert!(!WooCommerce.may_be_unsigned_handshake("POST", &h, None));
        let long = crate::verify::testing::header_map(&[("content-length", "100000")]);
        assert!(!WooCommerce.may_be_unsigned_handshake("POST", &long, None));
        for bad in [
            &b"webhook_id="[..],
            b"webhook_id=4a",
            b"webhook_id=42&x=1",
            b"{\"webhook_id\":42}",
            b"",
        ] {
            assert!(
                WooCommerce.unsigned_handshake(&ping(bad)).is_none(),
                "{bad:?}"
            );
        }
        // A signed request is never a ping.
        let signed = crate::verify::testing::header_map(&[("x-wc-webhook-signature", SIG)]);
        let req = SignedRequest::new("POST", &signed, b"webhook_id=42");
        assert!(WooCommerce.unsigned_handshake(&req).is_none());
        let mut signed_short = signed.clone();
        signed_short.insert("content-length", http::HeaderValue::from_static("13"));
        assert!(!WooCommerce.may_be_unsigned_handshake("POST", &signed_short, None));
    }
}
