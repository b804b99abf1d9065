//! The request path, as Pingora glue: route → method → type → size → body →
//! verify → freshness → body checks → dedupe → forward → settle.
//!
//! [`Gateway`] owns the whole path and is what an embedding calls from its
//! own `ProxyHttp::request_filter` ([`Gateway::handle`]); [`GatewayProxy`] is
//! the `ProxyHttp` the `hookgate` binary runs, a thin shell around it. The
//! gateway knows nothing of HMAC: it asks [`crate::verify`] for a verdict.

mod body;
mod forward;
mod proxy;
mod reply;
mod routing;

pub use proxy::GatewayProxy;
pub use reply::{Reason, Settled};
pub use routing::{Matched, RouteTable};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::connectors::ConnectorOptions;
use pingora::prelude::*;
use pingora::proxy::Session;
use pingora::upstreams::peer::HttpPeer;

use crate::config::{Config, KeySource, OnStoreError, Route, UnlistedEvent};
use crate::dedupe::{DedupeKey, DedupeStore, Reservation};
use crate::metrics::{status_class, Metrics};
use crate::verify;
use arc_swap::ArcSwap;
use body::BodyError;
use forward::{ExchangeError, UpstreamRequest};
use reply::{BodyState, Extra};

/// How a request ended, for the log line (and metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Verified and forwarded; the upstream answered this status.
    Forwarded(u16),
    /// Forwarded in monitor mode although verification failed.
    ForwardedUnverified(u16),
    /// Answered `200` without forwarding.
    Settled(Settled),
    /// Rejected for this reason.
    Rejected(Reason),
    /// The sender's connection failed (mid-body, or while relaying).
    Aborted,
}

impl Outcome {
    /// A short label: `forwarded`, `monitored`, `duplicate`, `ignored`,
    /// `rejected`, `aborted`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Forwarded(_) => "forwarded",
            Outcome::ForwardedUnverified(_) => "monitored",
            Outcome::Settled(Settled::Duplicate) => "duplicate",
            Outcome::Settled(Settled::Ignored) => "ignored",
            Outcome::Rejected(_) => "rejected",
            Outcome::Aborted => "aborted",
        }
    }
}

/// Per-request state, created by [`Gateway::new_ctx`].
#[derive(Debug)]
pub struct RequestCtx {
    /// Unique id, sent back as `X-Request-Id` and upstream as
    /// `X-Hookgate-Request-Id`.
    pub request_id: String,
    /// When the request started.
    pub started: Instant,
    /// The matched route's name.
    pub route: Option<Arc<str>>,
    /// How it ended (set once the gateway answered).
    pub outcome: Option<Outcome>,
    /// Time from the first upstream byte written to its answer's header.
    pub upstream_time: Option<Duration>,
    /// A scheme failure seen in monitor mode.
    pub monitored_failure: Option<verify::Failure>,
}

impl Default for RequestCtx {
    fn default() -> Self {
        RequestCtx {
            request_id: format!("{:032x}", crate::dedupe::unique_u128()),
            started: Instant::now(),
            route: None,
            outcome: None,
            upstream_time: None,
            monitored_failure: None,
        }
    }
}

impl RequestCtx {
    /// The reason label of a rejection (or of a monitored failure), if any.
    pub fn reason(&self) -> Option<&'static str> {
        match self.outcome {
            Some(Outcome::Rejected(r)) => Some(r.label()),
            _ => self.monitored_failure.map(verify::Failure::reason),
        }
    }
}

/// The verifying, deduping, forwarding request path.
///
/// Shared by every worker thread: all state is immutable or internally
/// synchronised.
pub struct Gateway {
    routing: ArcSwap<Routing>,
    store: Arc<dyn DedupeStore>,
    on_store_error: OnStoreError,
    connector: Connector,
    metrics: Arc<Metrics>,
}

/// What a config contributes to the request path; replaced whole on reload.
/// A request keeps the `Routing` it started with until it ends.
struct Routing {
    table: RouteTable,
    peers: HashMap<Arc<str>, HttpPeer>,
    /// A connector (and so a pool) per upstream CA file; routes without
    /// one use the gateway's connector, which trusts the system roots.
    connectors: HashMap<String, Connector>,
    body_timeout: Duration,
}

