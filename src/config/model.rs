//! The validated, internal model of a config: what the gateway runs on.
//!
//! Built from the file's serde mirror (`config::file`) by [`build`]; every value has
//! its default applied, every secret is resolved into a key, every URL is
//! resolved to an address. Nothing in here can be wrong in a way the file
//! could have caught.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use serde_saphyr::Spanned;

use super::file;
use super::units::{parse_duration, parse_size};
use super::{Problem, Problems};
use crate::verify::{self, Key, Scheme};

/// The largest `max_body` a route may set.
pub const MAX_BODY_CEILING: u64 = 64 << 20;

/// A whole, validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listener and process settings.
    pub server: Server,
    /// Dedupe store settings.
    pub dedupe: Dedupe,
    /// The routes, in file order.
    pub routes: Vec<Arc<Route>>,
    /// Things that work but deserve a look (inline secrets, no dedupe).
    pub warnings: Vec<String>,
}

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

/// The format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// Certificate and key files for TLS termination.
#[derive(Debug, Clone)]
pub struct Tls {
    /// PEM certificate chain.
    pub cert: String,
    /// PEM private key.
    pub key: String,
}

/// Dedupe store settings (`dedupe:`).
#[derive(Debug, Clone)]
pub struct Dedupe {
    /// Which store.
    pub backend: Backend,
    /// How long a delivered key is remembered.
    pub ttl: Duration,
    /// How long a reservation lives without an answer.
    pub in_flight_timeout: Duration,
    /// Upper bound on remembered keys (memory backend).
    pub max_entries: u64,
}

impl Dedupe {
    /// What a request gets when the store fails. The memory store never
    /// fails, so only the Redis backend's `on_error` matters.
    pub fn on_error(&self) -> OnStoreError {
        match &self.backend {
            Backend::Memory => OnStoreError::FailClosed,
            Backend::Redis(r) => r.on_error,
        }
    }
}

/// The dedupe backend.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// In-process compact table ([`crate::dedupe::MemoryStore`]).
    Memory,
    /// A Redis (6+) or Valkey shared by every replica (`dedupe.redis`).
    Redis(super::RedisConfig),
}

impl std::fmt::Debug for Backend {
    // `RedisConfig`'s `Debug` redacts URL passwords and TLS files.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Memory => f.write_str("Memory"),
            Backend::Redis(r) => f.debug_tuple("Redis").field(r).finish(),
        }
    }
}

/// `url` with any password replaced by `***`, for display.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<invalid url>".to_string(),
    }
}

/// What the gateway does with a request whose dedupe store call failed
/// (`dedupe.redis.on_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStoreError {
    /// `503 dedupe_unavailable` with `Retry-After`: the sender retries
    /// later, nothing is lost and nothing is delivered twice.
    FailClosed,
    /// Forward without dedupe (a duplicate may get through), log a warning
    /// and count it.
    FailOpen,
}

/// How a route matches a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The path must equal this.
    Exact(String),
    /// The path must start with this, at a segment boundary.
    Prefix(String),
}

/// One route: which requests, how to verify them, where they go.
#[derive(Debug)]
pub struct Route {
    /// Unique name, sent upstream as `X-Hookgate-Route`.
    pub name: Arc<str>,
    /// Path match.
    pub path: PathMatch,
    /// Optional `Host` to match (lower case, no port).
    pub host: Option<String>,
    /// Allowed methods (`405` otherwise).
    pub methods: Vec<Method>,
    /// The `Allow` header value for a `405`.
    pub allow: HeaderValue,
    /// Allowed media types, lower case (`415` otherwise).
    pub content_types: Vec<String>,
    /// Largest body accepted, in bytes (`413` above).
    pub max_body: usize,
    /// Where verified requests go.
    pub upstream: Upstream,
    /// How requests are verified.
    pub verify: Verification,
    /// How duplicates are recognised.
    pub idempotency: Idempotency,
    /// Body checks.
    pub body: BodyChecks,
    /// What forwarding adds or removes.
    pub forward: Forward,
}

