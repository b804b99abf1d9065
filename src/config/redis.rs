//! `dedupe.redis`: the Redis backend's settings, from the file's mirror to
//! the model's [`Backend::Redis`].

use std::time::Duration;

use serde_saphyr::Spanned;

use super::file;
use super::value::{or_default, pos};
use super::{Backend, OnStoreError};
use super::{Problem, Problems};
use crate::dedupe::redis::{is_tls_url, RedisTarget, RedisTls};

/// The Redis backend's settings (`dedupe.redis`). Its `Debug` redacts URL
/// passwords and never shows TLS files' contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// One server, a Cluster's seed nodes, or Sentinel. URLs may hold a
    /// password: never log them (the target's `Debug` redacts them).
    pub target: RedisTarget,
    /// CA and client certificate for `rediss://`, read from the files.
    pub tls: RedisTls,
    /// Prepended to every key (default `hookgate:`), so that several
    /// gateways or other programs can share one Redis.
    pub prefix: String,
    /// Limit of every Redis call, connecting included (default 1 s).
    pub timeout: Duration,
    /// Multiplexed connections, used in turn (default 2).
    pub connections: usize,
    /// What a request gets while Redis fails (default fail closed).
    pub on_error: OnStoreError,
    /// `WAIT` for this many replicas after an acquiring reserve and after a
    /// settle (default 0: do not wait). Protects across a failover only
    /// when it counts every replica of the primary.
    pub wait_replicas: u32,
}

/// The most replicas `wait_replicas` may ask for.
const MAX_WAIT_REPLICAS: u64 = 16;

/// The most URLs in `cluster` or `sentinel.urls`.
const MAX_URLS: usize = 64;

/// The longest `dedupe.redis.prefix`.
const MAX_PREFIX: usize = 256;

pub(super) fn build_redis(r: &Spanned<file::Redis>, p: &mut Problems) -> Option<Backend> {
    let before = p.len();
    let at = pos(r);
    let r = &r.value;
    let target = build_target(r, at, p);
    let tls = build_tls(r, target.as_ref(), p);
    let prefix = match &r.prefix {
        None => "hookgate:".to_string(),
        Some(x) if x.value.len() <= MAX_PREFIX => x.value.clone(),
        Some(x) => {
            p.push(Problem::at(
                "dedupe.redis.prefix",
                pos(x),
                format!("at most {MAX_PREFIX} bytes"),
            ));
            String::new()
        }
    };
    let timeout = or_default(
        r.timeout.as_ref(),
        "dedupe.redis.timeout",
        Duration::from_secs(1),
        p,
    );
    if timeout.is_zero() || timeout > Duration::from_secs(60) {
        let at = r.timeout.as_ref().map_or((0, 0), |t| t.at);
        p.push(Problem::at(
            "dedupe.redis.timeout",
            at,
            "must be longer than zero and at most 60s".into(),
        ));
    }
    let connections = match &r.connections {
        None => 2,
        Some(c) if (1..=64).contains(&c.value) => c.value as usize,
        Some(c) => {
            p.push(Problem::at(
                "dedupe.redis.connections",
                pos(c),
                "must be between 1 and 64".into(),
            ));
            1
        }
    };
    let on_error = or_default(
        r.on_error.as_ref(),
        "dedupe.redis.on_error",
        OnStoreError::FailClosed,
        p,
    );
    let wait_replicas = match &r.wait_replicas {
        None => 0,
        Some(w) if w.value <= MAX_WAIT_REPLICAS => w.value as u32,
        Some(w) => {
            p.push(Problem::at(
                "dedupe.redis.wait_replicas",
                pos(w),
                format!("at most {MAX_WAIT_REPLICAS}"),
            ));
            0
        }
    };
    if p.len() != before {
        return None;
    }
    Some(Backend::Redis(RedisConfig {
        target: target?,
        tls: tls?,
        prefix,
        timeout,
        connections,
        on_error,
        wait_replicas,
    }))
}