impl Routing {
    fn new(config: &Config) -> Self {
        Routing {
            table: RouteTable::new(&config.routes),
            peers: config
                .routes
                .iter()
                .map(|r| (r.name.clone(), forward::peer_for(r)))
                .collect(),
            connectors: config
                .routes
                .iter()
                .filter_map(|r| r.upstream.ca.clone())
                .map(|ca| {
                    let mut options = connector_options();
                    options.ca_file = Some(ca.clone());
                    (ca, Connector::new(Some(options)))
                })
                .collect(),
            body_timeout: config.server.body_timeout,
        }
    }
}

fn connector_options() -> ConnectorOptions {
    let mut options = ConnectorOptions::new(128);
    options.keepalive_pool_size = 128;
    options
}

impl Gateway {
    /// A gateway for `config`'s routes, remembering keys in `store`.
    pub fn new(config: &Config, store: Arc<dyn DedupeStore>) -> Self {
        Gateway {
            routing: ArcSwap::from_pointee(Routing::new(config)),
            store,
            on_store_error: config.dedupe.on_error(),
            connector: Connector::new(Some(connector_options())),
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Swaps in `config`'s routes, atomically: requests in flight finish on
    /// the routes they started with, the next ones use the new routes. The
    /// dedupe store and the upstream connection pool are kept. Listener,
    /// thread and dedupe settings cannot change without a restart; the
    /// caller compares them (see [`crate::server`]).
    pub fn reload(&self, config: &Config) {
        self.routing.store(Arc::new(Routing::new(config)));
    }

    /// The names of the routes now in force.
    pub fn route_names(&self) -> Vec<Arc<str>> {
        self.routing
            .load()
            .table
            .routes()
            .map(|r| r.name.clone())
            .collect()
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The dedupe store.
    pub fn store(&self) -> &Arc<dyn DedupeStore> {
        &self.store
    }

    /// Fresh per-request state.
    pub fn new_ctx(&self) -> RequestCtx {
        RequestCtx::default()
    }

    /// Runs the whole request path on `s` and writes the answer.
    ///
    /// Returns `Ok(true)` once an answer was written (always, unless the
    /// sender's connection failed, which is `Err`): call it from
    /// `request_filter` and return its result. Nothing reaches the upstream
    /// unless the request passed every check.
    pub async fn handle(&self, s: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let req = s.req_header();
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(req.uri.host());
        let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
        let routing = self.routing.load_full();
        let Some(matched) = routing.table.find(host, target) else {
            return self
                .reject(s, ctx, None, Reason::NoRoute, BodyState::Unread)
                .await;
        };
        let route = matched.route.clone();
        ctx.route = Some(route.name.clone());

        if let Err(reason) = admit(s, &route) {
            return self
                .reject(s, ctx, Some(&route), reason, BodyState::Unread)
                .await;
        }
        let declared = match declared_length(&s.req_header().headers) {
            Ok(n) => n,
            Err(()) => {
                return self
                    .reject(
                        s,
                        ctx,
                        Some(&route),
                        Reason::BodyTooLarge,
                        BodyState::Unread,
                    )
                    .await
            }
        };
        if declared.is_some_and(|n| n > route.max_body) {
            return self
                .reject(
                    s,
                    ctx,
                    Some(&route),
                    Reason::BodyTooLarge,
                    BodyState::Unread,
                )
                .await;
        }
        // A signature that is absent or unreadable fails whatever the body
        // is: refuse it before reading up to `max_body` bytes.
        let parsed = route.verify.scheme.parse(&s.req_header().headers);
        if let (Err(f), true) = (&parsed, route.verify.enforce) {
            return self
                .reject(s, ctx, Some(&route), (*f).into(), BodyState::Unread)
                .await;
        }

        if expects_continue(s) {
            s.write_continue_response().await?;
        }
        let body = match body::read_whole(s, route.max_body, declared, routing.body_timeout).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return self
                    .reject(
                        s,
                        ctx,
                        Some(&route),
                        Reason::BodyTooLarge,
                        BodyState::Unread,
                    )
                    .await
            }
            Err(BodyError::Timeout) => {
                return self
                    .reject(s, ctx, Some(&route), Reason::BodyTimeout, BodyState::Unread)
                    .await
            }
            Err(BodyError::Downstream(e)) => {
                ctx.outcome = Some(Outcome::Aborted);
                return Err(e);
            }
        };

        let verdict = parsed.and_then(|header| {
            let v = &route.verify;
            let req = s.req_header();
            verify::verify_parsed(
                v.scheme.as_ref(),
                &header,
                &verify::SignedRequest::new(req.method.as_str(), &req.headers, &body),
                &v.keys,
                unix_now(),
                v.tolerance,
            )
        });
        let verified = match verdict {
            Ok(v) => v,
            Err(f) => {
                if route.verify.enforce {
                    return self
                        .reject(s, ctx, Some(&route), f.into(), BodyState::Read)
                        .await;
                }
                // Monitor mode: an unauthenticated request never touches the
                // dedupe cache; it is forwarded, marked unverified.
                ctx.monitored_failure = Some(f);
                return self.forward(s, ctx, &routing, &matched, body, None).await;
            }
        };

        let json = if route.body.json {
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(v) => Some(v),
                Err(_) => {
                    return self
                        .reject(s, ctx, Some(&route), Reason::InvalidJson, BodyState::Read)
                        .await
                }
            }
        } else {
            None
        };
        if let (Some(allowed), Some(doc)) = (&route.body.events, &json) {
            let event = doc
                .pointer(&route.body.event_field)
                .and_then(|e| e.as_str());
            if !event.is_some_and(|e| allowed.iter().any(|a| a == e)) {
                return match route.body.unlisted {
                    UnlistedEvent::Ignore => self.settled(s, ctx, &route, Settled::Ignored).await,
                    UnlistedEvent::Reject => {
                        self.reject(
                            s,
                            ctx,
                            Some(&route),
                            Reason::EventNotAllowed,
                            BodyState::Read,
                        )
                        .await
                    }
                };
            }
        }

        let key = match idempotency_key(s, &route, verified.id.as_deref(), json.as_ref()) {
            Some(k) => Some(DedupeKey::new(&route.name, &k)),
            None if route.idempotency.required => {
                return self
                    .reject(
                        s,
                        ctx,
                        Some(&route),
                        Reason::MissingIdempotencyKey,
                        BodyState::Read,
                    )
                    .await
            }
            None => None,
        };
        let Some(key) = key else {
            return self.forward(s, ctx, &routing, &matched, body, None).await;
        };
        match self.store.reserve(key).await {
            Ok(Reservation::Acquired(token)) => {
                self.forward(s, ctx, &routing, &matched, body, Some((key, token)))
                    .await
            }
            Ok(Reservation::InFlight) => {
                self.reject(s, ctx, Some(&route), Reason::InFlight, BodyState::Read)
                    .await
            }
            Ok(Reservation::Delivered) => self.settled(s, ctx, &route, Settled::Duplicate).await,
            Err(e) => {
                let policy = match self.on_store_error {
                    OnStoreError::FailClosed => "fail_closed",
                    OnStoreError::FailOpen => "fail_open",
                };
                self.metrics
                    .dedupe_errors
                    .with_label_values(&[&*route.name, policy])
                    .inc();
                tracing::warn!(route = %route.name, error = %e, policy, "dedupe store unavailable");
                match self.on_store_error {
                    OnStoreError::FailClosed => {
                        self.reject(
                            s,
                            ctx,
                            Some(&route),
                            Reason::DedupeUnavailable,
                            BodyState::Read,
                        )
                        .await
                    }
                    // Forward without dedupe: a duplicate may get through.
                    OnStoreError::FailOpen => {
                        self.forward(s, ctx, &routing, &matched, body, None).await
                    }
                }
            }
        }
    }

