//! Standard Webhooks 1.0 (and Svix): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64> [v1,<base64>…]` (space-separated), or the
//! same three under `svix-`. HMAC-SHA256 over `<id>.<timestamp>.<raw body>`,
//! standard padded base64; the key is the base64 decoding of the secret after
//! its optional `whsec_` prefix. The id is signed, so it is a trustworthy
//! dedupe key.
//!
//! `v1a` entries are the spec's asymmetric signatures: Ed25519 over the same
//! `<id>.<timestamp>.<raw body>`, 64 bytes in padded base64, verified with
//! the sender's public key configured under `verify.public_keys` as
//! `whpk_<base64 of the raw 32-byte key>` (the matching private key is
//! `whsk_<base64 of the 32-byte seed>`). A route may hold secrets, public
//! keys or both; any valid entry is enough, and entries of other versions
//! (`v2`) are skipped. No reference library implements `v1a` yet, so its
//! vector below is computed, not published.
//!
//! Sources: the specification,
//! <https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>
//! (headers, signed content, `v1`/`v1a`, `whsec_`/`whpk_`/`whsk_` prefixes,
//! keys only from configuration); Svix's `svix-*` headers
//! <https://docs.svix.com/receiving/verifying-payloads/how-manual>.

use base64::Engine as _;
use http::HeaderMap;

use super::public_key::{
    ed25519_position, ed25519_private, ed25519_public, ed25519_public_of, ed25519_sign,
};
use super::{
    ct_position, decode_base64, header_str, parse_timestamp, require_secret, Algorithm, Delivery,
    Failure, Key, KeyKind, Scheme, SignatureHeader, Signed, SignedRequest, MAX_SIGNATURES,
};

/// The `standard-webhooks` scheme, which also accepts Svix's `svix-*`
/// headers when no `webhook-*` header is present.
#[derive(Clone, Copy, Debug, Default)]
pub struct StandardWebhooks;

/// One set of the three headers: (id, timestamp, signature).
type HeaderSet = (&'static str, &'static str, &'static str);

const WEBHOOK: HeaderSet = ("webhook-id", "webhook-timestamp", "webhook-signature");
const SVIX: HeaderSet = ("svix-id", "svix-timestamp", "svix-signature");

/// Secrets are shown to users as `whsec_<base64>`; the prefix is optional.
const SECRET_PREFIX: &str = "whsec_";
/// Ed25519 public keys: `whpk_<base64>`.
const PUBLIC_PREFIX: &str = "whpk_";
/// Ed25519 private keys: `whsk_<base64>`.
const PRIVATE_PREFIX: &str = "whsk_";
const ED25519_SIGNATURE_LEN: usize = 64;

/// The signed content as one buffer, for Ed25519.
fn content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let t = timestamp.to_string();
    let mut m = Vec::with_capacity(id.len() + t.len() + body.len() + 2);
    for part in [id.as_bytes(), b".", t.as_bytes(), b".", body] {
        m.extend_from_slice(part);
    }
    m
}

/// Base64 after a required prefix.
fn prefixed_key(text: &str, prefix: &str, what: &str) -> Result<Vec<u8>, String> {
    let b64 = text
        .trim()
        .strip_prefix(prefix)
        .ok_or_else(|| format!("a Standard Webhooks {what} starts with `{prefix}`"))?;
    SECRET_BASE64
        .decode(b64)
        .map_err(|_| format!("the Standard Webhooks {what} is not base64 after `{prefix}`"))
}

/// Base64 that accepts the secret with or without its `=` padding, as the
/// reference libraries do.
const SECRET_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The signed content, `<id>.<timestamp>.<body>`, without copying the body.
fn mac_id_t_body(key: &Key, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let t = timestamp.to_string();
    Algorithm::Sha256.mac(key, &[id.as_bytes(), b".", t.as_bytes(), b".", body])
}

/// Parses `v1,<b64> v1,<b64> v1a,<b64>`: keeps the decoded `v1` (32-byte
/// HMAC) and `v1a` (64-byte Ed25519) signatures; their lengths tell them
/// apart from then on.
fn parse_signatures(value: &str) -> Result<Vec<Vec<u8>>, Failure> {
    let mut signatures = Vec::new();
    for entry in value.split_ascii_whitespace() {
        let (version, sig) = entry.split_once(',').ok_or(Failure::MalformedSignature)?;
        let signature = match version {
            "v1" => decode_base64(sig, Algorithm::Sha256.output_len())?,
            // An asymmetric entry that is not a signature can never verify:
            // skipped like an unknown version, as before `v1a` was read.
            "v1a" => match decode_base64(sig, ED25519_SIGNATURE_LEN) {
                Ok(s) => s,
                Err(_) => continue,
            },
            _ => continue,
        };
        if signatures.len() == MAX_SIGNATURES {
            return Err(Failure::MalformedSignature);
        }
        signatures.push(signature);
    }
    if signatures.is_empty() {
        return Err(Failure::MalformedSignature);
    }
    Ok(signatures)
}

