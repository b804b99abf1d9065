//! Discord (interactions endpoint and webhook events): `X-Signature-Ed25519:
//! <hex, 64 bytes>` and `X-Signature-Timestamp`, an Ed25519 signature of
//! `<timestamp text><raw body>` made with the application's private key,
//! verified with its public key in the hex form the developer portal shows
//! ("Public Key", 64 hex digits) under `verify.public_keys`. The timestamp
//! is signed; Discord does not document its format, but it is Unix seconds
//! in every delivery observed, so freshness is enforced on it (anything else
//! is malformed). No delivery id header (an interaction's `id` is in the
//! body).
//!
//! Discord probes the endpoint with badly signed requests and removes it
//! unless they are refused with `401`.
//!
//! Setup handshakes (signed): the interactions PING (`{"type":1,…}`, no
//! `event`) is answered `200 {"type":1}`; the webhook-events PING
//! (`{"type":0,…}`) is answered `204`. Both only after the request verified.
//!
//! Sources: <https://discord.com/developers/docs/interactions/overview>
//! (headers, signed bytes, PING, 401), <https://discord.com/developers/docs/events/webhook-events>
//! (webhook events, type 0 PING, 204); the official library
//! `discord-interactions` (`verifyKey(rawBody, signature, timestamp, publicKey)`).

use http::HeaderMap;

use super::public_key::{
    ed25519_position, ed25519_private, ed25519_public, ed25519_public_of, ed25519_sign,
};
use super::{
    decode_hex, header_str, parse_timestamp, Delivery, Failure, HandshakeReply, Key, KeyKind,
    Scheme, SignatureHeader, Signed, SignedRequest,
};

/// The `discord` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct Discord;

const HEADER: &str = "x-signature-ed25519";
const TIMESTAMP_HEADER: &str = "x-signature-timestamp";

fn message(ts: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(ts.len() + body.len());
    m.extend_from_slice(ts.as_bytes());
    m.extend_from_slice(body);
    m
}

fn hex_key(text: &str, what: &str) -> Result<Vec<u8>, String> {
    hex::decode(text.trim()).map_err(|_| format!("the Discord {what} is not hex"))
}

