//! Dropbox: `X-Dropbox-Signature: <hex>`, HMAC-SHA256 with the app secret's
//! UTF-8 bytes over the raw body. No timestamp, no delivery id: a
//! notification only says "these accounts changed, re-sync", and the same
//! body is sent again whenever they change again, so the signature does not
//! identify a delivery ([`Scheme::signature_identifies_delivery`] is false).
//!
//! Setup handshake (unsigned): `GET <url>?challenge=<value>` must be answered
//! `200` with the value echoed as `text/plain` (and `X-Content-Type-Options:
//! nosniff`). It is answered without any key: it echoes, it never signs.
//! Only a short value of URL-safe characters is echoed.
//!
//! Source: <https://www.dropbox.com/developers/reference/webhooks>
//! (signature header, key, signed bytes, the challenge and its answer).

use http::HeaderMap;

use super::body_mac::BodyMac;
use super::{
    require_secret, Algorithm, Delivery, Encoding, Failure, HandshakeReply, Key, Scheme,
    SignatureHeader, Signed, SignedRequest,
};

/// The `dropbox` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Dropbox;

const MAC: BodyMac = BodyMac {
    header: "x-dropbox-signature",
    header_display: "X-Dropbox-Signature",
    prefix: "",
    encoding: Encoding::Hex,
    algorithm: Algorithm::Sha256,
    list: None,
};

/// The longest challenge echoed.
const MAX_CHALLENGE: usize = 256;

/// The `challenge` query parameter, if it is the only one and looks like a
/// challenge (URL-safe characters, bounded length).
fn challenge(query: Option<&str>) -> Option<&str> {
    let value = query?.strip_prefix("challenge=")?;
    let ok = !value.is_empty()
        && value.len() <= MAX_CHALLENGE
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
    ok.then_some(value)
}

impl Scheme for Dropbox {
    fn name(&self) -> &'static str {
        "dropbox"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![MAC.header]
    }

    fn id_header(&self) -> Option<&str> {
        None
    }

    fn signs_timestamp(&self) -> bool {
        false
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        MAC.parse(headers)
    }

    fn mac(&self, key: &Key, _header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        MAC.mac(key, req.body)
    }

    fn signature_identifies_delivery(&self) -> bool {
        false
    }

    fn has_handshake(&self) -> bool {
        true
    }

    fn may_be_unsigned_handshake(
        &self,
        method: &str,
        _headers: &HeaderMap,
        query: Option<&str>,
    ) -> bool {
        method == "GET" && challenge(query).is_some()
    }

    fn unsigned_handshake(&self, req: &SignedRequest<'_>) -> Option<HandshakeReply> {
        if req.method != "GET" || !req.body.is_empty() {
            return None;
        }
        challenge(req.query).map(|c| HandshakeReply {
            status: 200,
            content_type: Some("text/plain"),
            body: c.as_bytes().to_vec(),
        })
    }

    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        Ok(Signed::headers(vec![MAC.sign(key, d.body)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    // Dropbox publishes no vector and has no SDK verify function. Computed
    // with Python's `hmac` (independent of this code):
    // hmac.new(b"dropbox_app_secret", BODY, hashlib.sha256).hexdigest()
    const SECRET: &str = "dropbox_app_secret";
    const BODY: &[u8] =
        br#"{"list_folder": {"accounts": ["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"]}}"#;
    const SIG: &str = "457b782729cd87c63befb591a7056d4a2c4579e32e8033321fbffefd23331c10";

    fn case() -> Case {
        Case::new(
            &Dropbox,
            vec![Key::new(SECRET)],
            &[("X-Dropbox-Signature", SIG)],
            BODY,
            1_700_000_000,
        )
    }

    #[test]
    fn vector_and_standard_failures() {
        let c = case();
        assert_eq!(c.check().map(|v| v.signature), Ok(Vec::new()));
        c.assert_standard(Key::new("other"));
        c.assert_malformed(
            "x-dropbox-signature",
            &["", "sha256=00", &SIG[..62], &format!("{SIG}00"), "zz"],
        );
        assert_eq!(Dropbox.sign(&Key::new(SECRET), BODY, 0, "")[0].1, SIG);
    }

    #[test]
    fn challenge_is_echoed_only_when_it_looks_like_one() {
        let h = HeaderMap::new();
        let get = |q: &'static str| SignedRequest::new("GET", &h, b"").with_query(Some(q));
        let reply = Dropbox
            .unsigned_handshake(&get("challenge=abc-DEF_123"))
            .unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_type, Some("text/plain"));
        assert_eq!(reply.body, b"abc-DEF_123");
        assert!(Dropbox.may_be_unsigned_handshake("GET", &h, Some("challenge=abc")));
        for bad in [
            "challenge=",
            "challenge=<script>",
            "challenge=a%20b",
            "challenge=a&x=1",
            "other=1",
            "challenge=a b",
        ] {
            assert!(Dropbox.unsigned_handshake(&get(bad)).is_none(), "{bad}");
        }
        let long = format!("challenge={}", "a".repeat(300));
        let req = SignedRequest::new("GET", &h, b"").with_query(Some(&long));
        assert!(Dropbox.unsigned_handshake(&req).is_none());
        let post = SignedRequest::new("POST", &h, b"").with_query(Some("challenge=abc"));
        assert!(Dropbox.unsigned_handshake(&post).is_none());
        assert!(!Dropbox.may_be_unsigned_handshake("POST", &h, Some("challenge=abc")));
    }
}