/// An upstream receiver, resolved at load time.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The URL as configured (for display).
    pub url: String,
    /// The resolved address.
    pub addr: SocketAddr,
    /// Whether the URL is `https`.
    pub tls: bool,
    /// Server name for TLS (the URL's host).
    pub sni: String,
    /// CA file to verify the upstream's certificate with, instead of the
    /// system roots.
    pub ca: Option<String>,
    /// `Host` header sent upstream.
    pub authority: String,
    /// Path of the URL; a prefix route appends the rest of the request path.
    pub path: String,
    /// TCP connect timeout (`502` when it passes).
    pub connect_timeout: Duration,
    /// Time for the upstream to take the request and answer its header
    /// (`504` when it passes); also the limit of each later read.
    pub timeout: Duration,
}

/// How a route verifies requests.
#[derive(Debug)]
pub struct Verification {
    /// The signature scheme.
    pub scheme: Box<dyn Scheme>,
    /// Keys derived from the secrets, tried in order.
    pub keys: Vec<Key>,
    /// Freshness window, for schemes that sign a timestamp.
    pub tolerance: Option<Duration>,
    /// `false` = monitor mode: failures are forwarded, marked unverified.
    pub enforce: bool,
}

/// Where the idempotency key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A request header.
    Header(HeaderName),
    /// A JSON pointer into the body.
    Json(String),
    /// The scheme's own delivery id: the id the signature covered when the
    /// scheme signs one (Standard Webhooks, also under `svix-id`), else the
    /// scheme's id header.
    Scheme(HeaderName),
    /// No dedupe on this route.
    None,
}

/// Dedupe settings of a route.
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// Where the key comes from.
    pub source: KeySource,
    /// A missing key is `400` when true; forwarded without dedupe when false.
    pub required: bool,
    /// `Retry-After` seconds on a `409 in_flight`.
    pub retry_after: Duration,
}

/// What to do with an event type outside the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlistedEvent {
    /// `200 {"status":"ignored"}`, nothing forwarded: the sender stops.
    Ignore,
    /// `422`: the sender retries (Fynapse) or gives up, as its rules say.
    Reject,
}

/// Optional body checks.
#[derive(Debug, Clone)]
pub struct BodyChecks {
    /// Parse the body as JSON (`400 invalid_json` when it is not).
    pub json: bool,
    /// Allowed event types; `None` allows all.
    pub events: Option<Vec<String>>,
    /// JSON pointer to the event type.
    pub event_field: String,
    /// Outcome for an event type not listed.
    pub unlisted: UnlistedEvent,
}

