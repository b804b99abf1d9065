//! `routes[].verify`: the scheme, its keys (from secrets and public keys
//! resolved here, the only place that reads them), the freshness window,
//! the public URL of URL-signing schemes and the handshake switch.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::value::{or_default, pos, text_enum};
use super::{defaults, file, Load, Problem, Problems};
use crate::verify::{self, Algorithm, Encoding, Key, KeyKind, Scheme};

text_enum!(impl Encoding { Hex = "hex", Base64 = "base64" });
text_enum!(impl Algorithm { Sha1 = "sha1", Sha256 = "sha256", Sha512 = "sha512" });

/// How a route verifies requests.
#[derive(Debug)]
pub struct Verification {
    /// The scheme: which headers carry the signature and which bytes it covers.
    pub scheme: Box<dyn Scheme>,
    /// Keys derived from `secrets`, then from `public_keys`, tried in this
    /// order ([`verify::Verified::key_index`] indexes it).
    pub keys: Vec<Key>,
    /// Each secret's `name`, or its 1-based position: the `secret` label
    /// of `hookgate_verified_total` (same order as the secrets).
    pub key_names: Vec<String>,
    /// Freshness window, for schemes that sign a timestamp.
    pub tolerance: Option<Duration>,
    /// `false` = monitor mode: failures are forwarded, marked unverified.
    pub enforce: bool,
    /// `verify.public_url`, exactly as written: the URL the sender was
    /// given, for schemes that sign it ([`Scheme::needs_public_url`]).
    pub public_url: Option<String>,
    /// `verify.handshake`: hookgate answers the scheme's setup handshakes
    /// itself (default, for schemes that have one); `false` forwards the
    /// signed ones and refuses the unsigned ones like any unsigned request.
    pub handshake: bool,
}

pub(super) fn build_verification(
    key: &str,
    v: &file::Verify,
    route: &str,
    load: &mut Load,
    warnings: &mut Vec<String>,
    p: &mut Problems,
) -> Option<Verification> {
    let scheme = build_scheme(key, v, p)?;
    let keys = build_keys(key, v, scheme.as_ref(), route, load, warnings, p);
    // Metric labels in `key_index` order: secrets, then public keys.
    let secrets = v.secrets.as_ref().map_or(&[][..], |s| &s.value[..]);
    let mut key_names = secret_names(key, secrets, p);
    let public = v.public_keys.as_ref().map_or(0, |s| s.value.len());
    key_names.extend((1..=public).map(|i| (secrets.len() + i).to_string()));
    let tkey = format!("{key}.tolerance");
    let tolerance = match (&v.tolerance, scheme.signs_timestamp()) {
        (Some(t), false) => {
            p.push(Problem::at(
                &tkey,
                t.at,
                format!("scheme `{}` signs no timestamp, so it has no tolerance; its replay protection is the dedupe on its delivery id", scheme.name()),
            ));
            None
        }
        (None, false) => None,
        (t, true) => {
            let t = or_default(t.as_ref(), &tkey, defaults::TOLERANCE, p);
            if t.is_zero() {
                p.push(Problem::new(&tkey, "must be longer than zero".into()));
            }
            Some(t)
        }
    };
    let public_url = build_public_url(key, v, scheme.as_ref(), p);
    let handshake = match (&v.handshake, scheme.has_handshake()) {
        (Some(h), false) => {
            p.push(Problem::at(
                &format!("{key}.handshake"),
                pos(h),
                format!("scheme `{}` has no setup handshake", scheme.name()),
            ));
            false
        }
        (Some(h), true) => h.value,
        (None, has) => has,
    };
    Some(Verification {
        scheme,
        keys,
        key_names,
        tolerance,
        enforce: v.enforce.unwrap_or(true),
        public_url,
        handshake,
    })
}

/// What a key entry is, for its messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Secret,
    PublicKey,
}

impl Source {
    fn noun(self) -> &'static str {
        match self {
            Source::Secret => "secret",
            Source::PublicKey => "public key",
        }
    }
}

