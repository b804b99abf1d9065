//! The public-key primitives shared by the schemes that verify a sender's
//! signature rather than a MAC: Ed25519 (Discord, Standard Webhooks `v1a`)
//! with RustCrypto's `ed25519-dalek`, and ECDSA P-256/SHA-256 (SendGrid)
//! with `p256`. No curve arithmetic here, only key handling and the loop
//! over candidates.

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use p256::ecdsa::signature::Verifier as _;

use super::{Key, KeyKind};

/// An Ed25519 public key from its raw 32 bytes; refuses bytes that are not
/// a point of the curve.
pub(crate) fn ed25519_public(bytes: &[u8]) -> Result<Key, String> {
    let raw: [u8; 32] = bytes
        .try_into()
        .map_err(|_| format!("an Ed25519 public key is 32 bytes, not {}", bytes.len()))?;
    VerifyingKey::from_bytes(&raw).map_err(|_| "not a valid Ed25519 public key".to_string())?;
    Ok(Key::public(raw.to_vec()))
}

/// An Ed25519 private key from its 32-byte seed (or the 64-byte
/// seed‖public form, of which the seed is used).
pub(crate) fn ed25519_private(bytes: &[u8]) -> Result<Key, String> {
    match bytes.len() {
        32 | 64 => Ok(Key::private(bytes[..32].to_vec())),
        n => Err(format!(
            "an Ed25519 private key is a 32-byte seed, not {n} bytes"
        )),
    }
}

/// The index of the first 64-byte candidate that is a valid Ed25519
/// signature of `message` under `key` (strict verification: no malleable
/// or small-order encodings).
pub(crate) fn ed25519_position(key: &Key, message: &[u8], candidates: &[Vec<u8>]) -> Option<usize> {
    if key.kind() != KeyKind::PublicKey {
        return None;
    }
    let raw: [u8; 32] = key.as_bytes().try_into().ok()?;
    let vk = VerifyingKey::from_bytes(&raw).ok()?;
    candidates.iter().position(|c| {
        <[u8; 64]>::try_from(c.as_slice())
            .map(|s| {
                vk.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&s))
                    .is_ok()
            })
            .unwrap_or(false)
    })
}

/// Signs `message` with an Ed25519 private key.
pub(crate) fn ed25519_sign(key: &Key, message: &[u8]) -> Result<[u8; 64], String> {
    if key.kind() != KeyKind::PrivateKey {
        return Err("an Ed25519 signature needs the private key".into());
    }
    let seed: [u8; 32] = key
        .as_bytes()
        .try_into()
        .map_err(|_| "an Ed25519 private key is a 32-byte seed".to_string())?;
    Ok(SigningKey::from_bytes(&seed).sign(message).to_bytes())
}

/// The public key of an Ed25519 private key (tests, `hookgate sign`).
pub(crate) fn ed25519_public_of(private: &Key) -> Option<Key> {
    let seed: [u8; 32] = private.as_bytes().try_into().ok()?;
    Some(Key::public(
        SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes()
            .to_vec(),
    ))
}

/// A P-256 public key from DER SubjectPublicKeyInfo bytes; kept as the
/// uncompressed SEC1 point.
pub(crate) fn p256_public_from_der(der: &[u8]) -> Result<Key, String> {
    use p256::pkcs8::DecodePublicKey as _;
    let vk = p256::ecdsa::VerifyingKey::from_public_key_der(der)
        .map_err(|_| "not a P-256 public key in DER SubjectPublicKeyInfo form".to_string())?;
    Ok(Key::public(vk.to_encoded_point(false).as_bytes().to_vec()))
}

