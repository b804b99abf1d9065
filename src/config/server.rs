//! `server:`: listeners, TLS termination, threads, process-wide timeouts.

use std::net::SocketAddr;
use std::time::Duration;

use serde_saphyr::Spanned;

pub use super::choices::LogFormat;
use super::value::{or_default, pos};
use super::{defaults, file, Problem, Problems};

/// Listener and process settings (`server:`).
#[derive(Debug, Clone)]
pub struct Server {
    /// Public listeners.
    pub listen: Vec<SocketAddr>,
    /// TLS for the public listeners.
    pub tls: Option<Tls>,
    /// Admin listener for metrics and health.
    pub admin: Option<SocketAddr>,
    /// Worker threads.
    pub threads: usize,
    /// The whole request body must arrive within this time (`408` otherwise).
    pub body_timeout: Duration,
    /// How long a stop waits for requests in flight.
    pub grace_period: Duration,
    /// Log line format.
    pub log_format: LogFormat,
}

/// Certificate and key files for TLS termination.
#[derive(Debug, Clone)]
pub struct Tls {
    /// PEM certificate chain.
    pub cert: String,
    /// PEM private key.
    pub key: String,
}

pub(super) fn build_server(s: Option<file::Server>, p: &mut Problems) -> Server {
    let s = s.unwrap_or_default();
    let mut listen: Vec<SocketAddr> = s
        .listen
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.check(&format!("server.listen[{i}]"), p))
        .collect();
    if listen.is_empty() {
        listen.push(defaults::LISTEN);
    }
    let threads = match s.threads {
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        Some(t) if (1..=defaults::MAX_THREADS).contains(&t.value) => t.value as usize,
        Some(t) => {
            p.push(Problem::at(
                "server.threads",
                pos(&t),
                format!("must be between 1 and {}", defaults::MAX_THREADS),
            ));
            1
        }
    };
    Server {
        listen,
        tls: s.tls.as_ref().and_then(|t| build_tls(t, p)),
        admin: s.admin.as_ref().and_then(|a| a.check("server.admin", p)),
        threads,
        body_timeout: or_default(
            s.body_timeout.as_ref(),
            "server.body_timeout",
            defaults::BODY_TIMEOUT,
            p,
        ),
        grace_period: or_default(
            s.grace_period.as_ref(),
            "server.grace_period",
            defaults::GRACE_PERIOD,
            p,
        ),
        log_format: or_default(
            s.log_format.as_ref(),
            "server.log_format",
            LogFormat::Human,
            p,
        ),
    }
}

/// Loads the certificate and key once, so that a bad file is a config
/// error rather than a listener that fails at start.
fn build_tls(t: &Spanned<file::Tls>, p: &mut Problems) -> Option<Tls> {
    let (cert, key) = (&t.value.cert.value, &t.value.key.value);
    let why = match pingora::tls::load_certs_and_key_files(cert, key) {
        Ok(Some(_)) => {
            return Some(Tls {
                cert: cert.clone(),
                key: key.clone(),
            })
        }
        Ok(None) => "no certificate or key found".to_string(),
        Err(e) => format!(
            "cannot load certificate `{cert}` and key `{key}`: {}",
            e.etype().as_str()
        ),
    };
    p.push(Problem::at("server.tls", pos(t), why));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(yaml: &str) -> (Server, Problems) {
        let s: file::Server = serde_saphyr::from_str(yaml).unwrap();
        let mut p = Vec::new();
        (build_server(Some(s), &mut p), p)
    }

    #[test]
    fn defaults_apply_when_absent() {
        let mut p = Vec::new();
        let s = build_server(None, &mut p);
        assert!(p.is_empty());
        assert_eq!(s.listen, vec![defaults::LISTEN]);
        assert_eq!(s.body_timeout, defaults::BODY_TIMEOUT);
        assert_eq!(s.grace_period, defaults::GRACE_PERIOD);
        assert_eq!(s.log_format, LogFormat::Human);
        assert!(s.threads >= 1);
    }

    #[test]
    fn every_bad_value_is_reported_with_its_key() {
        let (_, p) = build(
            "listen: [\"127.0.0.1:1\", nowhere]\nadmin: here\nthreads: 0\nbody_timeout: 10\nlog_format: xml\n",
        );
        let mut keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "server.admin",
                "server.body_timeout",
                "server.listen[1]",
                "server.log_format",
                "server.threads"
            ]
        );
        let lf = p.iter().find(|p| p.key == "server.log_format").unwrap();
        assert_eq!(lf.line.map(|l| l.0), Some(5));
        assert!(lf.message.contains("`human` or `json`"), "{lf}");
    }

    #[test]
    fn listen_and_threads() {
        let (s, p) = build("listen: [\"127.0.0.1:9000\", \"[::1]:9001\"]\nthreads: 3\n");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.listen.len(), 2);
        assert_eq!(s.threads, 3);
    }
}
