//! The shape most senders share: one header holding `<prefix><hex|base64>`
//! of an HMAC over the raw body alone, no timestamp. Not a scheme by itself:
//! each sender's file describes its own header in a [`BodyMac`] and keeps
//! its documentation, sources and vectors next to it.

use base64::Engine as _;
use http::HeaderMap;

use super::{
    decode_base64, decode_hex, header_str, Algorithm, Encoding, Failure, Key, SignatureHeader,
    MAX_SIGNATURES,
};

/// One body-HMAC header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyMac {
    /// The header's name, lower-case.
    pub header: &'static str,
    /// The header's name as the sender writes it (for `sign`).
    pub header_display: &'static str,
    /// Text each signature starts with, removed before decoding.
    pub prefix: &'static str,
    pub encoding: Encoding,
    pub algorithm: Algorithm,
    /// Several signatures in one header, separated by this character (each
    /// with its prefix); items with another prefix are skipped.
    pub list: Option<char>,
}

impl BodyMac {
    /// Reads the header into candidate signatures.
    pub fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        let value = header_str(headers, self.header)?.ok_or(Failure::MissingSignature)?;
        let mut signatures = Vec::new();
        match self.list {
            None => signatures.push(
                self.decode(
                    value
                        .trim()
                        .strip_prefix(self.prefix)
                        .ok_or(Failure::MalformedSignature)?,
                )?,
            ),
            Some(sep) => {
                for item in value.split(sep) {
                    let Some(encoded) = item.trim().strip_prefix(self.prefix) else {
                        // Another version (a future `v2=`): skipped, but it
                        // must still look like `name=value`.
                        if !item.contains('=') {
                            return Err(Failure::MalformedSignature);
                        }
                        continue;
                    };
                    if signatures.len() == MAX_SIGNATURES {
                        return Err(Failure::MalformedSignature);
                    }
                    signatures.push(self.decode(encoded)?);
                }
            }
        }
        if signatures.is_empty() {
            return Err(Failure::MalformedSignature);
        }
        Ok(SignatureHeader {
            signatures,
            ..Default::default()
        })
    }

    fn decode(&self, encoded: &str) -> Result<Vec<u8>, Failure> {
        let len = self.algorithm.output_len();
        match self.encoding {
            Encoding::Hex => decode_hex(encoded, len),
            Encoding::Base64 => decode_base64(encoded, len),
        }
    }

    /// The MAC over the body.
    pub fn mac(&self, key: &Key, body: &[u8]) -> Vec<u8> {
        self.algorithm.mac(key, &[body])
    }

    /// The header a sender attaches.
    pub fn sign(&self, key: &Key, body: &[u8]) -> (String, String) {
        (
            self.header_display.to_string(),
            format!(
                "{}{}",
                self.prefix,
                encode(self.encoding, &self.mac(key, body))
            ),
        )
    }
}

/// Encodes a MAC as a sender writes it.
pub(crate) fn encode(encoding: Encoding, mac: &[u8]) -> String {
    match encoding {
        Encoding::Hex => hex::encode(mac),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(mac),
    }
}
