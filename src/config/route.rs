//! `routes[]`: which requests a route takes, where they go, how duplicates
//! are recognised and what the body must hold. Verification has its own
//! file (`verification`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use serde_saphyr::Spanned;

pub use super::choices::UnlistedEvent;
use super::value::{or_default, pos, Size, Typed};
use super::verification::{build_verification, Verification};
use super::{defaults, file, Load, Problem, Problems};

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

impl AsRef<Route> for Route {
    fn as_ref(&self) -> &Route {
        self
    }
}

/// An upstream receiver, resolved at load time.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The URL as configured (for display).
    pub url: String,
    /// The address the URL's host resolved to at load (a reload resolves again).
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

/// Where the idempotency key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A request header.
    Header(HeaderName),
    /// A JSON pointer into the body.
    Json(String),
    /// The scheme's own delivery id: the id the signature covered when the
    /// scheme signs one (Standard Webhooks, also under `svix-id`; Mailgun's
    /// token, from the body), else the scheme's id header, if it has one.
    Scheme(Option<HeaderName>),
    /// No dedupe on this route.
    None,
}

/// Dedupe settings of a route.
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// Where the key comes from.
    pub source: KeySource,
    /// The scope keys are remembered under (default: the route's name), so
    /// that a renamed route can keep the keys it delivered.
    pub namespace: Arc<str>,
    /// A missing key is `400` when true; forwarded without dedupe when false.
    pub required: bool,
    /// `Retry-After` on a `409 in_flight` or `503 dedupe_unavailable`.
    pub retry_after: Duration,
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

fn is_route_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Builds one route; `None` (with the problems recorded) when any part of
/// it is wrong.
pub(super) fn build_route(
    key: &str,
    r: Spanned<file::Route>,
    load: &mut Load,
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
    let path = build_path(key, &r, at, p);
    let host = r.host.as_ref().map(|h| h.value.to_ascii_lowercase());
    let (methods, allow) = build_methods(key, r.methods.as_deref(), p);
    let max_body = build_max_body(&k("max_body"), r.max_body.as_ref(), p);
    let upstream = build_upstream(&k("upstream"), &r.upstream, load, p);
    let verify = build_verification(&k("verify"), &r.verify, &name, load, warnings, p);
    let content_types: Vec<String> = match &r.content_types {
        None => defaults::content_types(&r.verify.scheme.value)
            .iter()
            .map(|t| t.to_string())
            .collect(),
        Some(v) => v
            .iter()
            .map(|c| c.value.trim().to_ascii_lowercase())
            .collect(),
    };
    if let (Some(u), Some(PathMatch::Prefix(_))) = (&r.verify.public_url, &path) {
        p.push(Problem::at(
            &k("verify.public_url"),
            pos(u),
            "a URL-signing sender signs one URL: give its route an exact `path`, not `path_prefix`"
                .into(),
        ));
    }
    let idempotency = build_idempotency(
        &k("idempotency"),
        r.idempotency.as_ref(),
        verify.as_ref(),
        &name,
        warnings,
        p,
    );
    let json_key = matches!(
        idempotency.as_ref().map(|i| &i.source),
        Some(KeySource::Json(_))
    );
    let body = build_body_checks(key, &r, json_key, p);
    let takes_forms = content_types
        .iter()
        .any(|t| t == defaults::FORM_CONTENT_TYPE);
    let required_json_key = idempotency
        .as_ref()
        .is_some_and(|i| i.required && matches!(i.source, KeySource::Json(_)));
    if takes_forms && required_json_key {
        warnings.push(format!(
            "route `{name}`: form-encoded bodies carry no JSON idempotency key, so they are refused `400 missing_idempotency_key`; set `idempotency.required: false` to forward them without dedupe"
        ));
    }
    let forward = build_forward(&k("forward"), r.forward.as_ref(), p);
    if p.len() != before {
        return None;
    }
    Some(Route {
        name: Arc::from(name),
        path: path?,
        host,
        methods,
        allow,
        content_types,
        max_body,
        upstream: upstream?,
        verify: verify?,
        idempotency: idempotency?,
        body,
        forward,
    })
}