/// Checks one Redis URL (`key` names it in messages, which never repeat
/// the URL: it may hold a password).
fn check_url(t: &file::Text, key: &str, p: &mut Problems) -> Option<String> {
    let url = t.value.trim();
    match url::Url::parse(url).map(|u| {
        (
            u.scheme().to_string(),
            u.fragment().is_some() || u.query().is_some(),
        )
    }) {
        Ok((s, true)) if ["redis", "valkey", "rediss", "valkeys"].contains(&s.as_str()) => {
            // The redis crate reads options there, `#insecure` among them:
            // certificate checks are not optional.
            p.push(Problem::at(
                key,
                pos(t),
                "a Redis URL here takes no query or fragment".into(),
            ));
            None
        }
        Ok((s, false)) if ["redis", "valkey", "rediss", "valkeys"].contains(&s.as_str()) => {
            if ::redis::Client::open(url).is_err() {
                p.push(Problem::at(
                    key,
                    pos(t),
                    "not a valid Redis URL; use redis[s]://[user:password@]host[:port][/db]".into(),
                ));
                return None;
            }
            Some(url.to_string())
        }
        Ok((s, _)) => {
            p.push(Problem::at(
                key,
                pos(t),
                format!("scheme `{s}` is not supported; use redis://, rediss:// (TLS), valkey:// or valkeys://"),
            ));
            None
        }
        Err(_) => {
            p.push(Problem::at(
                key,
                pos(t),
                "not a URL; use redis[s]://[user:password@]host[:port][/db]".into(),
            ));
            None
        }
    }
}

/// Checks a list of URLs: at least one, at most [`MAX_URLS`], all TLS or
/// none.
fn check_urls(list: &Spanned<Vec<file::Text>>, key: &str, p: &mut Problems) -> Option<Vec<String>> {
    if list.value.is_empty() || list.value.len() > MAX_URLS {
        p.push(Problem::at(
            key,
            pos(list),
            format!("list 1 to {MAX_URLS} URLs"),
        ));
        return None;
    }
    let before = p.len();
    let urls: Vec<String> = list
        .value
        .iter()
        .filter_map(|u| check_url(u, key, p))
        .collect();
    if p.len() != before {
        return None;
    }
    if urls.iter().any(|u| is_tls_url(u)) != urls.iter().all(|u| is_tls_url(u)) {
        p.push(Problem::at(
            key,
            pos(list),
            "mixes TLS (rediss://) and plain URLs: use one or the other".into(),
        ));
        return None;
    }
    Some(urls)
}

fn build_target(r: &file::Redis, at: (u64, u64), p: &mut Problems) -> Option<RedisTarget> {
    let given = [r.url.is_some(), r.cluster.is_some(), r.sentinel.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        p.push(Problem::at(
            "dedupe.redis",
            at,
            "set exactly one of `url` (one server), `cluster` (seed node URLs) and `sentinel` (master name and sentinel URLs)".into(),
        ));
        return None;
    }
    if let Some(u) = &r.url {
        return check_url(u, "dedupe.redis.url", p).map(RedisTarget::Single);
    }
    if let Some(c) = &r.cluster {
        return check_urls(c, "dedupe.redis.cluster", p).map(RedisTarget::Cluster);
    }
    let s = r.sentinel.as_ref()?;
    let master = s.value.master.value.trim().to_string();
    if master.is_empty()
        || master.len() > 128
        || master.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        p.push(Problem::at(
            "dedupe.redis.sentinel.master",
            pos(&s.value.master),
            "the name the sentinels monitor the primary under: 1 to 128 characters, no spaces"
                .into(),
        ));
        return None;
    }
    let urls = check_urls(&s.value.urls, "dedupe.redis.sentinel.urls", p)?;
    Some(RedisTarget::Sentinel { master, urls })
}

/// Reads one PEM file of the TLS settings.
fn read_pem(t: &file::Text, key: &str, p: &mut Problems) -> Option<Vec<u8>> {
    match std::fs::read(&t.value) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            p.push(Problem::at(
                key,
                pos(t),
                format!("cannot read `{}`: {e}", t.value),
            ));
            None
        }
    }
}

