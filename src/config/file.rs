//! The config file exactly as written: serde structs that mirror the YAML.
//!
//! Every struct refuses unknown keys. Values whose meaning is checked after
//! parsing (names, paths, URLs, durations, secret sources) keep their YAML
//! location through [`Spanned`], so that the model builder can name the line.
//! Nothing here has defaults or meaning: that is `model`'s job.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A string with the line it came from.
pub type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub server: Option<Server>,
    #[serde(default)]
    pub dedupe: Option<Dedupe>,
    pub routes: Spanned<Vec<Spanned<Route>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: Option<Vec<Text>>,
    pub tls: Option<Spanned<Tls>>,
    pub admin: Option<Text>,
    pub threads: Option<Spanned<u64>>,
    pub body_timeout: Option<Text>,
    pub grace_period: Option<Text>,
    pub log_format: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert: Text,
    pub key: Text,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dedupe {
    pub backend: Option<Text>,
    pub ttl: Option<Text>,
    pub in_flight_timeout: Option<Text>,
    pub max_entries: Option<Spanned<u64>>,
    pub redis: Option<Spanned<Redis>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redis {
    /// One server. Exactly one of `url`, `cluster` and `sentinel`.
    pub url: Option<Text>,
    /// Seed nodes of a Redis Cluster.
    pub cluster: Option<Spanned<Vec<Text>>>,
    /// A primary found through Sentinel.
    pub sentinel: Option<Spanned<RedisSentinel>>,
    /// PEM CA file for `rediss://`, instead of the system roots.
    pub ca: Option<Text>,
    /// PEM client certificate (chain) for mutual TLS; needs `key`.
    pub cert: Option<Text>,
    /// PEM private key of `cert`.
    pub key: Option<Text>,
    pub prefix: Option<Text>,
    pub timeout: Option<Text>,
    pub connections: Option<Spanned<u64>>,
    pub on_error: Option<Text>,
    pub wait_replicas: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSentinel {
    pub master: Text,
    pub urls: Spanned<Vec<Text>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: Text,
    pub path: Option<Text>,
    pub path_prefix: Option<Text>,
    pub host: Option<Text>,
    pub methods: Option<Vec<Text>>,
    pub upstream: Upstream,
    pub verify: Verify,
    pub idempotency: Option<Idempotency>,
    pub max_body: Option<Text>,
    pub content_types: Option<Vec<Text>>,
    pub events: Option<Vec<Text>>,
    pub event_field: Option<Text>,
    pub unlisted_events: Option<Text>,
    pub validate_json: Option<bool>,
    pub forward: Option<Forward>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub url: Text,
    pub connect_timeout: Option<Text>,
    pub timeout: Option<Text>,
    pub ca: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    pub scheme: Text,
    pub secrets: Spanned<Vec<Spanned<SecretSource>>>,
    pub tolerance: Option<Text>,
    pub enforce: Option<bool>,
    pub hmac: Option<Spanned<Hmac>>,
}

/// Options of the generic `hmac` scheme.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hmac {
    pub header: Text,
    pub prefix: Option<String>,
    pub encoding: Option<Text>,
    pub algorithm: Option<Text>,
    pub template: Option<Text>,
    pub timestamp_header: Option<String>,
    pub id_header: Option<String>,
}

/// Where a secret comes from. Exactly one key per entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    pub env: Option<String>,
    pub file: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Idempotency {
    pub key: Option<Text>,
    pub required: Option<bool>,
    pub retry_after: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    pub strip_signature: Option<bool>,
    pub headers: Option<Spanned<BTreeMap<String, String>>>,
}