    /// Writes the request's access-log line and records its metrics. Call
    /// it from `ProxyHttp::logging`. Never logs secrets, signatures or bodies.
    pub fn logging(&self, s: &Session, e: Option<&Error>, ctx: &RequestCtx) {
        let status = s.response_written().map_or(0, |r| r.status.as_u16());
        let outcome = ctx.outcome.map_or("aborted", Outcome::label);
        let route = ctx.route.as_deref().unwrap_or("-");
        let upstream_ms = ctx.upstream_time.map(|d| d.as_secs_f64() * 1000.0);
        let elapsed_ms = ctx.started.elapsed().as_secs_f64() * 1000.0;
        let error = e.map(|e| e.etype().as_str());
        let reason = ctx.reason().unwrap_or("-");
        let m = &self.metrics;
        m.requests
            .with_label_values(&[route, outcome, reason])
            .inc();
        m.request_seconds
            .with_label_values(&[route])
            .observe(elapsed_ms / 1000.0);
        if ctx.outcome == Some(Outcome::Settled(Settled::Duplicate)) {
            m.duplicates.with_label_values(&[route]).inc();
        }
        tracing::info!(
            target: "hookgate::access",
            request_id = %ctx.request_id,
            route,
            outcome,
            reason,
            status,
            upstream_ms,
            elapsed_ms,
            error,
        );
    }