fn build_tls(r: &file::Redis, target: Option<&RedisTarget>, p: &mut Problems) -> Option<RedisTls> {
    let before = p.len();
    let tls_url = target.is_some_and(RedisTarget::is_tls);
    for (v, key) in [
        (&r.ca, "dedupe.redis.ca"),
        (&r.cert, "dedupe.redis.cert"),
        (&r.key, "dedupe.redis.key"),
    ] {
        if let (Some(v), Some(_), false) = (v, target, tls_url) {
            p.push(Problem::at(
                key,
                pos(v),
                "goes with rediss:// URLs (TLS to Redis)".into(),
            ));
        }
    }
    if r.cert.is_some() != r.key.is_some() {
        let (v, key) = match (&r.cert, &r.key) {
            (Some(c), _) => (c, "dedupe.redis.cert"),
            (_, Some(k)) => (k, "dedupe.redis.key"),
            _ => return None,
        };
        p.push(Problem::at(
            key,
            pos(v),
            "`cert` and `key` go together (a client certificate for mutual TLS)".into(),
        ));
    }
    if p.len() != before {
        return None;
    }
    let ca = match &r.ca {
        Some(c) => Some(read_pem(c, "dedupe.redis.ca", p)?),
        None => None,
    };
    let client = match (&r.cert, &r.key) {
        (Some(c), Some(k)) => Some((
            read_pem(c, "dedupe.redis.cert", p)?,
            read_pem(k, "dedupe.redis.key", p)?,
        )),
        _ => None,
    };
    let tls = RedisTls { ca, client };
    if let Err(e) = tls.check() {
        let (key, at) = match (&r.ca, &r.cert) {
            (Some(c), _) if e.contains("CA") => ("dedupe.redis.ca", pos(c)),
            (_, Some(c)) => ("dedupe.redis.cert", pos(c)),
            (Some(c), None) => ("dedupe.redis.ca", pos(c)),
            (None, None) => ("dedupe.redis", (0, 0)),
        };
        p.push(Problem::at(key, at, e));
        return None;
    }
    Some(tls)
}

#[cfg(test)]
mod tests {
    use super::super::{from_yaml, Problem};
    use super::*;

    fn yaml(redis: &str) -> String {
        format!(
            r#"
server:
  listen: ["127.0.0.1:8080"]
dedupe:
  backend: redis
  redis:
{redis}routes:
  - name: fynapse
    path: /webhooks/fynapse
    upstream:
      url: http://127.0.0.1:3000/hooks
    verify:
      scheme: fynapse
      secrets:
        - value: dev-secret
"#
        )
    }

    fn redis(block: &str) -> RedisConfig {
        match from_yaml(&yaml(block), "t.yaml") {
            Ok(c) => match c.dedupe.backend {
                Backend::Redis(r) => r,
                other => panic!("{other:?}"),
            },
            Err(e) => panic!("{e}"),
        }
    }

    fn one(block: &str) -> Problem {
        let mut p = from_yaml(&yaml(block), "t.yaml")
            .expect_err("should be refused")
            .problems;
        assert_eq!(p.len(), 1, "{p:?}");
        p.remove(0)
    }

    fn at(p: &Problem) -> (&str, Option<u64>) {
        (p.key.as_str(), p.line.map(|l| l.0))
    }

    #[test]
    fn cluster_and_sentinel_targets() {
        let r = redis("    cluster: [redis://10.0.0.1:7000, \"redis://:pw@10.0.0.2:7000\"]\n");
        assert_eq!(
            r.target,
            RedisTarget::Cluster(vec![
                "redis://10.0.0.1:7000".into(),
                "redis://:pw@10.0.0.2:7000".into()
            ])
        );
        let r = redis(
            "    sentinel:\n      master: mymaster\n      urls:\n        - redis://10.0.0.1:26379\n        - redis://10.0.0.2:26379\n    wait_replicas: 1\n",
        );
        assert_eq!(
            r.target,
            RedisTarget::Sentinel {
                master: "mymaster".into(),
                urls: vec![
                    "redis://10.0.0.1:26379".into(),
                    "redis://10.0.0.2:26379".into()
                ]
            }
        );
        assert_eq!(r.wait_replicas, 1);
        assert_eq!(r.tls, RedisTls::default());
    }

