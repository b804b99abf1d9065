//! `hookgate sign`: the headers a sender would attach to a body.

use std::sync::Arc;

use hookgate::config::{self, Route};
use hookgate::verify::{self, Key, Scheme};

/// Signs with either a named scheme and a secret, or a route of a config.
pub enum Signer {
    /// `--scheme NAME --secret S`.
    Named(Box<dyn Scheme>, Key),
    /// `--config FILE --route NAME`: the route's scheme and first secret.
    Route(Arc<Route>),
}

impl Signer {
    /// Builds a signer from the command-line options.
    pub fn from_args(
        scheme: Option<&str>,
        secret: Option<&str>,
        config: Option<&std::path::Path>,
        route: Option<&str>,
    ) -> Result<Signer, String> {
        match (scheme, secret, config, route) {
            (Some(name), Some(secret), None, None) => {
                let scheme = verify::scheme_by_name(name).ok_or_else(|| {
                    format!(
                        "unknown scheme `{name}` (known: {})",
                        verify::SCHEME_NAMES.join(", ")
                    )
                })?;
                let key = scheme.derive_key(secret)?;
                Ok(Signer::Named(scheme, key))
            }
            (None, None, Some(path), Some(route)) => {
                let c = config::load(path).map_err(|e| e.to_string())?;
                let r = c
                    .routes
                    .iter()
                    .find(|r| &*r.name == route)
                    .ok_or_else(|| format!("no route `{route}` in {}", path.display()))?;
                Ok(Signer::Route(r.clone()))
            }
            _ => Err("give --scheme and --secret, or --config and --route".into()),
        }
    }

    /// The signature headers for `body`.
    pub fn headers(&self, body: &[u8], timestamp: i64, id: &str) -> Vec<(String, String)> {
        match self {
            Signer::Named(s, k) => s.sign(k, body, timestamp, id),
            Signer::Route(r) => match r.verify.keys.first() {
                Some(k) => r.verify.scheme.sign(k, body, timestamp, id),
                None => Vec::new(),
            },
        }
    }

    /// Refuses a delivery id that the scheme's own parser refuses where it
    /// is sent (for standard-webhooks: empty, or holding a `.`), so that
    /// `sign` and `send` never build a delivery the gateway answers `401`.
    pub fn check_id(&self, id: &str) -> Result<(), String> {
        let scheme: &dyn Scheme = match self {
            Signer::Named(s, _) => s.as_ref(),
            Signer::Route(r) => r.verify.scheme.as_ref(),
        };
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
        match self {
            Signer::Named(s, _) => s.id_header(),
            Signer::Route(r) => r.verify.scheme.id_header(),
        }
    }
}

/// `hookgate sign`: prints the header lines.
pub fn run(a: &crate::cli::SignArgs) -> Result<(), String> {
    let signer = Signer::from_args(
        a.scheme.as_deref(),
        a.secret.as_deref(),
        a.config.as_deref(),
        a.route.as_deref(),
    )?;
    let body = super::read_body(a.body.as_deref())?;
    let id =
        a.id.clone()
            .unwrap_or_else(|| format!("msg_{}", uuid::Uuid::new_v4().simple()));
    signer.check_id(&id)?;
    for (k, v) in signer.headers(
        &body,
        a.timestamp.unwrap_or_else(hookgate::verify::unix_now),
        &id,
    ) {
        println!("{k}: {v}");
    }
    Ok(())
}