/// The keys of `secrets` and `public_keys`, each list allowed only when
/// the scheme verifies with that kind of key, and at least one key in all.
fn build_keys(
    key: &str,
    v: &file::Verify,
    scheme: &dyn Scheme,
    route: &str,
    load: &mut Load,
    warnings: &mut Vec<String>,
    p: &mut Problems,
) -> Vec<Key> {
    let name = scheme.name();
    let kinds = scheme.key_kinds();
    let takes_secrets = kinds.contains(&KeyKind::Secret);
    let takes_public = kinds.contains(&KeyKind::PublicKey);
    let lists = [
        (Source::Secret, "secrets", &v.secrets, takes_secrets),
        (
            Source::PublicKey,
            "public_keys",
            &v.public_keys,
            takes_public,
        ),
    ];
    let mut keys = Vec::new();
    let mut entries = 0;
    for (source, field, list, taken) in lists {
        let Some(list) = list else { continue };
        let lkey = format!("{key}.{field}");
        if !taken {
            let why = match source {
                Source::Secret => format!("scheme `{name}` verifies with the sender's public key: configure `public_keys` (the key as the sender shows it), not `secrets`"),
                Source::PublicKey => format!("scheme `{name}` verifies with a shared secret: configure `secrets`, not `public_keys`"),
            };
            p.push(Problem::at(&lkey, pos(list), why));
            // Counted, so that the misplaced list is the one problem.
            entries += 1;
            continue;
        }
        for (i, s) in list.value.iter().enumerate() {
            entries += 1;
            let skey = format!("{lkey}[{i}]");
            let Some(text) = resolve_secret(&skey, s, source, route, load, warnings, p) else {
                continue;
            };
            let derived = match source {
                Source::Secret => scheme.derive_key(&text),
                Source::PublicKey => scheme.derive_public_key(&text),
            };
            match derived {
                Ok(k) => keys.push(k),
                Err(e) => p.push(Problem::at(&skey, pos(s), e)),
            }
        }
    }
    if entries == 0 {
        let (field, list, why) = match (takes_secrets, takes_public) {
            (true, true) => (
                "secrets",
                &v.secrets,
                format!("scheme `{name}` needs `secrets` (signatures `v1`), `public_keys` (signatures `v1a`) or both"),
            ),
            (false, true) => (
                "public_keys",
                &v.public_keys,
                format!("scheme `{name}` needs at least one public key: `public_keys`, each as the sender shows it"),
            ),
            _ => ("secrets", &v.secrets, "at least one secret is needed".to_string()),
        };
        let at = list.as_ref().map_or_else(|| pos(&v.scheme), pos);
        p.push(Problem::at(&format!("{key}.{field}"), at, why));
    }
    keys
}

/// `verify.public_url`: required for schemes that sign the URL, refused
/// on the others; an absolute `http`/`https` URL with a host and no user,
/// query or fragment, kept exactly as written (senders sign the bytes
/// they were given).
fn build_public_url(
    key: &str,
    v: &file::Verify,
    scheme: &dyn Scheme,
    p: &mut Problems,
) -> Option<String> {
    let ukey = format!("{key}.public_url");
    let name = scheme.name();
    let u = match (&v.public_url, scheme.needs_public_url()) {
        (None, false) => return None,
        (Some(u), false) => {
            p.push(Problem::at(
                &ukey,
                pos(u),
                format!("scheme `{name}` does not sign the URL, so it takes no `public_url`"),
            ));
            return None;
        }
        (None, true) => {
            p.push(Problem::at(
                &ukey,
                pos(&v.scheme),
                format!("scheme `{name}` signs the URL the sender was given: set `public_url` to it (scheme, host, optional port and path, e.g. `https://hooks.example.com/twilio`)"),
            ));
            return None;
        }
        (Some(u), true) => u,
    };
    let text = u.value.as_str();
    let why = match url::Url::parse(text) {
        Err(e) => format!("`{text}` is not a URL: {e}"),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            format!("`{text}`: a public URL is http or https")
        }
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            format!("`{text}` has no host")
        }
        Ok(url) if !url.username().is_empty() || url.password().is_some() => {
            "a public URL has no user or password".to_string()
        }
        Ok(_) if text.contains(['?', '#']) || text.contains(char::is_whitespace) => format!(
            "`{text}`: a public URL has no query, fragment or spaces (hookgate appends the query as received)"
        ),
        Ok(_) => return Some(text.to_string()),
    };
    p.push(Problem::at(&ukey, pos(u), why));
    None
}

fn build_scheme(key: &str, v: &file::Verify, p: &mut Problems) -> Option<Box<dyn Scheme>> {
    let why = match (v.scheme.value.as_str(), &v.hmac) {
        ("hmac", Some(h)) => return build_generic(&format!("{key}.hmac"), h, p),
        (name, None) => match verify::scheme_by_name(name) {
            Some(s) => return Some(s),
            None if name == "hmac" => (
                format!("{key}.hmac"),
                pos(&v.scheme),
                "scheme `hmac` needs an `hmac:` block (header, prefix, encoding, algorithm, template)".to_string(),
            ),
            None => (
                format!("{key}.scheme"),
                pos(&v.scheme),
                format!(
                    "unknown scheme `{name}` (known: {}, hmac)",
                    verify::SCHEME_NAMES.join(", ")
                ),
            ),
        },
        (_, Some(h)) => (
            format!("{key}.hmac"),
            pos(h),
            "`hmac:` options go with `scheme: hmac` only".to_string(),
        ),
    };
    p.push(Problem::at(&why.0, why.1, why.2));
    None
}

