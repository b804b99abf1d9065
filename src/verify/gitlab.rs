//! GitLab: `X-Gitlab-Token: <token>`, the webhook's secret token sent as is
//! on every request. No HMAC: nothing covers the body, there is no
//! timestamp, and a captured token authenticates anything, so use TLS and
//! never log it. It is compared in constant time with each configured
//! secret. Because it is the same on every request, a matched token does
//! not identify a delivery ([`Scheme::signature_identifies_delivery`]).
//!
//! The id is `Idempotency-Key` (one UUID per hook execution, kept on retries
//! and on "Resend request"); GitLab versions that do not send it still send
//! `X-Gitlab-Event-UUID`, used in its place (it can be shared by hooks that
//! a webhook-driven API call triggered, so it is only a fallback).
//!
//! Sources: <https://docs.gitlab.com/user/project/integrations/webhooks/>
//! (secret token, delivery headers) and GitLab's
//! `app/services/web_hook_service.rb` (`build_headers`: `X-Gitlab-Token`,
//! `Idempotency-Key`, `X-Gitlab-Event-UUID`).

use http::HeaderMap;

use super::{
    header_str, require_secret, Delivery, Failure, Key, Scheme, SignatureHeader, Signed,
    SignedRequest,
};

/// The `gitlab` scheme.
#[derive(Clone, Copy, Debug, Default)]
pub struct GitLab;

const HEADER: &str = "x-gitlab-token";
const ID_HEADER: &str = "idempotency-key";
const EVENT_UUID: &str = "x-gitlab-event-uuid";

impl Scheme for GitLab {
    fn name(&self) -> &'static str {
        "gitlab"
    }

    fn signature_headers(&self) -> Vec<&str> {
        vec![HEADER]
    }

    fn id_header(&self) -> Option<&str> {
        Some(ID_HEADER)
    }

    fn signs_timestamp(&self) -> bool {
        false
    }

    fn parse(&self, headers: &HeaderMap) -> Result<SignatureHeader, Failure> {
        let token = header_str(headers, HEADER)?.ok_or(Failure::MissingSignature)?;
        if token.is_empty() {
            return Err(Failure::MalformedSignature);
        }
        let id = match header_str(headers, ID_HEADER)? {
            Some(id) if !id.is_empty() => Some(id),
            _ => header_str(headers, EVENT_UUID)?.filter(|id| !id.is_empty()),
        };
        Ok(SignatureHeader {
            id: id.map(str::to_string),
            signatures: vec![token.as_bytes().to_vec()],
            ..Default::default()
        })
    }

    /// The token is the secret itself.
    fn mac(&self, key: &Key, _header: &SignatureHeader, _req: &SignedRequest<'_>) -> Vec<u8> {
        key.as_bytes().to_vec()
    }

    fn signature_identifies_delivery(&self) -> bool {
        false
    }

    fn sign_delivery(&self, key: &Key, d: &Delivery<'_>) -> Result<Signed, String> {
        require_secret(self, key)?;
        let token = std::str::from_utf8(key.as_bytes())
            .ok()
            .filter(|t| http::HeaderValue::from_str(t).is_ok())
            .ok_or("the GitLab token must be printable ASCII to be sent in a header")?;
        let mut headers = vec![("X-Gitlab-Token".to_string(), token.to_string())];
        if !d.id.is_empty() {
            headers.push(("Idempotency-Key".to_string(), d.id.to_string()));
        }
        Ok(Signed::headers(headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::testing::Case;

    const TOKEN: &str = "glpat-like-secret-token";
    const BODY: &[u8] = br#"{"object_kind":"push"}"#;

    fn case() -> Case {
        Case::new(
            &GitLab,
            vec![Key::new(TOKEN)],
            &[
                ("X-Gitlab-Token", TOKEN),
                ("Idempotency-Key", "f3b2c1a0-0000-4000-8000-000000000001"),
                ("X-Gitlab-Event-UUID", "e1"),
            ],
            BODY,
            1_700_000_000,
        )
    }

    #[test]
    fn token_verifies_and_yields_the_idempotency_key() {
        let v = case().check().unwrap();
        assert_eq!(
            v.id.as_deref(),
            Some("f3b2c1a0-0000-4000-8000-000000000001")
        );
        assert!(v.signature.is_empty(), "the token is not a replay identity");
        let v = case().without_header("idempotency-key").check().unwrap();
        assert_eq!(v.id.as_deref(), Some("e1"));
    }

    #[test]
    fn wrong_missing_or_empty_token_fails() {
        // No body integrity: a changed body still passes (that is GitLab's
        // scheme), so only the token checks apply.
        let c = case();
        for t in ["glpat-like-secret-tokeN", "glpat-like-secret-toke", "x"] {
            assert_eq!(
                c.with_header("x-gitlab-token", t).check(),
                Err(Failure::SignatureMismatch),
                "{t}"
            );
        }
        let mut other = c.clone();
        other.keys = vec![Key::new("other")];
        assert_eq!(other.check(), Err(Failure::SignatureMismatch));
        assert_eq!(
            c.without_header("x-gitlab-token").check(),
            Err(Failure::MissingSignature)
        );
        c.assert_malformed("x-gitlab-token", &[""]);
    }

    #[test]
    fn sign_sends_the_token() {
        let h = GitLab.sign(&Key::new(TOKEN), BODY, 0, "k1");
        assert_eq!(h[0], ("X-Gitlab-Token".to_string(), TOKEN.to_string()));
        assert_eq!(h[1], ("Idempotency-Key".to_string(), "k1".to_string()));
        assert!(GitLab.sign(&Key::new("bad\ntoken"), BODY, 0, "").is_empty());
    }
}