    #[test]
    fn exactly_one_target() {
        let p = one("    prefix: x\n");
        assert_eq!(at(&p), ("dedupe.redis", Some(7)), "{p}");
        let p = one("    url: redis://h\n    cluster: [redis://h]\n");
        assert!(p.message.contains("exactly one"), "{p}");
        let p = one("    cluster: []\n");
        assert_eq!(p.key, "dedupe.redis.cluster", "{p}");
        let p = one("    cluster: [redis://a, rediss://b]\n");
        assert!(p.message.contains("mixes"), "{p}");
        let p = one("    sentinel:\n      master: \"my master\"\n      urls: [redis://a]\n");
        assert_eq!(p.key, "dedupe.redis.sentinel.master", "{p}");
        let p = one("    sentinel:\n      master: m\n      urls: [http://a]\n");
        assert_eq!(at(&p), ("dedupe.redis.sentinel.urls", Some(9)), "{p}");
        let p = one("    url: redis://h\n    wait_replicas: 99\n");
        assert_eq!(at(&p), ("dedupe.redis.wait_replicas", Some(8)), "{p}");
    }

    #[test]
    fn tls_files_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.cert.pem()).unwrap();
        let key_path = dir.path().join("key.pem");
        std::fs::write(&key_path, ca.signing_key.serialize_pem()).unwrap();
        let (ca_p, key_p) = (ca_path.display(), key_path.display());

        let r = redis(&format!(
            "    url: rediss://127.0.0.1:6380\n    ca: {ca_p}\n    cert: {ca_p}\n    key: {key_p}\n"
        ));
        assert_eq!(r.tls.ca.as_deref(), Some(ca.cert.pem().as_bytes()));
        assert!(r.tls.client.is_some());
        let debug = format!("{r:?}");
        assert!(!debug.contains("BEGIN"), "{debug}");

        // System roots: no files needed.
        assert_eq!(redis("    url: rediss://h:6380\n").tls, RedisTls::default());

        let p = one("    url: rediss://h\n    ca: /nonexistent/ca.pem\n");
        assert_eq!(at(&p), ("dedupe.redis.ca", Some(8)), "{p}");
        assert!(p.message.contains("cannot read"), "{p}");
        let p = one(&format!("    url: rediss://h\n    ca: {key_p}\n"));
        assert!(p.message.contains("no PEM certificate"), "{p}");
        assert!(!p.message.contains("PRIVATE"), "{p}");
        let p = one(&format!(
            "    url: rediss://h\n    ca: {ca_p}\n    cert: {ca_p}\n    key: {ca_p}\n"
        ));
        assert_eq!(p.key, "dedupe.redis.cert", "{p}");
        let p = one(&format!("    url: redis://h\n    ca: {ca_p}\n"));
        assert!(p.message.contains("rediss://"), "{p}");
        let p = one(&format!("    url: rediss://h\n    key: {key_p}\n"));
        assert!(p.message.contains("go together"), "{p}");
        let p = one("    url: \"rediss://:pw@h:6380/#insecure\"\n");
        assert_eq!(at(&p), ("dedupe.redis.url", Some(7)), "{p}");
        assert!(!p.message.contains("pw"), "{p}");
    }

    #[test]
    fn passwords_never_appear_in_debug_or_errors() {
        let r = redis("    cluster: [\"redis://:hunter2@a:7000\"]\n");
        assert!(!format!("{r:?}").contains("hunter2"), "{r:?}");
        let r =
            redis("    sentinel:\n      master: m\n      urls: [\"redis://u:hunter2@a:26379\"]\n");
        assert!(!format!("{r:?}").contains("hunter2"), "{r:?}");
        let e = from_yaml(
            &yaml("    cluster: [\"redis://:hunter2@a:7000\", \"ftp://:hunter2@b\"]\n"),
            "t.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