/// A P-256 private key from its 32-byte scalar or PKCS#8 DER.
pub(crate) fn p256_private(bytes: &[u8]) -> Result<Key, String> {
    use p256::pkcs8::DecodePrivateKey as _;
    let sk = match bytes.len() {
        32 => p256::ecdsa::SigningKey::from_slice(bytes).ok(),
        _ => p256::ecdsa::SigningKey::from_pkcs8_der(bytes).ok(),
    }
    .ok_or("not a P-256 private key (32-byte scalar or PKCS#8 DER)")?;
    Ok(Key::private(sk.to_bytes().to_vec()))
}

/// A DER ECDSA signature in canonical form: `r‖s` with the low `s`, so the
/// two valid encodings of one signature are the same bytes.
pub(crate) fn p256_canonical(der: &[u8]) -> Option<Vec<u8>> {
    let sig = p256::ecdsa::Signature::from_der(der).ok()?;
    let sig = sig.normalize_s().unwrap_or(sig);
    Some(sig.to_bytes().to_vec())
}

/// The index of the first canonical candidate that is a valid ECDSA
/// P-256/SHA-256 signature of `message` under `key`.
pub(crate) fn p256_position(key: &Key, message: &[u8], candidates: &[Vec<u8>]) -> Option<usize> {
    if key.kind() != KeyKind::PublicKey {
        return None;
    }
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(key.as_bytes()).ok()?;
    candidates.iter().position(|c| {
        p256::ecdsa::Signature::from_slice(c)
            .map(|s| vk.verify(message, &s).is_ok())
            .unwrap_or(false)
    })
}

/// Signs `message` (DER-encoded ECDSA P-256/SHA-256, deterministic nonce).
pub(crate) fn p256_sign(key: &Key, message: &[u8]) -> Result<Vec<u8>, String> {
    if key.kind() != KeyKind::PrivateKey {
        return Err("an ECDSA signature needs the private key".into());
    }
    let sk = p256::ecdsa::SigningKey::from_slice(key.as_bytes())
        .map_err(|_| "not a P-256 private key".to_string())?;
    let sig: p256::ecdsa::Signature = sk.sign(message);
    Ok(sig.to_der().as_bytes().to_vec())
}

/// The public key of a P-256 private key (tests, `hookgate sign`).
pub(crate) fn p256_public_of(private: &Key) -> Option<Key> {
    let sk = p256::ecdsa::SigningKey::from_slice(private.as_bytes()).ok()?;
    Some(Key::public(
        sk.verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8032 §7.1, test 1: the published Ed25519 vector.
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const SIG: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    #[test]
    fn rfc8032_test_1() {
        let private = ed25519_private(&hex::decode(SEED).unwrap()).unwrap();
        let public = ed25519_public(&hex::decode(PUBLIC).unwrap()).unwrap();
        assert_eq!(ed25519_public_of(&private), Some(public.clone()));
        assert_eq!(hex::encode(ed25519_sign(&private, b"").unwrap()), SIG);
        let sig = hex::decode(SIG).unwrap();
        assert_eq!(
            ed25519_position(&public, b"", &[vec![0; 64], sig.clone()]),
            Some(1)
        );
        assert_eq!(
            ed25519_position(&public, b"x", std::slice::from_ref(&sig)),
            None
        );
        // A public key never signs, a private key never verifies.
        assert_eq!(ed25519_position(&private, b"", &[sig]), None);
        assert!(ed25519_sign(&public, b"").is_err());
    }

    #[test]
    fn bad_ed25519_keys_are_refused() {
        assert!(ed25519_public(&[0u8; 31]).is_err());
        assert!(ed25519_private(&[0u8; 33]).is_err());
    }

    #[test]
    fn p256_high_and_low_s_are_one_identity() {
        let private = p256_private(&[7u8; 32]).unwrap();
        let public = p256_public_of(&private).unwrap();
        let der = p256_sign(&private, b"m").unwrap();
        let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
        let (r, s) = sig.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        let a = p256_canonical(&der).unwrap();
        let b = p256_canonical(high.to_der().as_bytes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(p256_position(&public, b"m", &[a]), Some(0));
    }
}