    /// Forwards and settles the reservation (if any) on the upstream's answer.
    async fn forward(
        &self,
        s: &mut Session,
        ctx: &mut RequestCtx,
        routing: &Routing,
        matched: &Matched,
        body: Bytes,
        reservation: Option<(DedupeKey, crate::dedupe::Token)>,
    ) -> Result<bool> {
        let (route, upstream_path) = (&matched.route, matched.upstream_path.as_str());
        if reservation.is_some() {
            // Decremented by `end_reservation`, on every path out of here.
            self.metrics
                .inflight
                .with_label_values(&[&*route.name])
                .inc();
        }
        let verified = ctx.monitored_failure.is_none();
        let upstream_req = UpstreamRequest {
            route,
            path: upstream_path,
            verified,
            body_len: body.len(),
            client: s.client_addr().and_then(|a| a.as_inet()).copied(),
            request_id: &ctx.request_id,
            tls: s.digest().is_some_and(|d| d.ssl_digest.is_some()),
        };
        let original = s.req_header();
        let build = || upstream_req.build(original);
        let connector = match &route.upstream.ca {
            Some(ca) => routing.connectors.get(ca).unwrap_or(&self.connector),
            None => &self.connector,
        };
        let Some(peer) = routing.peers.get(&route.name) else {
            self.end_reservation(route, reservation, false).await;
            return Error::e_explain(ErrorType::InternalError, "route without peer");
        };
        let started = Instant::now();
        let answer = match build() {
            Ok(req) => {
                forward::exchange(connector, peer, req, &build, &body, route.upstream.timeout).await
            }
            Err(e) => Err(ExchangeError::Unreachable(e)),
        };
        let elapsed = started.elapsed();
        ctx.upstream_time = Some(elapsed);
        let class = match &answer {
            Ok(a) => status_class(a.header.status.as_u16()),
            Err(ExchangeError::Timeout) => "timeout",
            Err(ExchangeError::Unreachable(_)) => "error",
        };
        self.metrics
            .upstream
            .with_label_values(&[&*route.name, class])
            .inc();
        self.metrics
            .upstream_seconds
            .with_label_values(&[&*route.name])
            .observe(elapsed.as_secs_f64());
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                self.end_reservation(route, reservation, false).await;
                let reason = match e {
                    ExchangeError::Timeout => Reason::UpstreamTimeout,
                    ExchangeError::Unreachable(e) => {
                        tracing::debug!(route = %route.name, error = %e, "upstream exchange failed");
                        Reason::UpstreamUnreachable
                    }
                };
                return self
                    .reject(s, ctx, Some(route), reason, BodyState::Read)
                    .await;
            }
        };
        let status = answer.header.status.as_u16();
        // Settle before relaying: the receiver has processed the delivery
        // whatever happens to the sender's connection now.
        self.end_reservation(route, reservation, answer.header.status.is_success())
            .await;
        ctx.outcome = Some(if verified {
            Outcome::Forwarded(status)
        } else {
            Outcome::ForwardedUnverified(status)
        });
        if let Err(e) = forward::relay(s, connector, peer, answer, &ctx.request_id).await {
            tracing::debug!(route = %route.name, error = %e, "relaying the answer failed");
            s.set_keepalive(None);
        }
        Ok(true)
    }

    /// Ends a reservation (if the request holds one): marks the key
    /// delivered when the upstream answered `2xx`, releases it otherwise.
    /// A store failure is logged; the reservation then expires after
    /// `in_flight_timeout` by itself.
    async fn end_reservation(
        &self,
        route: &Route,
        reservation: Option<(DedupeKey, crate::dedupe::Token)>,
        delivered: bool,
    ) {
        let Some((key, token)) = reservation else {
            return;
        };
        self.metrics
            .inflight
            .with_label_values(&[&*route.name])
            .dec();
        let (result, what) = if delivered {
            (self.store.settle(key, token).await, "mark delivered")
        } else {
            (self.store.release(key, token).await, "release reservation")
        };
        if let Err(e) = result {
            tracing::warn!(route = %route.name, error = %e, "could not {what}");
        }
    }

    async fn reject(
        &self,
        s: &mut Session,
        ctx: &mut RequestCtx,
        route: Option<&Route>,
        reason: Reason,
        body_state: BodyState,
    ) -> Result<bool> {
        ctx.outcome = Some(Outcome::Rejected(reason));
        let extra = Extra {
            allow: (reason == Reason::MethodNotAllowed)
                .then(|| route.map(|r| r.allow.clone()))
                .flatten(),
            retry_after: match reason {
                Reason::InFlight | Reason::DedupeUnavailable => {
                    route.map(|r| r.idempotency.retry_after)
                }
                _ => None,
            },
        };
        let body = reply::error_body(reason, route.map(|r| &*r.name));
        reply::write_json(
            s,
            reason.status(),
            body,
            &ctx.request_id,
            extra,
            false,
            body_state,
        )
        .await?;
        Ok(true)
    }

    async fn settled(
        &self,
        s: &mut Session,
        ctx: &mut RequestCtx,
        route: &Route,
        what: Settled,
    ) -> Result<bool> {
        ctx.outcome = Some(Outcome::Settled(what));
        let body = reply::settled_body(what, &route.name);
        let dup = what == Settled::Duplicate;
        reply::write_json(
            s,
            200,
            body,
            &ctx.request_id,
            Extra::default(),
            dup,
            BodyState::Read,
        )
        .await?;
        Ok(true)
    }
}