/// Forwarding options.
#[derive(Debug, Clone)]
pub struct Forward {
    /// Remove the scheme's signature headers before forwarding.
    pub strip_signature: bool,
    /// Extra headers set on the forwarded request.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Where a value came from, for error messages.
pub(super) fn pos<T>(s: &Spanned<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}

pub(super) fn dur(
    p: &mut Problems,
    v: &Option<file::Text>,
    key: &str,
    default: Duration,
) -> Duration {
    match v {
        None => default,
        Some(t) => parse_duration(&t.value).unwrap_or_else(|e| {
            p.push(Problem::at(key, pos(t), e));
            default
        }),
    }
}

/// Builds the model, collecting every problem rather than stopping at the first.
pub fn build(f: file::File, p: &mut Problems) -> Option<Config> {
    let mut warnings = Vec::new();
    let server = build_server(f.server, p);
    let dedupe = build_dedupe(f.dedupe, &mut warnings, p);
    let mut routes: Vec<Arc<Route>> = Vec::new();
    if f.routes.value.is_empty() {
        p.push(Problem::at(
            "routes",
            pos(&f.routes),
            "at least one route is needed".into(),
        ));
    }
    let mut seen_names: Vec<(String, u64)> = Vec::new();
    let mut seen_paths: Vec<(Option<String>, PathMatch, u64)> = Vec::new();
    for (i, r) in f.routes.value.into_iter().enumerate() {
        let key = format!("routes[{i}]");
        let name_line = r.value.name.referenced.line();
        let name = r.value.name.value.clone();
        if let Some((_, line)) = seen_names.iter().find(|(n, _)| *n == name) {
            p.push(Problem::at(
                &format!("{key}.name"),
                pos(&r.value.name),
                format!("duplicate route name `{name}` (first at line {line})"),
            ));
        }
        seen_names.push((name, name_line));
        if let Some(route) = build_route(&key, r, &mut warnings, p) {
            let clash = seen_paths
                .iter()
                .find(|(h, m, _)| *h == route.host && *m == route.path);
            if let Some((_, _, line)) = clash {
                p.push(Problem::at(
                    &format!("{key}.path"),
                    (name_line, 0),
                    format!("duplicate path {:?} (first at line {line})", route.path),
                ));
            }
            seen_paths.push((route.host.clone(), route.path.clone(), name_line));
            routes.push(Arc::new(route));
        }
    }
    if !p.is_empty() {
        return None;
    }
    Some(Config {
        server: server?,
        dedupe: dedupe?,
        routes,
        warnings,
    })
}

fn build_server(s: Option<file::Server>, p: &mut Problems) -> Option<Server> {
    let threads_default = std::thread::available_parallelism().map_or(1, |n| n.get());
    let Some(s) = s else {
        return Some(Server {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 8080))],
            tls: None,
            admin: None,
            threads: threads_default,
            body_timeout: Duration::from_secs(10),
            grace_period: Duration::from_secs(10),
            log_format: LogFormat::Human,
        });
    };
    let before = p.len();
    let mut listen = Vec::new();
    for (i, l) in s.listen.unwrap_or_default().iter().enumerate() {
        match l.value.parse::<SocketAddr>() {
            Ok(a) => listen.push(a),
            Err(_) => p.push(Problem::at(
                &format!("server.listen[{i}]"),
                pos(l),
                format!("`{}` is not an address like `0.0.0.0:8080`", l.value),
            )),
        }
    }
    if listen.is_empty() && p.len() == before {
        listen.push(SocketAddr::from(([0, 0, 0, 0], 8080)));
    }
    let admin = s
        .admin
        .as_ref()
        .and_then(|a| match a.value.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                p.push(Problem::at(
                    "server.admin",
                    pos(a),
                    format!("`{}` is not an address", a.value),
                ));
                None
            }
        });
    let tls = s.tls.as_ref().and_then(|t| {
        let (cert, key) = (&t.value.cert, &t.value.key);
        match pingora::tls::load_certs_and_key_files(&cert.value, &key.value) {
            Ok(Some(_)) => Some(Tls {
                cert: cert.value.clone(),
                key: key.value.clone(),
            }),
            Ok(None) => {
                p.push(Problem::at(
                    "server.tls",
                    pos(t),
                    "no certificate or key found".into(),
                ));
                None
            }
            Err(e) => {
                p.push(Problem::at(
                    "server.tls",
                    pos(t),
                    format!(
                        "cannot load certificate `{}` and key `{}`: {}",
                        cert.value,
                        key.value,
                        e.etype().as_str()
                    ),
                ));
                None
            }
        }
    });
    let threads = match s.threads {
        None => threads_default,
        Some(t) if (1..=1024).contains(&t.value) => t.value as usize,
        Some(t) => {
            p.push(Problem::at(
                "server.threads",
                pos(&t),
                "must be between 1 and 1024".into(),
            ));
            1
        }
    };
    let body_timeout = dur(
        p,
        &s.body_timeout,
        "server.body_timeout",
        Duration::from_secs(10),
    );
    let grace_period = dur(
        p,
        &s.grace_period,
        "server.grace_period",
        Duration::from_secs(10),
    );
    let log_format = match s.log_format.as_ref().map(|f| (f.value.as_str(), f)) {
        None | Some(("human", _)) => LogFormat::Human,
        Some(("json", _)) => LogFormat::Json,
        Some((other, f)) => {
            p.push(Problem::at(
                "server.log_format",
                pos(f),
                format!("`{other}`: use human or json"),
            ));
            LogFormat::Human
        }
    };
    Some(Server {
        log_format,
        listen,
        tls,
        admin,
        threads,
        body_timeout,
        grace_period,
    })
}

