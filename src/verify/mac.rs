//! The HMAC primitive shared by every scheme: one place that knows the
//! `hmac` crate, so schemes only say which algorithm and which bytes.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::Key;

/// A hash function for the HMAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA1 (legacy senders only).
    Sha1,
    /// HMAC-SHA256, what nearly every sender uses.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl Algorithm {
    /// The length of this algorithm's MAC in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    /// HMAC over the concatenation of `parts`, without copying them together.
    pub fn mac(self, key: &Key, parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // HMAC accepts keys of any length: new_from_slice cannot fail.
            let mut m = match <M as Mac>::new_from_slice(key) {
                Ok(m) => m,
                Err(_) => return Vec::new(),
            };
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }
        match self {
            Algorithm::Sha1 => run::<Hmac<Sha1>>(key.as_bytes(), parts),
            Algorithm::Sha256 => run::<Hmac<Sha256>>(key.as_bytes(), parts),
            Algorithm::Sha512 => run::<Hmac<Sha512>>(key.as_bytes(), parts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let out = Algorithm::Sha256.mac(&Key::new("Jefe"), &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(out),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
