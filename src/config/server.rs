//! `server:`: listeners, TLS termination, threads, process-wide timeouts.

use std::net::SocketAddr;
use std::time::Duration;

use serde_saphyr::Spanned;

pub use super::choices::LogFormat;
use super::value::{or_default, pos, Size, Typed};
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
    /// A keep-alive connection with no new request byte within this time of
    /// the previous answer is closed.
    pub idle_timeout: Duration,
    /// A request's whole header must arrive within this time of its first
    /// byte (of the connection's start, for its first request): `408`, or
    /// a close when nothing was read.
    pub header_timeout: Duration,
    /// Client connections served at once; more are closed on arrival.
    pub max_connections: usize,
    /// Request body bytes held by all requests in flight at once; a request
    /// that would pass it is answered `503 overloaded`.
    pub max_buffered: usize,
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
    let positive = |v: Option<&Typed<Duration>>, key: &str, default, p: &mut Problems| {
        let d = or_default(v, key, default, p);
        if d.is_zero() {
            if let Some(v) = v {
                p.push(Problem::at(key, v.at, "must be longer than 0s".into()));
            }
            return default;
        }
        d
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
        idle_timeout: positive(
            s.idle_timeout.as_ref(),
            "server.idle_timeout",
            defaults::IDLE_TIMEOUT,
            p,
        ),
        header_timeout: positive(
            s.header_timeout.as_ref(),
            "server.header_timeout",
            defaults::HEADER_TIMEOUT,
            p,
        ),
        max_connections: build_max_connections(s.max_connections.as_ref(), p),
        max_buffered: build_max_buffered(s.max_buffered.as_ref(), p),
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

fn build_max_connections(v: Option<&Spanned<u64>>, p: &mut Problems) -> usize {
    match v {
        None => defaults::MAX_CONNECTIONS as usize,
        Some(n) if (1..=defaults::MAX_CONNECTIONS_CEILING).contains(&n.value) => n.value as usize,
        Some(n) => {
            p.push(Problem::at(
                "server.max_connections",
                pos(n),
                format!(
                    "must be between 1 and {}",
                    defaults::MAX_CONNECTIONS_CEILING
                ),
            ));
            defaults::MAX_CONNECTIONS as usize
        }
    }
}

fn build_max_buffered(v: Option<&Typed<Size>>, p: &mut Problems) -> usize {
    let key = "server.max_buffered";
    let Some(t) = v else {
        return defaults::MAX_BUFFERED as usize;
    };
    match t.check(key, p) {
        Some(Size(n)) if (1..=defaults::MAX_BUFFERED_CEILING).contains(&n) => {
            usize::try_from(n).unwrap_or(usize::MAX)
        }
        Some(_) => {
            p.push(Problem::at(
                key,
                t.at,
                "must be between 1 byte and 64GiB".into(),
            ));
            defaults::MAX_BUFFERED as usize
        }
        None => defaults::MAX_BUFFERED as usize,
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
        assert_eq!(s.idle_timeout, defaults::IDLE_TIMEOUT);
        assert_eq!(s.header_timeout, defaults::HEADER_TIMEOUT);
        assert_eq!(s.max_connections, 10_000);
        assert_eq!(s.max_buffered, 256 << 20);
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
    fn connection_and_buffer_bounds() {
        let (s, p) = build(
            "idle_timeout: 5s\nheader_timeout: 2s\nmax_connections: 100\nmax_buffered: 16MiB\n",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.idle_timeout, Duration::from_secs(5));
        assert_eq!(s.header_timeout, Duration::from_secs(2));
        assert_eq!(s.max_connections, 100);
        assert_eq!(s.max_buffered, 16 << 20);
        let (_, p) =
            build("idle_timeout: 0s\nheader_timeout: 0s\nmax_connections: 0\nmax_buffered: 0\n");
        let mut keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "server.header_timeout",
                "server.idle_timeout",
                "server.max_buffered",
                "server.max_connections"
            ]
        );
    }

    #[test]
    fn listen_and_threads() {
        let (s, p) = build("listen: [\"127.0.0.1:9000\", \"[::1]:9001\"]\nthreads: 3\n");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.listen.len(), 2);
        assert_eq!(s.threads, 3);
    }
}