fn build_dedupe(
    d: Option<file::Dedupe>,
    warnings: &mut Vec<String>,
    p: &mut Problems,
) -> Option<Dedupe> {
    let d = d.unwrap_or(file::Dedupe {
        backend: None,
        ttl: None,
        in_flight_timeout: None,
        max_entries: None,
        redis: None,
    });
    let backend = match d.backend.as_ref().map(|b| (b.value.as_str(), b)) {
        None | Some(("memory", _)) => {
            if let Some(r) = &d.redis {
                warnings.push(format!(
                    "dedupe.redis (line {}) is ignored: dedupe.backend is `memory`, so replicas do not share their keys",
                    r.referenced.line()
                ));
            }
            Backend::Memory
        }
        Some(("redis", b)) => match &d.redis {
            Some(r) => super::redis::build_redis(r, p).unwrap_or(Backend::Memory),
            None => {
                p.push(Problem::at(
                    "dedupe.redis",
                    pos(b),
                    "backend `redis` needs a `dedupe.redis` block with a `url`".into(),
                ));
                Backend::Memory
            }
        },
        Some((other, b)) => {
            p.push(Problem::at(
                "dedupe.backend",
                pos(b),
                format!("unknown backend `{other}` (memory or redis)"),
            ));
            Backend::Memory
        }
    };
    let ttl = dur(p, &d.ttl, "dedupe.ttl", Duration::from_secs(72 * 3600));
    let in_flight_timeout = dur(
        p,
        &d.in_flight_timeout,
        "dedupe.in_flight_timeout",
        Duration::from_secs(60),
    );
    let max_entries = match d.max_entries {
        None => 1_000_000,
        Some(m) if m.value >= 1 => m.value,
        Some(m) => {
            p.push(Problem::at(
                "dedupe.max_entries",
                pos(&m),
                "must be at least 1".into(),
            ));
            1
        }
    };
    for (v, key) in [
        (ttl, "dedupe.ttl"),
        (in_flight_timeout, "dedupe.in_flight_timeout"),
    ] {
        if v.is_zero() {
            p.push(Problem::new(key, "must be longer than zero".into()));
        }
    }
    Some(Dedupe {
        backend,
        ttl,
        in_flight_timeout,
        max_entries,
    })
}

fn is_route_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn build_route(
    key: &str,
    r: Spanned<file::Route>,
    warnings: &mut Vec<String>,
    p: &mut Problems,
) -> Option<Route> {
    let before = p.len();
    let at = pos(&r);
    let r = r.value;
    let k = |sub: &str| format!("{key}.{sub}");
    let name = r.name.value.clone();
    if !is_route_name(&name) {
        p.push(Problem::at(
            &k("name"),
            pos(&r.name),
            "a route name is 1-64 letters, digits, `-`, `_` or `.`".into(),
        ));
    }
    let path = match (&r.path, &r.path_prefix) {
        (Some(x), None) => Some((PathMatch::Exact(x.value.clone()), x, "path")),
        (None, Some(x)) => Some((PathMatch::Prefix(x.value.clone()), x, "path_prefix")),
        (Some(x), Some(_)) => {
            p.push(Problem::at(
                &k("path"),
                pos(x),
                "set `path` or `path_prefix`, not both".into(),
            ));
            None
        }
        (None, None) => {
            p.push(Problem::at(
                key,
                at,
                "a route needs `path` or `path_prefix`".into(),
            ));
            None
        }
    };
    if let Some((_, x, which)) = &path {
        if !x.value.starts_with('/')
            || x.value.contains(['?', '#', ' '])
            || x.value.contains("/../")
        {
            p.push(Problem::at(
                &k(which),
                pos(x),
                format!("`{}` must be an absolute path without query", x.value),
            ));
        }
    }
    let host = r.host.as_ref().map(|h| h.value.to_ascii_lowercase());
    let mut methods = Vec::new();
    for (i, m) in r.methods.unwrap_or_default().iter().enumerate() {
        match Method::from_bytes(m.value.to_ascii_uppercase().as_bytes()) {
            Ok(x) => methods.push(x),
            Err(_) => p.push(Problem::at(
                &k(&format!("methods[{i}]")),
                pos(m),
                format!("`{}` is not a method", m.value),
            )),
        }
    }
    if methods.is_empty() {
        methods.push(Method::POST);
    }
    let allow_text = methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let allow = HeaderValue::from_str(&allow_text).unwrap_or(HeaderValue::from_static("POST"));
    let content_types = match r.content_types {
        None => vec!["application/json".to_string()],
        Some(v) => v
            .iter()
            .map(|c| c.value.trim().to_ascii_lowercase())
            .collect(),
    };
    let max_body = match &r.max_body {
        None => 1 << 20,
        Some(t) => match parse_size(&t.value) {
            Ok(n) if (1..=MAX_BODY_CEILING).contains(&n) => n as usize,
            Ok(_) => {
                p.push(Problem::at(
                    &k("max_body"),
                    pos(t),
                    "must be between 1 byte and 64MiB".into(),
                ));
                1
            }
            Err(e) => {
                p.push(Problem::at(&k("max_body"), pos(t), e));
                1
            }
        },
    };
    let upstream = build_upstream(&k("upstream"), &r.upstream, p);
    let verification = build_verification(&k("verify"), &r.verify, &name, warnings, p);
    let idempotency = build_idempotency(
        &k("idempotency"),
        r.idempotency.as_ref(),
        verification.as_ref(),
        &name,
        warnings,
        p,
    );
    let event_field = match &r.event_field {
        None => "/event_type".to_string(),
        Some(f) if f.value.starts_with('/') => f.value.clone(),
        Some(f) => {
            p.push(Problem::at(
                &k("event_field"),
                pos(f),
                "a JSON pointer starts with `/`".into(),
            ));
            String::new()
        }
    };
    let unlisted = match r.unlisted_events.as_ref().map(|u| (u.value.as_str(), u)) {
        None | Some(("ignore", _)) => UnlistedEvent::Ignore,
        Some(("reject", _)) => UnlistedEvent::Reject,
        Some((other, u)) => {
            p.push(Problem::at(
                &k("unlisted_events"),
                pos(u),
                format!("`{other}`: use `ignore` or `reject`"),
            ));
            UnlistedEvent::Ignore
        }
    };
    let events = r
        .events
        .map(|v| v.into_iter().map(|e| e.value).collect::<Vec<_>>());
    let json_key = matches!(
        idempotency.as_ref().map(|i| &i.source),
        Some(KeySource::Json(_))
    );
    let body = BodyChecks {
        json: r.validate_json.unwrap_or(false) || events.is_some() || json_key,
        events,
        event_field,
        unlisted,
    };
    let forward = build_forward(&k("forward"), r.forward.as_ref(), p);
    if p.len() != before {
        return None;
    }
    let (path, _, _) = path?;
    Some(Route {
        name: Arc::from(name),
        path,
        host,
        methods,
        allow,
        content_types,
        max_body,
        upstream: upstream?,
        verify: verification?,
        idempotency: idempotency?,
        body,
        forward,
    })
}

