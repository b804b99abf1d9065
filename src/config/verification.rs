//! `routes[].verify`: the scheme, its keys (from secrets resolved here, the
//! only place that reads them) and the freshness window.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::value::{or_default, pos, text_enum};
use super::{defaults, file, Load, Problem, Problems};
use crate::verify::{self, Algorithm, Encoding, Key, Scheme};

text_enum!(impl Encoding { Hex = "hex", Base64 = "base64" });
text_enum!(impl Algorithm { Sha1 = "sha1", Sha256 = "sha256", Sha512 = "sha512" });

/// How a route verifies requests.
#[derive(Debug)]
pub struct Verification {
    /// The scheme: which headers carry the signature and which bytes it covers.
    pub scheme: Box<dyn Scheme>,
    /// Keys derived from the secrets, tried in order.
    pub keys: Vec<Key>,
    /// Each secret's `name`, or its 1-based position: the `secret` label
    /// of `hookgate_verified_total` (same order as the secrets).
    pub key_names: Vec<String>,
    /// Freshness window, for schemes that sign a timestamp.
    pub tolerance: Option<Duration>,
    /// `false` = monitor mode: failures are forwarded, marked unverified.
    pub enforce: bool,
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
    let mut keys = Vec::new();
    let key_names = secret_names(key, &v.secrets.value, p);
    if v.secrets.value.is_empty() {
        p.push(Problem::at(
            &format!("{key}.secrets"),
            pos(&v.secrets),
            "at least one secret is needed".into(),
        ));
    }
    for (i, s) in v.secrets.value.iter().enumerate() {
        let skey = format!("{key}.secrets[{i}]");
        if let Some(secret) = resolve_secret(&skey, s, route, load, warnings, p) {
            match scheme.derive_key(&secret) {
                Ok(k) => keys.push(k),
                Err(e) => p.push(Problem::at(&skey, pos(s), e)),
            }
        }
    }
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
    Some(Verification {
        scheme,
        keys,
        key_names,
        tolerance,
        enforce: v.enforce.unwrap_or(true),
    })
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
            "a secret has exactly one of `env`, `file`, `value`".into(),
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
                    format!("cannot read secret file `{path}`: {e}"),
                ));
                return None;
            }
        }
    } else {
        warnings.push(format!(
            "route `{route}`: {key} is an inline `value`; keep real secrets in `env` or `file`"
        ));
        v.value.clone().unwrap_or_default()
    };
    if secret.is_empty() {
        p.push(Problem::at(key, pos(s), "the secret is empty".into()));
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
mod tests {
    use crate::config::from_yaml;

    fn yaml(secrets: &str, alerts: &str) -> String {
        format!(
            "{alerts}routes:
  - name: a
    path: /a
    upstream:
      url: http://127.0.0.1:3000/a
    verify:
      scheme: fynapse
      secrets:
{secrets}"
        )
    }

    #[test]
    fn secrets_are_labelled_by_name_or_position() {
        let c = from_yaml(
            &yaml(
                "        - value: s-one\n          name: old\n        - value: s-two\n",
                "",
            ),
            "t",
        )
        .unwrap();
        assert_eq!(c.routes[0].verify.key_names, ["old", "2"]);
        assert_eq!(c.failing_after, 20);
        let dup = "        - value: s-one\n          name: k\n        - value: s-two\n          name: k\n";
        let e = from_yaml(&yaml(dup, ""), "t").unwrap_err().to_string();
        assert!(
            e.contains("secrets[1].name") && e.contains("duplicate"),
            "{e}"
        );
        let e = from_yaml(
            &yaml("        - value: s\n          name: \"a b\"\n", ""),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("secrets[0].name"), "{e}");
    }

    #[test]
    fn failing_after_is_read_and_checked() {
        let one = "        - value: s-one\n";
        let c = from_yaml(&yaml(one, "alerts:\n  failing_after: 3\n"), "t").unwrap();
        assert_eq!(c.failing_after, 3);
        let e = from_yaml(&yaml(one, "alerts:\n  failing_after: 0\n"), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("alerts.failing_after"), "{e}");
    }
}
