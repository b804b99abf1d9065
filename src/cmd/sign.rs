//! `hookgate sign`: the headers a sender would attach to a body.

use std::path::Path;
use std::sync::Arc;

use hookgate::config::{self, Route};
use hookgate::verify::{self, Delivery, Key, KeyKind, Scheme, Signed};

/// Signs with either a named scheme and a key, or a route of a config.
pub enum Signer {
    /// `--scheme NAME` with `--secret S` or `--private-key FILE`.
    Named(Box<dyn Scheme>, Key),
    /// `--config FILE --route NAME`: the route's scheme and first secret, or
    /// the given private key for a route that verifies with public keys.
    Route(Arc<Route>, Option<Key>),
}

/// What the command line says to sign with.
#[derive(Clone, Copy, Debug, Default)]
pub struct SignerArgs<'a> {
    /// `--scheme` (any case).
    pub scheme: Option<&'a str>,
    /// `--secret`.
    pub secret: Option<&'a str>,
    /// `--private-key`: a file holding the private key of a public-key scheme.
    pub private_key: Option<&'a Path>,
    /// `--config`.
    pub config: Option<&'a Path>,
    /// `--route`.
    pub route: Option<&'a str>,
}

/// The secret to sign with: `--secret`, else `--secret-file`, else (with
/// `--scheme`) the `HOOKGATE_SECRET` environment variable.
pub fn secret_from(
    secret: Option<&str>,
    file: Option<&Path>,
    scheme_given: bool,
) -> Result<Option<String>, String> {
    match (secret, file) {
        (Some(_), Some(_)) => Err("give --secret or --secret-file, not both".into()),
        (Some(s), None) => Ok(Some(s.to_string())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()))
        }
        (None, None) if scheme_given => Ok(std::env::var("HOOKGATE_SECRET").ok()),
        (None, None) => Ok(None),
    }
}

/// Why a public-key scheme cannot sign with what it was given.
fn needs_private_key(scheme: &dyn Scheme) -> String {
    format!(
        "the {} scheme is verified with the sender's public key, so signing needs the \
         sender's private key: give --private-key FILE (for tests; {})",
        scheme.name(),
        match scheme.name() {
            "discord" => "64 hex digits of an Ed25519 seed",
            "sendgrid" => "a P-256 key, PKCS#8 base64/PEM or 64 hex digits",
            _ => "`whsk_` + base64 of an Ed25519 seed",
        }
    )
}

fn read_private_key(scheme: &dyn Scheme, path: &Path) -> Result<Key, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    scheme
        .derive_private_key(text.trim())
        .map_err(|e| format!("{}: {e}", path.display()))
}

impl Signer {
    /// Builds a signer from `--scheme`/`--secret` or `--config`/`--route`
    /// (the form `demo` uses).
    pub fn from_args(
        scheme: Option<&str>,
        secret: Option<&str>,
        config: Option<&Path>,
        route: Option<&str>,
    ) -> Result<Signer, String> {
        Signer::new(SignerArgs {
            scheme,
            secret,
            private_key: None,
            config,
            route,
        })
    }

    /// Builds a signer from the command-line options. Scheme names are
    /// case-insensitive.
    pub fn new(a: SignerArgs<'_>) -> Result<Signer, String> {
        match (a.scheme, a.secret, a.private_key, a.config, a.route) {
            (Some(name), secret, private_key, None, None) => {
                let lower = name.to_ascii_lowercase();
                let scheme = verify::scheme_by_name(&lower).ok_or_else(|| {
                    format!(
                        "unknown scheme `{name}` (known: {})",
                        verify::SCHEME_NAMES.join(", ")
                    )
                })?;
                let takes_secret = scheme.key_kinds().contains(&KeyKind::Secret);
                let key = match (secret, private_key) {
                    (Some(_), Some(_)) => {
                        return Err("give --secret or --private-key, not both".into())
                    }
                    (Some(secret), None) if takes_secret => scheme.derive_key(secret)?,
                    (Some(_), None) => return Err(needs_private_key(scheme.as_ref())),
                    (None, Some(path)) => {
                        if !scheme.key_kinds().contains(&KeyKind::PublicKey) {
                            return Err(format!(
                                "the {} scheme signs with a shared secret: give --secret",
                                scheme.name()
                            ));
                        }
                        read_private_key(scheme.as_ref(), path)?
                    }
                    (None, None) if takes_secret => {
                        return Err("give --secret, --secret-file or HOOKGATE_SECRET".into())
                    }
                    (None, None) => return Err(needs_private_key(scheme.as_ref())),
                };
                Ok(Signer::Named(scheme, key))
            }
            (None, None, private_key, Some(path), Some(route)) => {
                let c = config::load(path).map_err(|e| e.to_string())?;
                let r = c
                    .routes
                    .iter()
                    .find(|r| &*r.name == route)
                    .ok_or_else(|| format!("no route `{route}` in {}", path.display()))?;
                let private = private_key
                    .map(|p| read_private_key(r.verify.scheme.as_ref(), p))
                    .transpose()?;
                Ok(Signer::Route(r.clone(), private))
            }
            _ => Err(
                "give --scheme with --secret (or --private-key), or --config and --route".into(),
            ),
        }
    }