fn build_upstream(key: &str, u: &file::Upstream, p: &mut Problems) -> Option<Upstream> {
    let connect_timeout = dur(
        p,
        &u.connect_timeout,
        &format!("{key}.connect_timeout"),
        Duration::from_secs(2),
    );
    let timeout = dur(
        p,
        &u.timeout,
        &format!("{key}.timeout"),
        Duration::from_secs(30),
    );
    let ukey = format!("{key}.url");
    let bad = |p: &mut Problems, why: String| {
        p.push(Problem::at(&ukey, pos(&u.url), why));
        None
    };
    let url = match url::Url::parse(&u.url.value) {
        Ok(url) => url,
        Err(e) => return bad(p, format!("`{}` is not a URL: {e}", u.url.value)),
    };
    let tls = match url.scheme() {
        "http" => false,
        "https" => true,
        other => {
            return bad(
                p,
                format!("scheme `{other}` is not supported; use http or https"),
            )
        }
    };
    let ca = match (&u.ca, tls) {
        (None, _) => None,
        (Some(c), false) => {
            p.push(Problem::at(
                &format!("{key}.ca"),
                pos(c),
                "`ca` goes with an https URL".into(),
            ));
            return None;
        }
        (Some(c), true) => {
            let mut store = pingora::tls::RootCertStore::empty();
            match pingora::tls::load_ca_file_into_store(&c.value, &mut store) {
                Ok(()) if !store.is_empty() => Some(c.value.clone()),
                Ok(()) => {
                    p.push(Problem::at(
                        &format!("{key}.ca"),
                        pos(c),
                        format!("`{}` holds no certificate", c.value),
                    ));
                    return None;
                }
                Err(e) => {
                    p.push(Problem::at(
                        &format!("{key}.ca"),
                        pos(c),
                        format!("cannot load CA file `{}`: {}", c.value, e.etype().as_str()),
                    ));
                    return None;
                }
            }
        }
    };
    if !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
        || url.query().is_some()
    {
        return bad(p, "an upstream URL has no user, query or fragment".into());
    }
    let Some(host) = url.host_str() else {
        return bad(p, "the URL has no host".into());
    };
    let port = url.port_or_known_default().unwrap_or(80);
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    // Prefer IPv4 where a name has both (`localhost`): receivers most often
    // listen on 127.0.0.1 or 0.0.0.0.
    let resolved = (bare_host, port)
        .to_socket_addrs()
        .map(|it| it.collect::<Vec<_>>())
        .map(|mut v| {
            v.sort_by_key(|a| !a.is_ipv4());
            v.into_iter()
        });
    let addr = match resolved {
        Ok(mut it) => match it.next() {
            Some(a) => a,
            None => return bad(p, format!("`{host}` resolves to no address")),
        },
        Err(e) => return bad(p, format!("cannot resolve `{host}`: {e}")),
    };
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    Some(Upstream {
        url: u.url.value.clone(),
        tls,
        sni: bare_host.to_string(),
        ca,
        addr,
        authority,
        path: url.path().to_string(),
        connect_timeout,
        timeout,
    })
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

fn resolve_secret(
    key: &str,
    s: &Spanned<file::SecretSource>,
    route: &str,
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

fn build_verification(
    key: &str,
    v: &file::Verify,
    route: &str,
    warnings: &mut Vec<String>,
    p: &mut Problems,
) -> Option<Verification> {
    let scheme = match (v.scheme.value.as_str(), &v.hmac) {
        ("hmac", Some(h)) => build_generic(&format!("{key}.hmac"), h, p)?,
        ("hmac", None) => {
            p.push(Problem::at(
                &format!("{key}.hmac"),
                pos(&v.scheme),
                "scheme `hmac` needs an `hmac:` block (header, prefix, encoding, algorithm, template)".into(),
            ));
            return None;
        }
        (_, Some(h)) => {
            p.push(Problem::at(
                &format!("{key}.hmac"),
                pos(h),
                "`hmac:` options go with `scheme: hmac` only".into(),
            ));
            return None;
        }
        (name, None) => match verify::scheme_by_name(name) {
            Some(s) => s,
            None => {
                p.push(Problem::at(
                    &format!("{key}.scheme"),
                    pos(&v.scheme),
                    format!(
                        "unknown scheme `{}` (known: {}, hmac)",
                        v.scheme.value,
                        verify::SCHEME_NAMES.join(", ")
                    ),
                ));
                return None;
            }
        },
    };
    let mut keys = Vec::new();
    if v.secrets.value.is_empty() {
        p.push(Problem::at(
            &format!("{key}.secrets"),
            pos(&v.secrets),
            "at least one secret is needed".into(),
        ));
    }
    for (i, s) in v.secrets.value.iter().enumerate() {
        let skey = format!("{key}.secrets[{i}]");
        if let Some(secret) = resolve_secret(&skey, s, route, warnings, p) {
            match scheme.derive_key(&secret) {
                Ok(k) => keys.push(k),
                Err(e) => p.push(Problem::at(&skey, pos(s), e)),
            }
        }
    }
    let tolerance = match (&v.tolerance, scheme.signs_timestamp()) {
        (Some(t), false) => {
            p.push(Problem::at(
                &format!("{key}.tolerance"),
                pos(t),
                format!("scheme `{}` signs no timestamp, so it has no tolerance; its replay protection is the dedupe on its delivery id", scheme.name()),
            ));
            None
        }
        (None, false) => None,
        (t, true) => {
            let t = dur(p, t, &format!("{key}.tolerance"), Duration::from_secs(300));
            if t.is_zero() {
                p.push(Problem::new(
                    &format!("{key}.tolerance"),
                    "must be longer than zero".into(),
                ));
            }
            Some(t)
        }
    };
    Some(Verification {
        scheme,
        keys,
        tolerance,
        enforce: v.enforce.unwrap_or(true),
    })
}

/// The generic `hmac` scheme from its `hmac:` block.
fn build_generic(key: &str, h: &Spanned<file::Hmac>, p: &mut Problems) -> Option<Box<dyn Scheme>> {
    let o = &h.value;
    let before = p.len();
    let encoding = match o.encoding.as_ref().map(|e| (e.value.as_str(), e)) {
        None | Some(("hex", _)) => verify::Encoding::Hex,
        Some(("base64", _)) => verify::Encoding::Base64,
        Some((other, e)) => {
            p.push(Problem::at(
                &format!("{key}.encoding"),
                pos(e),
                format!("`{other}`: use hex or base64"),
            ));
            verify::Encoding::Hex
        }
    };
    let algorithm = match o.algorithm.as_ref().map(|a| (a.value.as_str(), a)) {
        None | Some(("sha256", _)) => verify::Algorithm::Sha256,
        Some(("sha1", _)) => verify::Algorithm::Sha1,
        Some(("sha512", _)) => verify::Algorithm::Sha512,
        Some((other, a)) => {
            p.push(Problem::at(
                &format!("{key}.algorithm"),
                pos(a),
                format!("`{other}`: use sha1, sha256 or sha512"),
            ));
            verify::Algorithm::Sha256
        }
    };
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

fn build_idempotency(
    key: &str,
    i: Option<&file::Idempotency>,
    v: Option<&Verification>,
    route: &str,
    warnings: &mut Vec<String>,
    p: &mut Problems,
) -> Option<Idempotency> {
    let scheme_header = v.and_then(|v| v.scheme.id_header());
    // Schemes name their id header in lower case, so this cannot fail.
    let from_scheme = || scheme_header.and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok());
    let retry_after = dur(
        p,
        &i.and_then(|i| i.retry_after.clone()),
        &format!("{key}.retry_after"),
        Duration::from_secs(5),
    );
    let text = i.and_then(|i| i.key.as_ref());
    let source = match text.map(|t| (t.value.as_str(), t)) {
        None | Some(("scheme", _)) => match from_scheme() {
            Some(h) => KeySource::Scheme(h),
            None if text.is_some() => {
                let t = text?;
                p.push(Problem::at(
                    &format!("{key}.key"),
                    pos(t),
                    "this scheme has no delivery id; use `header:NAME` or `json:/pointer`".into(),
                ));
                return None;
            }
            None => KeySource::None,
        },
        Some(("none", _)) => KeySource::None,
        Some((s, t)) => {
            if let Some(h) = s.strip_prefix("header:") {
                match HeaderName::from_bytes(h.trim().as_bytes()) {
                    Ok(h) => KeySource::Header(h),
                    Err(_) => {
                        p.push(Problem::at(
                            &format!("{key}.key"),
                            pos(t),
                            format!("`{h}` is not a header name"),
                        ));
                        return None;
                    }
                }
            } else if let Some(ptr) = s.strip_prefix("json:") {
                if !ptr.starts_with('/') {
                    p.push(Problem::at(
                        &format!("{key}.key"),
                        pos(t),
                        "a JSON pointer starts with `/`".into(),
                    ));
                    return None;
                }
                KeySource::Json(ptr.to_string())
            } else {
                p.push(Problem::at(
                    &format!("{key}.key"),
                    pos(t),
                    format!("`{s}`: use `header:NAME`, `json:/pointer`, `scheme` or `none`"),
                ));
                return None;
            }
        }
    };
    if source == KeySource::None {
        warnings.push(format!(
            "route `{route}`: no idempotency key, so duplicates are forwarded"
        ));
    }
    Some(Idempotency {
        required: i
            .and_then(|i| i.required)
            .unwrap_or(source != KeySource::None),
        source,
        retry_after,
    })
}

fn build_forward(key: &str, f: Option<&file::Forward>, p: &mut Problems) -> Forward {
    let mut headers = Vec::new();
    if let Some(h) = f.and_then(|f| f.headers.as_ref()) {
        for (name, value) in &h.value {
            let n = HeaderName::from_bytes(name.as_bytes());
            let v = HeaderValue::from_str(value);
            match (n, v) {
                (Ok(n), Ok(v)) if !n.as_str().starts_with("x-hookgate-") => headers.push((n, v)),
                (Ok(_), Ok(_)) => p.push(Problem::at(
                    &format!("{key}.headers.{name}"),
                    pos(h),
                    "X-Hookgate-* headers are hookgate's own".into(),
                )),
                _ => p.push(Problem::at(
                    &format!("{key}.headers.{name}"),
                    pos(h),
                    "not a valid header name and value".into(),
                )),
            }
        }
    }
    Forward {
        strip_signature: f.and_then(|f| f.strip_signature).unwrap_or(false),
        headers,
    }
}