fn build_path(key: &str, r: &file::Route, at: (u64, u64), p: &mut Problems) -> Option<PathMatch> {
    let (path, x, which) = match (&r.path, &r.path_prefix) {
        (Some(x), None) => (PathMatch::Exact(x.value.clone()), x, "path"),
        (None, Some(x)) => (PathMatch::Prefix(x.value.clone()), x, "path_prefix"),
        (Some(x), Some(_)) => {
            p.push(Problem::at(
                &format!("{key}.path"),
                pos(x),
                "set `path` or `path_prefix`, not both".into(),
            ));
            return None;
        }
        (None, None) => {
            p.push(Problem::at(
                key,
                at,
                "a route needs `path` or `path_prefix`".into(),
            ));
            return None;
        }
    };
    if !x.value.starts_with('/') || x.value.contains(['?', '#', ' ']) || x.value.contains("/../") {
        p.push(Problem::at(
            &format!("{key}.{which}"),
            pos(x),
            format!("`{}` must be an absolute path without query", x.value),
        ));
        return None;
    }
    Some(path)
}

fn build_methods(
    key: &str,
    written: Option<&[file::Text]>,
    p: &mut Problems,
) -> (Vec<Method>, HeaderValue) {
    let mut methods = Vec::new();
    for (i, m) in written.unwrap_or_default().iter().enumerate() {
        match Method::from_bytes(m.value.to_ascii_uppercase().as_bytes()) {
            Ok(x) => methods.push(x),
            Err(_) => p.push(Problem::at(
                &format!("{key}.methods[{i}]"),
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
    // Method names are tokens, so this holds; POST is the safe fallback.
    let allow = HeaderValue::from_str(&allow_text).unwrap_or(HeaderValue::from_static("POST"));
    (methods, allow)
}

fn build_max_body(key: &str, written: Option<&Typed<Size>>, p: &mut Problems) -> usize {
    let Some(t) = written else {
        return defaults::MAX_BODY as usize;
    };
    let at = t.at;
    match t.check(key, p) {
        Some(Size(n)) if (1..=defaults::MAX_BODY_CEILING).contains(&n) => n as usize,
        Some(_) => {
            p.push(Problem::at(
                key,
                at,
                "must be between 1 byte and 64MiB".into(),
            ));
            1
        }
        None => 1,
    }
}

fn build_body_checks(key: &str, r: &file::Route, json_key: bool, p: &mut Problems) -> BodyChecks {
    let event_field = match &r.event_field {
        None => defaults::EVENT_FIELD.to_string(),
        Some(f) if f.value.starts_with('/') => f.value.clone(),
        Some(f) => {
            p.push(Problem::at(
                &format!("{key}.event_field"),
                pos(f),
                "a JSON pointer starts with `/`".into(),
            ));
            String::new()
        }
    };
    let unlisted = or_default(
        r.unlisted_events.as_ref(),
        &format!("{key}.unlisted_events"),
        UnlistedEvent::Ignore,
        p,
    );
    let events = r
        .events
        .as_ref()
        .map(|v| v.iter().map(|e| e.value.clone()).collect::<Vec<_>>());
    BodyChecks {
        json: r.validate_json.unwrap_or(false) || events.is_some() || json_key,
        events,
        event_field,
        unlisted,
    }
}

fn build_upstream(
    key: &str,
    u: &file::Upstream,
    load: &mut Load,
    p: &mut Problems,
) -> Option<Upstream> {
    let connect_timeout = or_default(
        u.connect_timeout.as_ref(),
        &format!("{key}.connect_timeout"),
        defaults::CONNECT_TIMEOUT,
        p,
    );
    let timeout = or_default(
        u.timeout.as_ref(),
        &format!("{key}.timeout"),
        defaults::UPSTREAM_TIMEOUT,
        p,
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
        (Some(c), true) => Some(check_ca_file(&format!("{key}.ca"), c, p)?),
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
    let addr = match bare_host.parse::<std::net::IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) if load.offline => {
            load.skipped
                .push(format!("{key}.url: did not resolve `{bare_host}` (DNS)"));
            SocketAddr::from(([0, 0, 0, 0], port))
        }
        Err(_) => match resolve(bare_host, port) {
            Ok(a) => a,
            Err(why) => return bad(p, why),
        },
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

/// Resolves an upstream host once, at load. Prefers IPv4 where a name has
/// both (`localhost`): receivers most often listen on 127.0.0.1 or 0.0.0.0.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let mut addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    addrs
        .into_iter()
        .next()
        .ok_or_else(|| format!("`{host}` resolves to no address"))
}

/// A CA file must hold at least one certificate; a bad one would otherwise
/// fail inside Pingora's connector at the first request.
fn check_ca_file(key: &str, c: &file::Text, p: &mut Problems) -> Option<String> {
    let mut store = pingora::tls::RootCertStore::empty();
    let why = match pingora::tls::load_ca_file_into_store(&c.value, &mut store) {
        Ok(()) if !store.is_empty() => return Some(c.value.clone()),
        Ok(()) => format!("`{}` holds no certificate", c.value),
        Err(e) => format!("cannot load CA file `{}`: {}", c.value, e.etype().as_str()),
    };
    p.push(Problem::at(key, pos(c), why));
    None
}

fn build_idempotency(
    key: &str,
    i: Option<&file::Idempotency>,
    v: Option<&Verification>,
    route: &str,
    warnings: &mut Vec<String>,
    p: &mut Problems,
) -> Option<Idempotency> {
    let scheme = v.map(|v| v.scheme.as_ref());
    // Schemes name their id header in lower case, so this cannot fail.
    let header = scheme
        .and_then(|s| s.id_header())
        .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok());
    // A scheme with an id (in a header, or read with the signature, as
    // Mailgun's token) dedupes on it unless told otherwise.
    let from_scheme = || {
        scheme
            .is_some_and(|s| s.carries_id())
            .then(|| KeySource::Scheme(header.clone()))
    };
    let retry_after = or_default(
        i.and_then(|i| i.retry_after.as_ref()),
        &format!("{key}.retry_after"),
        defaults::RETRY_AFTER,
        p,
    );
    let text = i.and_then(|i| i.key.as_ref());
    let fail = |p: &mut Problems, t: &file::Text, why: String| {
        p.push(Problem::at(&format!("{key}.key"), pos(t), why));
        None
    };
    let source = match text {
        None => from_scheme().unwrap_or(KeySource::None),
        Some(t) => match t.value.as_str() {
            "scheme" => match from_scheme() {
                Some(source) => source,
                None => {
                    return fail(
                        p,
                        t,
                        "this scheme has no delivery id; use `header:NAME` or `json:/pointer`"
                            .into(),
                    )
                }
            },
            "none" => KeySource::None,
            s => {
                if let Some(h) = s.strip_prefix("header:") {
                    match HeaderName::from_bytes(h.trim().as_bytes()) {
                        Ok(h) => KeySource::Header(h),
                        Err(_) => return fail(p, t, format!("`{h}` is not a header name")),
                    }
                } else if let Some(ptr) = s.strip_prefix("json:") {
                    if !ptr.starts_with('/') {
                        return fail(p, t, "a JSON pointer starts with `/`".into());
                    }
                    KeySource::Json(ptr.to_string())
                } else {
                    return fail(
                        p,
                        t,
                        format!("`{s}`: use `header:NAME`, `json:/pointer`, `scheme` or `none`"),
                    );
                }
            }
        },
    };
    if source == KeySource::None {
        warnings.push(format!(
            "route `{route}`: no idempotency key, so duplicates are forwarded"
        ));
    }
    let namespace = match i.and_then(|i| i.namespace.as_ref()) {
        None => Arc::from(route),
        Some(n) if is_route_name(&n.value) => Arc::from(n.value.as_str()),
        Some(n) => {
            p.push(Problem::at(
                &format!("{key}.namespace"),
                pos(n),
                "a namespace is 1-64 letters, digits, `-`, `_` or `.`".into(),
            ));
            return None;
        }
    };
    Some(Idempotency {
        namespace,
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