/// Secrets are short; a larger file is a mistake (or `/dev/zero`), not a key.
const MAX_SECRET_FILE: u64 = 64 * 1024;

fn read_secret_file(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SECRET_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SECRET_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "larger than 64 KiB, not a secret",
        ));
    }
    Ok(text)
}

/// Each secret's metric label: its `name` (letters, digits, `-_.`, unique
/// in the route), or its 1-based position.
fn secret_names(
    key: &str,
    secrets: &[Spanned<file::SecretSource>],
    p: &mut Problems,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (i, s) in secrets.iter().enumerate() {
        let name = match &s.value.name {
            None => (i + 1).to_string(),
            Some(n) => {
                let ok = (1..=64).contains(&n.value.len())
                    && n.value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                let nkey = format!("{key}.secrets[{i}].name");
                if !ok {
                    let why = "a secret name is 1-64 letters, digits, `-`, `_` or `.`";
                    p.push(Problem::at(&nkey, pos(n), why.into()));
                } else if names.contains(&n.value) {
                    let why = format!("duplicate secret name `{}`", n.value);
                    p.push(Problem::at(&nkey, pos(n), why));
                }
                n.value.clone()
            }
        };
        names.push(name);
    }
    names
}

fn resolve_secret(
    key: &str,
    s: &Spanned<file::SecretSource>,
    source: Source,
    route: &str,
    load: &mut Load,
    warnings: &mut Vec<String>,
    p: &mut Problems,
) -> Option<String> {
    let v = &s.value;
    let set = [v.env.is_some(), v.file.is_some(), v.value.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if set != 1 {
        p.push(Problem::at(
            key,
            pos(s),
            format!(
                "a {} has exactly one of `env`, `file`, `value`",
                source.noun()
            ),
        ));
        return None;
    }
    if load.offline && v.value.is_none() {
        let what = match (&v.env, &v.file) {
            (Some(var), _) => format!("{key}.env: did not read environment variable `{var}`"),
            (_, Some(path)) => format!("{key}.file: did not read secret file `{path}`"),
            _ => return None,
        };
        load.skipped.push(what);
        return None;
    }
    let secret = if let Some(var) = &v.env {
        match std::env::var(var) {
            Ok(x) => x,
            Err(_) => {
                p.push(Problem::at(
                    &format!("{key}.env"),
                    pos(s),
                    format!("environment variable `{var}` is not set"),
                ));
                return None;
            }
        }
    } else if let Some(path) = &v.file {
        match read_secret_file(path) {
            // A trailing newline is how files end, not part of the secret.
            Ok(x) => x.trim_end_matches(['\n', '\r']).to_string(),
            Err(e) => {
                p.push(Problem::at(
                    &format!("{key}.file"),
                    pos(s),
                    format!("cannot read {} file `{path}`: {e}", source.noun()),
                ));
                return None;
            }
        }
    } else {
        // A public key is no secret: inline is fine.
        if source == Source::Secret {
            warnings.push(format!(
                "route `{route}`: {key} is an inline `value`; keep real secrets in `env` or `file`"
            ));
        }
        v.value.clone().unwrap_or_default()
    };
    if secret.is_empty() {
        p.push(Problem::at(
            key,
            pos(s),
            format!("the {} is empty", source.noun()),
        ));
        return None;
    }
    Some(secret)
}

/// The generic `hmac` scheme from its `hmac:` block.
fn build_generic(key: &str, h: &Spanned<file::Hmac>, p: &mut Problems) -> Option<Box<dyn Scheme>> {
    let o = &h.value;
    let before = p.len();
    let encoding = or_default(
        o.encoding.as_ref(),
        &format!("{key}.encoding"),
        Encoding::Hex,
        p,
    );
    let algorithm = or_default(
        o.algorithm.as_ref(),
        &format!("{key}.algorithm"),
        Algorithm::Sha256,
        p,
    );
    if p.len() != before {
        return None;
    }
    let options = verify::GenericOptions {
        header: o.header.value.clone(),
        prefix: o.prefix.clone().unwrap_or_default(),
        encoding,
        algorithm,
        template: o
            .template
            .as_ref()
            .map_or_else(|| "{body}".to_string(), |t| t.value.clone()),
        timestamp_header: o.timestamp_header.clone(),
        id_header: o.id_header.clone(),
    };
    match verify::GenericHmac::new(options) {
        Ok(g) => Some(Box::new(g)),
        Err(e) => {
            let at = o.template.as_ref().map_or_else(|| pos(h), pos);
            p.push(Problem::at(key, at, e));
            None
        }
    }
}

#[cfg(test)]
#[path = "verification_tests.rs"]
mod tests;