    fn scheme(&self) -> &dyn Scheme {
        match self {
            Signer::Named(s, _) => s.as_ref(),
            Signer::Route(r, _) => r.verify.scheme.as_ref(),
        }
    }

    fn key(&self) -> Result<&Key, String> {
        match self {
            Signer::Named(_, k) => Ok(k),
            Signer::Route(_, Some(k)) => Ok(k),
            Signer::Route(r, None) => match r.verify.keys.first() {
                Some(k) if k.kind() == KeyKind::Secret => Ok(k),
                Some(_) => Err(needs_private_key(r.verify.scheme.as_ref())),
                None => Err(format!("route `{}` has no key", r.name)),
            },
        }
    }

    /// What a sender sends for `delivery`.
    pub fn sign(&self, delivery: &Delivery<'_>) -> Result<Signed, String> {
        self.scheme().sign_delivery(self.key()?, delivery)
    }

    /// The signature headers for a `POST` of `body` with no URL (empty when
    /// the scheme cannot sign so).
    pub fn headers(&self, body: &[u8], timestamp: i64, id: &str) -> Vec<(String, String)> {
        match self.key() {
            Ok(k) => self.scheme().sign(k, body, timestamp, id),
            Err(_) => Vec::new(),
        }
    }

    /// Refuses a delivery id that the scheme's own parser refuses where it
    /// is sent (for standard-webhooks: empty, or holding a `.`), so that
    /// `sign` and `send` never build a delivery the gateway answers `401`.
    pub fn check_id(&self, id: &str) -> Result<(), String> {
        let scheme = self.scheme();
        let headers = self.headers(b"", 0, id);
        let carries_id = scheme
            .id_header()
            .is_some_and(|h| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(h)));
        if !carries_id {
            return Ok(());
        }
        let refused = || {
            format!(
                "the delivery id `{id}` cannot be sent with the {} scheme",
                scheme.name()
            )
        };
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            let k = http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| refused())?;
            let v = http::HeaderValue::from_str(&v).map_err(|_| refused())?;
            map.append(k, v);
        }
        scheme.parse(&map).map(|_| ()).map_err(|_| refused())
    }

    /// The scheme's own delivery-id header, if any.
    pub fn id_header(&self) -> Option<&str> {
        self.scheme().id_header()
    }

    /// Whether the scheme signs the URL (`--url` needed).
    pub fn needs_url(&self) -> bool {
        self.scheme().needs_public_url()
    }

    /// The route's `verify.public_url`, when signing as a route.
    pub fn route_public_url(&self) -> Option<&str> {
        match self {
            Signer::Route(r, _) => r.verify.public_url.as_deref(),
            Signer::Named(..) => None,
        }
    }
}

/// `hookgate sign`: prints the header lines; when the scheme signs inside
/// the body (mailgun, linear's timestamp) a blank line and the body to send
/// follow, and when it changes the URL (twilio with a JSON body) the URL to
/// send to is printed on standard error.
pub fn run(a: &crate::cli::SignArgs) -> Result<(), String> {
    let secret = secret_from(
        a.secret.as_deref(),
        a.secret_file.as_deref(),
        a.scheme.is_some() && a.private_key.is_none(),
    )?;
    let signer = Signer::new(SignerArgs {
        scheme: a.scheme.as_deref(),
        secret: secret.as_deref(),
        private_key: a.private_key.as_deref(),
        config: a.config.as_deref(),
        route: a.route.as_deref(),
    })?;
    // A route's `public_url` is the URL its sender signs, unless --url says.
    let url = a.url.as_deref().or(signer.route_public_url());
    if signer.needs_url() && url.is_none() {
        return Err(
            "this scheme signs the URL: give --url (the public URL the sender uses)".into(),
        );
    }
    let body = super::read_body(a.body.as_deref())?;
    let id =
        a.id.clone()
            .unwrap_or_else(|| format!("msg_{}", uuid::Uuid::new_v4().simple()));
    signer.check_id(&id)?;
    let signed = signer.sign(&Delivery {
        method: &a.method,
        url,
        body: &body,
        timestamp: a.timestamp.unwrap_or_else(hookgate::verify::unix_now),
        id: &id,
    })?;
    for (k, v) in &signed.headers {
        println!("{k}: {v}");
    }
    if let Some(url) = &signed.url {
        eprintln!("send to: {url}");
    }
    if let Some(b) = &signed.body {
        println!();
        println!("{}", String::from_utf8_lossy(b));
    }
    Ok(())
}