impl Scheme for StandardWebhooks {
    fn name(&self) -> &'static str {
        "standard-webhooks"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![WEBHOOK.2, SVIX.2]
    }

    fn id_header(&self) -> Option<&str> {
        Some(WEBHOOK.0)
    }

    fn signs_timestamp(&self) -> bool {
        true
    }

    /// Strips an optional `whsec_` prefix and base64-decodes the rest
    /// (padded or not). The error never repeats the secret.
    fn derive_key(&self, secret: &str) -> Result<Key, String> {
        let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        match SECRET_BASE64.decode(b64) {
            Ok(bytes) if !bytes.is_empty() => Ok(Key::new(bytes)),
            Ok(_) => Err("the Standard Webhooks secret is empty after its `whsec_` prefix".into()),
            Err(_) => Err(
                "the Standard Webhooks secret is not base64 after its optional `whsec_` prefix \
                 (expected the `whsec_…` value the sender shows)"
                    .into(),
            ),
        }
    }

    /// Reads the `webhook-*` set if any of its headers is present, otherwise
    /// the `svix-*` set; the two are never mixed. All three headers of the
    /// chosen set are needed.
    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        let uses_webhook = [WEBHOOK.0, WEBHOOK.1, WEBHOOK.2]
            .iter()
            .any(|h| headers.contains_key(*h));
        let (id_name, ts_name, sig_name) = if uses_webhook { WEBHOOK } else { SVIX };
        let id = header_str(headers, id_name)?.ok_or(Failure::MissingSignature)?;
        let ts = header_str(headers, ts_name)?.ok_or(Failure::MissingSignature)?;
        let sig = header_str(headers, sig_name)?.ok_or(Failure::MissingSignature)?;
        // The id is signed next to the timestamp with `.` between them: an id
        // holding a `.` could move the boundary, so the spec forbids it.
        if id.is_empty() || id.contains('.') {
            return Err(Failure::MalformedSignature);
        }
        let timestamp = parse_timestamp(ts)?;
        let signatures = parse_signatures(sig)?;
        Ok(SignatureHeader {
            timestamp: Some(timestamp),
            id: Some(id.to_string()),
            signatures,
            ..Default::default()
        })
    }

    fn key_kinds(&self) -> &'static [KeyKind] {
        &[KeyKind::Secret, KeyKind::PublicKey]
    }

    /// `whpk_<base64 of the raw 32-byte Ed25519 key>`.
    fn derive_public_key(&self, public_key: &str) -> Result<Key, String> {
        ed25519_public(&prefixed_key(public_key, PUBLIC_PREFIX, "public key")?)
    }

    /// `whsk_<base64 of the 32-byte seed>`.
    fn derive_private_key(&self, private_key: &str) -> Result<Key, String> {
        ed25519_private(&prefixed_key(private_key, PRIVATE_PREFIX, "private key")?)
    }

    fn public_key_for(&self, private: &Key) -> Option<Key> {
        ed25519_public_of(private)
    }

    fn mac(&self, key: &Key, header: &SignatureHeader, req: &SignedRequest<'_>) -> Vec<u8> {
        let body = req.body;
        let id = header.id.as_deref().unwrap_or_default();
        mac_id_t_body(key, id, header.timestamp.unwrap_or_default(), body)
    }

    /// Secrets check the `v1` entries (by MAC), public keys the `v1a`
    /// entries (by Ed25519).
    fn matches(
        &self,
        key: &Key,
        header: &SignatureHeader,
        req: &SignedRequest<'_>,
    ) -> Option<usize> {
        match key.kind() {
            KeyKind::Secret => ct_position(&self.mac(key, header, req), &header.signatures),
            KeyKind::PublicKey => {
                let id = header.id.as_deref()?;
                let message = content(id, header.timestamp?, req.body);
                ed25519_position(key, &message, &header.signatures)
            }
            KeyKind::PrivateKey => None,
        }
    }

    /// `v1` with a secret, `v1a` with a `whsk_` private key.
    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        let (body, timestamp, id) = (d.body, d.timestamp, d.id);
        match key.kind() {
            KeyKind::PrivateKey => {
                let sig = ed25519_sign(key, &content(id, timestamp, body))?;
                let sig = base64::engine::general_purpose::STANDARD.encode(sig);
                Ok(Signed::headers(vec![
                    (WEBHOOK.0.to_string(), id.to_string()),
                    (WEBHOOK.1.to_string(), timestamp.to_string()),
                    (WEBHOOK.2.to_string(), format!("v1a,{sig}")),
                ]))
            }
            _ => {
                require_secret(self, key)?;
                Ok(Signed::headers(self.sign_headers(key, body, timestamp, id)))
            }
        }
    }
}

