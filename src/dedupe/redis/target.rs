//! Where the store's Redis is (one server, Cluster or Sentinel) and how
//! to reach it over TLS.

use super::*;

/// Where the store's Redis is. URLs may hold a password: the `Debug` of
/// this type redacts it.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server: `redis[s]://[user:password@]host[:port][/db]` (or
    /// `valkey[s]://`).
    Single(String),
    /// A Redis Cluster, found from these seed nodes (same URL form; every
    /// node must accept the same credentials).
    Cluster(Vec<String>),
    /// The primary that these sentinels name `master`. The primary is
    /// reached with the scheme (TLS or not), user, password and db of the
    /// first sentinel URL; the sentinels themselves are asked without db.
    Sentinel {
        /// The name the sentinels monitor it under.
        master: String,
        /// The sentinels' URLs.
        urls: Vec<String>,
    },
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |v: &[String]| v.iter().map(|u| redact_url(u)).collect::<Vec<_>>();
        match self {
            RedisTarget::Single(url) => f.debug_tuple("Single").field(&redact_url(url)).finish(),
            RedisTarget::Cluster(urls) => f.debug_tuple("Cluster").field(&redact(urls)).finish(),
            RedisTarget::Sentinel { master, urls } => f
                .debug_struct("Sentinel")
                .field("master", master)
                .field("urls", &redact(urls))
                .finish(),
        }
    }
}

impl RedisTarget {
    /// Every URL of the target.
    pub fn urls(&self) -> &[String] {
        match self {
            RedisTarget::Single(url) => std::slice::from_ref(url),
            RedisTarget::Cluster(urls) | RedisTarget::Sentinel { urls, .. } => urls,
        }
    }

    /// Whether the (first) URL asks for TLS.
    pub fn is_tls(&self) -> bool {
        self.urls().first().is_some_and(|u| is_tls_url(u))
    }
}

/// Whether `url`'s scheme is `rediss` or `valkeys`.
pub fn is_tls_url(url: &str) -> bool {
    let scheme = url.split("://").next().unwrap_or("");
    scheme.eq_ignore_ascii_case("rediss") || scheme.eq_ignore_ascii_case("valkeys")
}

/// TLS material for `rediss://`, as PEM bytes. Empty: the system roots,
/// no client certificate. `Debug` shows which parts are set, never them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// CA certificates to verify the servers with, instead of the system
    /// roots.
    pub ca: Option<Vec<u8>>,
    /// Client certificate chain and private key, for mutual TLS.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca", &self.ca.is_some())
            .field("client_cert", &self.client.is_some())
            .finish()
    }
}

impl RedisTls {
    pub(super) fn certificates(&self) -> TlsCertificates {
        TlsCertificates {
            client_tls: self.client.as_ref().map(|(cert, key)| ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.clone(),
            }),
            root_cert: self.ca.clone(),
        }
    }

    /// Checks that the PEM parts parse (a CA with at least one
    /// certificate; a certificate chain and a private key), without
    /// connecting. The message names the part, never its content.
    pub fn check(&self) -> Result<(), String> {
        if let Some(ca) = &self.ca {
            if !contains_pem(ca, "CERTIFICATE") {
                return Err("the CA file holds no PEM certificate".into());
            }
        }
        if let Some((cert, key)) = &self.client {
            if !contains_pem(cert, "CERTIFICATE") {
                return Err("the client certificate file holds no PEM certificate".into());
            }
            if !contains_pem(key, "PRIVATE KEY") {
                return Err("the client key file holds no PEM private key".into());
            }
        }
        ::redis::Client::build_with_tls("rediss://127.0.0.1", self.certificates())
            .map(|_| ())
            .map_err(|e| format!("unusable TLS files: {e}"))
    }
}

fn contains_pem(pem: &[u8], label: &str) -> bool {
    let text = String::from_utf8_lossy(pem);
    text.lines()
        .any(|l| l.starts_with("-----BEGIN ") && l.trim_end().ends_with(&format!("{label}-----")))
}

pub(super) fn open_client(
    url: &str,
    tls: Option<&TlsCertificates>,
) -> Result<::redis::Client, RedisError> {
    match tls {
        Some(certs) if is_tls_url(url) => ::redis::Client::build_with_tls(url, certs.clone()),
        _ => ::redis::Client::open(url),
    }
}

/// A sentinel URL without its db: sentinels know no `SELECT`.
pub(super) fn without_db(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_path("");
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// A connection-level failure, after which a second try may succeed on a
/// fresh connection.
pub(super) fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_unrecoverable_error() || e.is_connection_dropped()
}

/// An answer after which a Sentinel connection must be dropped: it failed,
/// or its server is no (usable) primary any more.
pub(super) fn is_not_primary(e: &RedisError) -> bool {
    is_connection_error(e)
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::ReadOnly
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::BusyLoading
            )
        )
        || e.code() == Some("NOREPLICAS")
}
