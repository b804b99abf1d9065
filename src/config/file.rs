//! The config file exactly as written: serde structs that mirror the YAML.
//!
//! Every struct refuses unknown keys. Scalars with a meaning (durations,
//! sizes, addresses, closed sets of words) are read into their type here,
//! keeping their position and, when wrong, their error ([`Typed`]); free
//! text whose meaning depends on other keys (names, paths, URLs, secret
//! sources) keeps its position through [`Spanned`]. Nothing here has
//! defaults or cross-field rules: those are the builders' (`server`,
//! `dedupe`, `route`, `verification`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::choices::{BackendKind, LogFormat, OnStoreError, UnlistedEvent};
use super::value::{Size, Typed};
use crate::verify::{Algorithm, Encoding};

/// A string with the place it came from.
pub type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub server: Option<Server>,
    #[serde(default)]
    pub dedupe: Option<Dedupe>,
    #[serde(default)]
    pub alerts: Option<Alerts>,
    pub routes: Spanned<Vec<Spanned<Route>>>,
}

/// `alerts:`: when the gateway raises its alert gauges.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    pub failing_after: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: Option<Vec<Typed<SocketAddr>>>,
    pub tls: Option<Spanned<Tls>>,
    pub admin: Option<Typed<SocketAddr>>,
    pub threads: Option<Spanned<u64>>,
    pub body_timeout: Option<Typed<Duration>>,
    pub idle_timeout: Option<Typed<Duration>>,
    pub header_timeout: Option<Typed<Duration>>,
    pub max_connections: Option<Spanned<u64>>,
    pub max_buffered: Option<Typed<Size>>,
    pub grace_period: Option<Typed<Duration>>,
    pub log_format: Option<Typed<LogFormat>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert: Text,
    pub key: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dedupe {
    pub backend: Option<Typed<BackendKind>>,
    pub ttl: Option<Typed<Duration>>,
    pub in_flight_timeout: Option<Typed<Duration>>,
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
    pub timeout: Option<Typed<Duration>>,
    pub connections: Option<Spanned<u64>>,
    pub on_error: Option<Typed<OnStoreError>>,
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
    pub max_body: Option<Typed<Size>>,
    pub content_types: Option<Vec<Text>>,
    pub events: Option<Vec<Text>>,
    pub event_field: Option<Text>,
    pub unlisted_events: Option<Typed<UnlistedEvent>>,
    pub validate_json: Option<bool>,
    pub forward: Option<Forward>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub url: Text,
    pub connect_timeout: Option<Typed<Duration>>,
    pub timeout: Option<Typed<Duration>>,
    pub ca: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    pub scheme: Text,
    pub secrets: Option<Spanned<Vec<Spanned<SecretSource>>>>,
    pub public_keys: Option<Spanned<Vec<Spanned<SecretSource>>>>,
    pub public_url: Option<Text>,
    pub handshake: Option<Spanned<bool>>,
    pub tolerance: Option<Typed<Duration>>,
    pub enforce: Option<bool>,
    pub hmac: Option<Spanned<Hmac>>,
}

/// Options of the generic `hmac` scheme.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hmac {
    pub header: Text,
    pub prefix: Option<String>,
    pub encoding: Option<Typed<Encoding>>,
    pub algorithm: Option<Typed<Algorithm>>,
    pub template: Option<Text>,
    pub timestamp_header: Option<String>,
    pub id_header: Option<String>,
}

/// Where a secret (or a public key) comes from. Exactly one key per entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    pub name: Option<Text>,
    pub env: Option<String>,
    pub file: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Idempotency {
    pub key: Option<Text>,
    pub namespace: Option<Text>,
    pub required: Option<bool>,
    pub retry_after: Option<Typed<Duration>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    pub strip_signature: Option<bool>,
    pub headers: Option<Spanned<BTreeMap<String, String>>>,
}