/// Method and content type.
fn admit(s: &Session, route: &Route) -> std::result::Result<(), Reason> {
    let req = s.req_header();
    if !route.methods.contains(&req.method) {
        return Err(Reason::MethodNotAllowed);
    }
    let media = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim());
    match media {
        Some(m)
            if route
                .content_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(m)) =>
        {
            Ok(())
        }
        _ => Err(Reason::UnsupportedMediaType),
    }
}

/// The declared length, reconciled the way Pingora frames the body: every
/// `Content-Length` value, across header lines and comma-separated lists,
/// must be the same run of digits (RFC 9110 §8.6 lets `42, 42` stand for
/// `42`). Pingora has already refused conflicting or invalid values with a
/// `400`; what is left to refuse here is a value that does not fit a
/// `usize`, as too large.
fn declared_length(headers: &http::HeaderMap) -> std::result::Result<Option<usize>, ()> {
    let mut declared = None;
    for value in headers.get_all(http::header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|b| *b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return Err(());
            }
            let n: usize = std::str::from_utf8(part)
                .ok()
                .and_then(|p| p.parse().ok())
                .ok_or(())?;
            if declared.is_some_and(|d| d != n) {
                return Err(());
            }
            declared = Some(n);
        }
    }
    Ok(declared)
}

fn expects_continue(s: &Session) -> bool {
    s.req_header()
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// The idempotency key's bytes, if the request carries a non-empty one.
fn idempotency_key(
    s: &Session,
    route: &Route,
    signed_id: Option<&str>,
    json: Option<&serde_json::Value>,
) -> Option<Vec<u8>> {
    match &route.idempotency.source {
        KeySource::None => None,
        KeySource::Scheme(_) if signed_id.is_some_and(|id| !id.is_empty()) => {
            signed_id.map(|id| id.as_bytes().to_vec())
        }
        KeySource::Header(h) | KeySource::Scheme(h) => s
            .req_header()
            .headers
            .get(h)
            .map(|v| v.as_bytes().trim_ascii())
            .filter(|v| !v.is_empty())
            .map(<[u8]>::to_vec),
        KeySource::Json(ptr) => match json?.pointer(ptr)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.as_bytes().to_vec()),
            serde_json::Value::Number(n) => Some(n.to_string().into_bytes()),
            _ => None,
        },
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cl(values: &[&str]) -> std::result::Result<Option<usize>, ()> {
        let mut h = http::HeaderMap::new();
        for v in values {
            h.append(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        declared_length(&h)
    }

    #[test]
    fn content_length_is_reconciled_as_pingora_frames_it() {
        assert_eq!(cl(&[]), Ok(None));
        assert_eq!(cl(&["42"]), Ok(Some(42)));
        // Identical duplicates, as separate lines or as a list, are one value:
        // Pingora reads the body by it, so must the size check.
        assert_eq!(cl(&["42", "42"]), Ok(Some(42)));
        assert_eq!(cl(&["42, 42"]), Ok(Some(42)));
        assert_eq!(cl(&["42,42", " 42 "]), Ok(Some(42)));
        for bad in [
            &["42", "43"][..],
            &["42, 43"],
            &["+42"],
            &["-1"],
            &["0x10"],
            &["4 2"],
            &[""],
            &["42,"],
            &["99999999999999999999999"],
        ] {
            assert_eq!(cl(bad), Err(()), "{bad:?}");
        }
    }
}