impl StandardWebhooks {
    fn sign_headers(
        &self,
        key: &Key,
        body: &[u8],
        timestamp: i64,
        id: &str,
    ) -> Vec<(String, String)> {
        let sig = base64::engine::general_purpose::STANDARD
            .encode(mac_id_t_body(key, id, timestamp, body));
        vec![
            (WEBHOOK.0.to_string(), id.to_string()),
            (WEBHOOK.1.to_string(), timestamp.to_string()),
            (WEBHOOK.2.to_string(), format!("v1,{sig}")),
        ]
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

    // The official vector of the Standard Webhooks reference libraries'
    // `sign` tests (<https://github.com/standard-webhooks/standard-webhooks>), also used by
    // Svix-based providers. Recomputed with Python's `hmac` module.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const T: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    // The reference tests' negatives: a wrong signature, and the right one
    // with its last character changed.
    const WRONG: &str = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
    const FLIPPED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
    const TOL: Option<Duration> = Some(Duration::from_secs(300));

    fn set(names: HeaderSet, id: &str, ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(names.0, HeaderValue::from_str(id).unwrap());
        h.insert(names.1, HeaderValue::from_str(ts).unwrap());
        h.insert(names.2, HeaderValue::from_str(sig).unwrap());
        h
    }

    fn headers(sig: &str) -> HeaderMap {
        set(WEBHOOK, ID, &T.to_string(), sig)
    }

    fn keys() -> Vec<Key> {
        vec![StandardWebhooks.derive_key(SECRET).unwrap()]
    }

    fn check(h: &HeaderMap, body: &[u8], now: i64) -> Result<Verified, Failure> {
        verify(&StandardWebhooks, h, body, &keys(), now, TOL)
    }

    #[test]
    fn vector_verifies_and_yields_the_id() {
        assert_eq!(
            check(&headers(SIG), BODY, T),
            Ok(Verified {
                timestamp: Some(T),
                id: Some(ID.into()),
                key_index: 0,
                signature: base64::engine::general_purpose::STANDARD
                    .decode(&SIG[3..])
                    .unwrap()
            })
        );
    }

    #[test]
    fn svix_headers_verify_too() {
        let h = set(SVIX, ID, &T.to_string(), SIG);
        assert_eq!(check(&h, BODY, T).map(|v| v.id), Ok(Some(ID.to_string())));
    }

    #[test]
    fn sign_reproduces_the_vector() {
        let out = StandardWebhooks.sign(&keys()[0], BODY, T, ID);
        assert_eq!(
            out,
            vec![
                ("webhook-id".into(), ID.into()),
                ("webhook-timestamp".into(), T.to_string()),
                ("webhook-signature".into(), SIG.into()),
            ]
        );
    }

    #[test]
    fn secret_with_or_without_prefix_and_padding() {
        let raw = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert_eq!(keys()[0].as_bytes().len(), 24);
        assert_eq!(StandardWebhooks.derive_key(raw), Ok(keys()[0].clone()));
        // A 25-byte key, so its base64 is padded: both forms decode alike.
        let padded = "whsec_YS1yb3RhdGVkLWVuZHBvaW50LXNlY3JldA==";
        let unpadded = padded.trim_end_matches('=');
        let k = StandardWebhooks.derive_key(padded).unwrap();
        assert_eq!(k.as_bytes(), b"a-rotated-endpoint-secret");
        assert_eq!(StandardWebhooks.derive_key(unpadded), Ok(k));
    }

    #[test]
    fn bad_secrets_are_refused_without_echoing_them() {
        for bad in ["whsec_not base64!", "whsec_", "", "whsec_***secret***"] {
            let err = StandardWebhooks.derive_key(bad).unwrap_err();
            assert!(err.contains("Standard Webhooks secret"), "{err}");
            let tail = bad.trim_start_matches("whsec_");
            assert!(tail.is_empty() || !err.contains(tail), "{err}");
        }
    }

    #[test]
    fn reference_negatives_fail() {
        for sig in [WRONG, FLIPPED] {
            assert_eq!(
                check(&headers(sig), BODY, T),
                Err(Failure::SignatureMismatch)
            );
        }
    }

    #[test]
    fn mixed_list_with_other_versions_verifies() {
        let list = format!("{WRONG} v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SIG}");
        assert!(check(&headers(&list), BODY, T).is_ok());
        let list = format!("v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== {SIG}");
        assert!(check(&headers(&list), BODY, T).is_ok());
        // Only other versions: nothing usable.
        assert_eq!(
            check(
                &headers("v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="),
                BODY,
                T
            ),
            Err(Failure::MalformedSignature)
        );
    }

    #[test]
    fn any_secret_may_match() {
        let rotated = vec![Key::new("new-secret"), keys()[0].clone()];
        assert!(verify(&StandardWebhooks, &headers(SIG), BODY, &rotated, T, TOL).is_ok());
    }

    #[test]
    fn tampered_body_id_or_timestamp_is_a_mismatch() {
        assert_eq!(
            check(&headers(SIG), br#"{"test": 2432232315}"#, T),
            Err(Failure::SignatureMismatch)
        );
        let h = set(WEBHOOK, "msg_p5jXN8AQM9LWM0D4loKWxJeK", &T.to_string(), SIG);
        assert_eq!(check(&h, BODY, T), Err(Failure::SignatureMismatch));
        let h = set(WEBHOOK, ID, &(T + 1).to_string(), SIG);
        assert_eq!(check(&h, BODY, T), Err(Failure::SignatureMismatch));
    }

    #[test]
    fn missing_any_header_is_missing() {
        for drop in [WEBHOOK.0, WEBHOOK.1, WEBHOOK.2] {
            let mut h = headers(SIG);
            h.remove(drop);
            assert_eq!(check(&h, BODY, T), Err(Failure::MissingSignature), "{drop}");
        }
        for drop in [SVIX.0, SVIX.1, SVIX.2] {
            let mut h = set(SVIX, ID, &T.to_string(), SIG);
            h.remove(drop);
            assert_eq!(check(&h, BODY, T), Err(Failure::MissingSignature), "{drop}");
        }
        assert_eq!(
            check(&HeaderMap::new(), BODY, T),
            Err(Failure::MissingSignature)
        );
    }

    #[test]
    fn sets_are_not_mixed() {
        let mut h = set(SVIX, ID, &T.to_string(), SIG);
        h.insert("webhook-id", HeaderValue::from_static(ID));
        assert_eq!(check(&h, BODY, T), Err(Failure::MissingSignature));
    }

    #[test]
    fn freshness_both_directions() {
        let h = headers(SIG);
        assert!(check(&h, BODY, T + 300).is_ok());
        assert!(check(&h, BODY, T - 300).is_ok());
        // The reference tests: ±(5 min + 1 s).
        for now in [T + 301, T - 301] {
            assert_eq!(check(&h, BODY, now), Err(Failure::StaleTimestamp));
        }
    }

    #[test]
    fn garbage_headers_are_malformed() {
        let long = format!("v1,{}", "A".repeat(10 * 1024));
        let too_many = [SIG; MAX_SIGNATURES + 1].join(" ");
        for bad in [
            "",
            " ",
            "garbage",
            "v1",
            "v1,",
            "v1,not base64",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
            "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1O==",
            "v1,AAAA",
            "v1=g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            &format!("{SIG} junk"),
            &long,
            &too_many,
        ] {
            assert_eq!(
                check(&headers(bad), BODY, T),
                Err(Failure::MalformedSignature),
                "{bad:?}"
            );
        }
        for (id, ts) in [
            (ID, "abc"),
            (ID, "-1614265330"),
            (ID, ""),
            ("", "1614265330"),
            ("msg.1614265330", "1614265330"),
        ] {
            let h = set(WEBHOOK, id, ts, SIG);
            assert_eq!(
                check(&h, BODY, T),
                Err(Failure::MalformedSignature),
                "{id:?} {ts:?}"
            );
        }
        let mut h = headers(SIG);
        h.insert(
            "webhook-id",
            HeaderValue::from_str(&"m".repeat(5000)).unwrap(),
        );
        assert_eq!(check(&h, BODY, T), Err(Failure::MalformedSignature));
    }

    #[test]
    fn surrounding_and_repeated_spaces_are_tolerated() {
        let list = format!("  {WRONG}   {SIG} ");
        assert!(check(&headers(&list), BODY, T).is_ok());
    }

    // v1a: no reference library implements it, so no published vector.
    // Computed with PyNaCl 1.5 (libsodium, independent of this code) from
    // the RFC 8032 §7.1 test-1 seed:
    //   sk = nacl.signing.SigningKey(base64.b64decode(SEED))
    //   base64.b64encode(sk.sign(b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330." + BODY).signature)
    const V1A_PUBLIC: &str = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    const V1A_PRIVATE: &str = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    const V1A_SIG: &str = "v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw==";

    fn v1a_case(sig: &str) -> crate::verify::testing::Case {
        crate::verify::testing::Case::new(
            &StandardWebhooks,
            vec![StandardWebhooks.derive_public_key(V1A_PUBLIC).unwrap()],
            &[(WEBHOOK.0, ID), (WEBHOOK.1, "1614265330"), (WEBHOOK.2, sig)],
            BODY,
            T,
        )
    }

    #[test]
    fn v1a_vector_and_standard_failures() {
        let c = v1a_case(V1A_SIG);
        let other = StandardWebhooks
            .derive_public_key("whpk_iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=")
            .unwrap();
        c.assert_standard(other);
        // The id is signed.
        assert_eq!(
            c.with_header(WEBHOOK.0, "msg_other").check(),
            Err(Failure::SignatureMismatch)
        );
        c.assert_malformed(WEBHOOK.2, &["v1a,", "v1a,AAAA", &V1A_SIG[..60]]);
        let private = StandardWebhooks.derive_private_key(V1A_PRIVATE).unwrap();
        assert_eq!(StandardWebhooks.sign(&private, BODY, T, ID)[2].1, V1A_SIG);
        assert_eq!(
            StandardWebhooks.public_key_for(&private),
            StandardWebhooks.derive_public_key(V1A_PUBLIC).ok()
        );
    }

    #[test]
    fn v1_and_v1a_entries_each_need_their_key_kind() {
        // A route with both a secret and a public key, a header with both.
        let both = format!("{SIG} {V1A_SIG}");
        let mut c = v1a_case(&both);
        assert!(c.check().is_ok());
        c.keys = keys();
        assert_eq!(c.check().map(|v| v.key_index), Ok(0));
        // Only v1a in the header, only a secret configured: no match.
        let mut c = v1a_case(V1A_SIG);
        c.keys = keys();
        assert_eq!(c.check(), Err(Failure::SignatureMismatch));
        // Only v1 in the header, only a public key: no match.
        let c = v1a_case(SIG);
        assert_eq!(c.check(), Err(Failure::SignatureMismatch));
    }

    #[test]
    fn key_forms_need_their_prefix() {
        assert!(StandardWebhooks
            .derive_public_key("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
            .is_err());
        assert!(StandardWebhooks.derive_public_key("whpk_AAAA").is_err());
        assert!(StandardWebhooks.derive_private_key(V1A_PUBLIC).is_err());
    }

    proptest! {
        #[test]
        fn any_changed_body_byte_is_rejected(pos in 0usize..BODY.len(), flip in 1u8..=255) {
            let mut body = BODY.to_vec();
            body[pos] ^= flip;
            prop_assert_eq!(check(&headers(SIG), &body, T), Err(Failure::SignatureMismatch));
        }

        #[test]
        fn any_changed_timestamp_is_rejected(delta in -300i64..=300) {
            prop_assume!(delta != 0);
            let h = set(WEBHOOK, ID, &(T + delta).to_string(), SIG);
            prop_assert_eq!(check(&h, BODY, T), Err(Failure::SignatureMismatch));
        }

        #[test]
        fn arbitrary_headers_never_panic(id in "\\PC{0,40}", ts in "\\PC{0,20}", sig in "\\PC{0,200}") {
            if let (Ok(i), Ok(t), Ok(s)) = (HeaderValue::from_str(&id), HeaderValue::from_str(&ts), HeaderValue::from_str(&sig)) {
                let mut h = HeaderMap::new();
                h.insert(WEBHOOK.0, i);
                h.insert(WEBHOOK.1, t);
                h.insert(WEBHOOK.2, s);
                let _ = check(&h, BODY, T);
            }
        }
    }
}