impl Scheme for Discord {
    fn name(&self) -> &'static str {
        "discord"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![HEADER]
    }

    fn id_header(&self) -> Option<&str> {
        None
    }

    fn signs_timestamp(&self) -> bool {
        true
    }

    fn key_kinds(&self) -> &'static [KeyKind] {
        &[KeyKind::PublicKey]
    }

    fn derive_public_key(&self, public_key: &str) -> Result<Key, String> {
        ed25519_public(&hex_key(public_key, "public key")?)
    }

    fn derive_private_key(&self, private_key: &str) -> Result<Key, String> {
        ed25519_private(&hex_key(private_key, "private key")?)
    }

    fn public_key_for(&self, private: &Key) -> Option<Key> {
        ed25519_public_of(private)
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        let sig = header_str(headers, HEADER)?.ok_or(Failure::MissingSignature)?;
        let ts = header_str(headers, TIMESTAMP_HEADER)?.ok_or(Failure::MissingSignature)?;
        Ok(SignatureHeader {
            timestamp: Some(parse_timestamp(ts)?),
            timestamp_text: Some(ts.to_string()),
            signatures: vec![decode_hex(sig.trim(), 64)?],
            ..Default::default()
        })
    }

    fn matches(
        &self,
        key: &Key,
        header: &SignatureHeader,
        req: &SignedRequest<'_>,
    ) -> Option<usize> {
        let ts = header.timestamp_text.as_deref()?;
        ed25519_position(key, &message(ts, req.body), &header.signatures)
    }

    fn has_handshake(&self) -> bool {
        true
    }

    fn handshake(&self, req: &SignedRequest<'_>, _key: &Key) -> Option<HandshakeReply> {
        let doc: serde_json::Value = serde_json::from_slice(req.body).ok()?;
        match doc.get("type")?.as_i64()? {
            1 if doc.get("event").is_none() => {
                Some(HandshakeReply::json(&serde_json::json!({"type": 1})))
            }
            0 => Some(HandshakeReply {
                status: 204,
                content_type: None,
                body: Vec::new(),
            }),
            _ => None,
        }
    }

    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        if key.kind() != KeyKind::PrivateKey {
            return Err("discord signs with the application's private key: give --private-key FILE (hex Ed25519 seed)".into());
        }
        let ts = d.timestamp.to_string();
        let sig = ed25519_sign(key, &message(&ts, d.body))?;
        Ok(Signed::headers(vec![
            ("X-Signature-Ed25519".to_string(), hex::encode(sig)),
            ("X-Signature-Timestamp".to_string(), ts),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    // Discord publishes no vector (its library's tests use random keys). An
    // SDK vector: signed with the RFC 8032 §7.1 test-1 key, then checked with
    // the official library, npm `discord-interactions` 4.4.0:
    //   await verifyKey('{"type":1}', SIG, "1700000000", PUBLIC)   // true
    //   await verifyKey('{"type":2}', SIG, "1700000000", PUBLIC)   // false
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const OTHER: &str = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
    const T: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"type":1}"#;
    const SIG: &str = "1695961a47c91a1ec033b819b7e87e3dbc583dd0cee6d1fd0216f58ac87b6228ae531ddbf91fb7bc28d7edf7f08604da16f54624f38a6bc0614e4dc13cd47f0f";

    fn case() -> Case {
        Case::new(
            &Discord,
            vec![Discord.derive_public_key(PUBLIC).unwrap()],
            &[(HEADER, SIG), (TIMESTAMP_HEADER, "1700000000")],
            BODY,
            T,
        )
    }

    #[test]
    fn sdk_vector_and_standard_failures() {
        let c = case();
        assert_eq!(
            c.check().map(|v| v.signature),
            Ok(hex::decode(SIG).unwrap())
        );
        c.assert_standard(Discord.derive_public_key(OTHER).unwrap());
        assert_eq!(
            c.with_header(TIMESTAMP_HEADER, "1700000001").check(),
            Err(Failure::SignatureMismatch)
        );
        assert_eq!(
            c.without_header(TIMESTAMP_HEADER).check(),
            Err(Failure::MissingSignature)
        );
        c.assert_malformed(HEADER, &["", &SIG[..126], &format!("{SIG}00"), "zz"]);
        c.assert_malformed(TIMESTAMP_HEADER, &["", "2023-11-14T22:13:20Z", "-1"]);
        let private = Discord.derive_private_key(SEED).unwrap();
        let signed = Discord.sign(&private, BODY, T, "");
        assert_eq!(signed[0].1, SIG);
    }

    #[test]
    fn keys_are_the_hex_the_portal_shows() {
        assert_eq!(Discord.key_kinds(), &[KeyKind::PublicKey]);
        assert!(Discord
            .derive_key("a-secret")
            .unwrap_err()
            .contains("public_keys"));
        assert!(Discord.derive_public_key("zz").is_err());
        assert!(Discord.derive_public_key(&PUBLIC[..62]).is_err());
        // A secret-kind key never verifies; signing needs the private key.
        let mut c = case();
        c.keys = vec![Key::new(hex::decode(PUBLIC).unwrap())];
        assert_eq!(c.check(), Err(Failure::SignatureMismatch));
        assert!(Discord.sign(&c.keys[0], BODY, T, "").is_empty());
    }

    #[test]
    fn pings_are_answered() {
        let h = HeaderMap::new();
        let key = Discord.derive_public_key(PUBLIC).unwrap();
        let reply = |body: &[u8]| Discord.handshake(&SignedRequest::new("POST", &h, body), &key);
        let r = reply(br#"{"type":1,"id":"1","application_id":"2","version":1}"#).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &br#"{"type":1}"#[..]));
        let r = reply(br#"{"version":1,"application_id":"2","type":0}"#).unwrap();
        assert_eq!((r.status, r.body.len()), (204, 0));
        assert!(reply(br#"{"type":2,"data":{}}"#).is_none());
        assert!(
            reply(br#"{"version":1,"type":1,"event":{"type":"APPLICATION_AUTHORIZED"}}"#).is_none()
        );
    }
}
