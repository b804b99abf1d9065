//! The request path, as Pingora glue.
//!
//! [`Gateway::handle`] runs one request through its stages, top to bottom:
//! route → unsigned handshake → method and type → size → signature header →
//! body → verify and freshness → signed handshake → body checks →
//! idempotency key → reserve → forward → settle.
//! Each stage either passes what the next one needs or stops the request
//! with a `Rejection` (or a settled `200`), which
//! one function writes. Nothing reaches the upstream before every check
//! passed, and the gateway knows nothing of HMAC: it asks
//! [`crate::verify`] for a verdict.
//!
//! [`Gateway`] is what an embedding calls from its own `ProxyHttp`
//! ([`Gateway::handle`] from `request_filter`, [`Gateway::logging`] from
//! `logging`); [`GatewayProxy`] is the `ProxyHttp` the `hookgate` binary
//! runs, a thin shell around it.

mod body;
mod checks;
mod compiled;
mod drain;
mod forward;
mod framing;
mod handshake;
mod ids;
mod limits;
mod observe;
mod proxy;
mod rejection;
mod reservation;
mod routing;
mod store;

pub use proxy::GatewayProxy;

/// Route matching, for the `micro` benchmark only: not a stable API.
#[doc(hidden)]
pub mod bench {
    pub use super::routing::RouteTable;
}
pub use crate::reason::{Reason, SenderNext};
pub use rejection::Settled;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use pingora::prelude::*;
use pingora::proxy::Session;

use crate::config::{Config, KeySource, OnStoreError};
use crate::dedupe::{DedupeKey, DedupeStore, Reservation, StoreError};
use crate::metrics::Metrics;
use crate::verify;
use body::BodyError;
use checks::BodyVerdict;
use compiled::{CompiledRoute, Pools, Routes};
use forward::{ExchangeError, UpstreamRequest};
pub(crate) use ids::new_request_id;
use limits::{BodyBudget, Lease};
use rejection::{settled_answer, BodyState, Rejection};
use reservation::Held;
use routing::Matched;
use store::store_for;

/// How a request ended, for the log line (and metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Verified and forwarded; the upstream answered this status.
    Forwarded(u16),
    /// Forwarded in monitor mode although verification failed.
    ForwardedUnverified(u16),
    /// Answered `200` without forwarding.
    Settled(Settled),
    /// A sender's setup handshake, answered by hookgate itself.
    Handshake,
    /// Rejected for this reason.
    Rejected(Reason),
    /// The sender's connection failed (mid-body, or while relaying).
    Aborted,
}

impl Outcome {
    /// A short label: `forwarded`, `monitored`, `duplicate`, `ignored`,
    /// `handshake`, `rejected`, `aborted`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Forwarded(_) => "forwarded",
            Outcome::ForwardedUnverified(_) => "monitored",
            Outcome::Settled(s) => s.label(),
            Outcome::Handshake => "handshake",
            Outcome::Rejected(_) => "rejected",
            Outcome::Aborted => "aborted",
        }
    }
}

/// Per-request state, created by [`Gateway::new_ctx`] and handed to
/// [`Gateway::handle`] and [`Gateway::logging`].
pub struct RequestCtx {
    request_id: String,
    started: Instant,
    route: Option<Arc<CompiledRoute>>,
    outcome: Option<Outcome>,
    /// From the first upstream byte written to its answer's header.
    upstream_time: Option<Duration>,
    /// A scheme failure seen in monitor mode.
    monitored_failure: Option<verify::Failure>,
    /// The body's bytes, held against `server.max_buffered` until the
    /// request ends.
    buffered: Option<Lease>,
    /// Answered like a duplicate because its signature was delivered or is
    /// in flight under another idempotency key: a replay.
    replayed: bool,
    /// What the stages saw, for the access line.
    seen: observe::Seen,
    /// Counted in flight until dropped.
    _in_flight: drain::InFlight,
}

impl RequestCtx {
    /// The request's id: answered as `X-Request-Id`, sent upstream as
    /// `X-Hookgate-Request-Id`, logged as `request_id`.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// How the request ended, once the gateway answered.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    fn route_name(&self) -> Option<&str> {
        self.route.as_ref().map(|r| &*r.name)
    }

    /// The reason label of a rejection (or of a monitored failure, or a
    /// replay answered as a duplicate), if any.
    fn reason(&self) -> Option<&'static str> {
        if self.replayed {
            return Some(crate::reason::REPLAYED_SIGNATURE);
        }
        match self.outcome {
            Some(Outcome::Rejected(r)) => Some(r.label()),
            _ => self.monitored_failure.map(|f| Reason::from(f).label()),
        }
    }
}

/// What stops a request before (or instead of) forwarding.
enum Stop {
    /// An error answer of hookgate's own.
    Reject(Rejection),
    /// `200` without forwarding.
    Settle(Settled),
    /// The answer to a setup handshake, without forwarding.
    Handshake(verify::HandshakeReply),
    /// The sender's connection failed: there is nobody to answer.
    Abort(Box<Error>),
}

impl From<Rejection> for Stop {
    fn from(r: Rejection) -> Self {
        Stop::Reject(r)
    }
}

/// A request that passed every check, ready to forward.
struct Delivery {
    route: Arc<CompiledRoute>,
    upstream_path: String,
    body: Bytes,
    /// `false` in monitor mode, when verification failed.
    verified: bool,
    /// The dedupe reservations: the idempotency key's and the signature's,
    /// on routes that dedupe.
    reservation: Vec<Held>,
}

impl Delivery {
    /// A verified delivery forwarded without dedupe (the store failed under
    /// `on_error: fail_open`).
    fn unreserved(route: Arc<CompiledRoute>, upstream_path: String, body: Bytes) -> Self {
        Delivery {
            route,
            upstream_path,
            body,
            verified: true,
            reservation: Vec::new(),
        }
    }
}

/// The verifying, deduping, forwarding request path.
///
/// Shared by every worker thread: all state is immutable or internally
/// synchronised.
pub struct Gateway {
    routes: ArcSwap<Routes>,
    pools: Pools,
    store: Arc<dyn DedupeStore>,
    on_store_error: OnStoreError,
    metrics: Arc<Metrics>,
    /// `server.max_buffered`, shared by every request.
    budget: Arc<BodyBudget>,
    /// Requests in flight, and whether the process is shutting down.
    drain: drain::Drain,
}

impl Gateway {
    /// A gateway for `config`'s routes with the dedupe store its `dedupe:`
    /// block asks for. A Redis store connects lazily, on the first request,
    /// so this needs no runtime and no reachable Redis.
    pub fn from_config(config: &Config) -> Result<Self, StoreError> {
        Ok(Gateway::new(config, store_for(config)?))
    }

    /// A gateway for `config`'s routes, remembering keys in `store`.
    pub fn new(config: &Config, store: Arc<dyn DedupeStore>) -> Self {
        let metrics = Arc::new(Metrics::new());
        let pools = Pools::new();
        Gateway {
            routes: ArcSwap::from_pointee(Routes::compile(config, &pools, &metrics)),
            pools,
            store,
            on_store_error: config.dedupe.on_error(),
            metrics,
            budget: BodyBudget::new(config.server.max_buffered),
            drain: drain::Drain::default(),
        }
    }

    /// Swaps in `config`'s routes, atomically: requests in flight finish on
    /// the routes they started with, the next ones use the new routes. The
    /// dedupe store and the upstream connection pools are kept. Listener,
    /// thread and dedupe settings cannot change without a restart; the
    /// reloader (`src/reload.rs`) says which changed.
    pub fn reload(&self, config: &Config) {
        let routes = Routes::compile(config, &self.pools, &self.metrics);
        self.routes.store(Arc::new(routes));
    }

    /// The names of the routes now in force.
    pub fn route_names(&self) -> Vec<Arc<str>> {
        let routes = self.routes.load();
        routes.table.routes().map(|r| r.name.clone()).collect()
    }

    /// The gateway's metrics; [`Metrics::encode`] renders them for a
    /// Prometheus scrape.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The dedupe store, shared with every replica when it is Redis.
    pub fn store(&self) -> &Arc<dyn DedupeStore> {
        &self.store
    }

    /// Requests begun and not yet logged.
    pub fn in_flight(&self) -> usize {
        self.drain.in_flight()
    }

    /// The process is shutting down: answers from now on close their
    /// connection.
    pub fn start_draining(&self) {
        self.drain.start();
    }

    /// Fresh per-request state.
    pub fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            request_id: new_request_id(),
            started: Instant::now(),
            route: None,
            outcome: None,
            upstream_time: None,
            monitored_failure: None,
            buffered: None,
            replayed: false,
            seen: observe::Seen::default(),
            _in_flight: self.drain.enter(),
        }
    }

    /// Runs the whole request path on `s` and writes the answer.
    ///
    /// Returns `Ok(true)` once an answer was written (always, unless the
    /// sender's connection failed, which is `Err`): call it from
    /// `request_filter` and return its result.
    pub async fn handle(&self, s: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let routes = self.routes.load_full();
        let stop = match self.accept(s, ctx, &routes).await {
            Ok(delivery) => match self.forward(s, ctx, delivery).await {
                Ok(()) => return Ok(true),
                Err(stop) => stop,
            },
            Err(stop) => stop,
        };
        let answer = match stop {
            Stop::Reject(r) => {
                ctx.outcome = Some(Outcome::Rejected(r.reason));
                r.answer(ctx.route_name())
            }
            Stop::Settle(what) => {
                ctx.outcome = Some(Outcome::Settled(what));
                settled_answer(what, ctx.route_name().unwrap_or_default())
            }
            Stop::Handshake(reply) => {
                ctx.outcome = Some(Outcome::Handshake);
                handshake::answer(reply)
            }
            Stop::Abort(e) => {
                ctx.outcome = Some(Outcome::Aborted);
                return Err(e);
            }
        };
        if self.drain.draining() {
            s.set_keepalive(None);
        }
        answer.write(s, &ctx.request_id).await?;
        Ok(true)
    }

    /// Every check, in order, up to a reserved key: a request that comes
    /// out of here is authentic, fresh, well-formed and new (or monitored).
    async fn accept(
        &self,
        s: &mut Session,
        ctx: &mut RequestCtx,
        routes: &Routes,
    ) -> std::result::Result<Delivery, Stop> {
        framing::transfer_coding(s.req_header())
            .map_err(|r| Rejection::new(r, BodyState::Unread))?;
        let (host, target) = checks::host_and_target(s.req_header());
        let Some(Matched {
            route,
            upstream_path,
        }) = routes.table.find(host, target)
        else {
            return Err(Rejection::new(Reason::NoRoute, BodyState::Unread).into());
        };
        ctx.route = Some(route.clone());
        let unread = |reason| Rejection::on(&route, reason, BodyState::Unread);
        let read = |reason| Rejection::on(&route, reason, BodyState::Read);

        // Dropbox's `GET ?challenge=`, WooCommerce's ping: answered here
        // whatever the route's methods and types; anything else goes on.
        let early = self
            .unsigned_handshake(s, &route, routes.body_timeout)
            .await?;
        checks::method_and_type(s.req_header(), &route).map_err(unread)?;
        let declared = checks::declared_size(s.req_header(), &route).map_err(unread)?;
        // A signature that is absent or unreadable fails whatever the body
        // is: refuse it before reading up to `max_body` bytes.
        let signature = route.verify.scheme.parse(&s.req_header().headers);
        if let (Err(f), true) = (&signature, route.verify.enforce) {
            return Err(unread((*f).into()).into());
        }
        let (body, lease) = match early {
            Some(pre_read) => pre_read,
            None => {
                let lease = self.budget.lease(declared.unwrap_or(0));
                read_body(s, &route, declared, routes.body_timeout, lease).await?
            }
        };
        ctx.buffered = Some(lease);

        let verdict = authenticate(s.req_header(), &route, signature, &body, &mut ctx.seen)?;
        let verified = match verdict {
            Ok(verified) => verified,
            Err(f) if route.verify.enforce => return Err(read(f.into()).into()),
            Err(f) => {
                // Monitor mode: an unauthenticated request never touches the
                // dedupe store; it is forwarded, marked unverified.
                ctx.monitored_failure = Some(f);
                return Ok(Delivery {
                    route,
                    upstream_path,
                    body,
                    verified: false,
                    reservation: Vec::new(),
                });
            }
        };
        let delivery = Delivery::unreserved(route, upstream_path, body);
        self.admit(s.req_header(), ctx, delivery, &verified).await
    }

    /// The checks of an authentic request, then its dedupe: body checks,
    /// idempotency key, the key's reservation, then the signature's.
    async fn admit(
        &self,
        req: &pingora::http::RequestHeader,
        ctx: &mut RequestCtx,
        mut delivery: Delivery,
        verified: &verify::Verified,
    ) -> std::result::Result<Delivery, Stop> {
        let route = delivery.route.clone();
        let read = |reason| Rejection::on(&route, reason, BodyState::Read);
        let checked = checks::body_checks(req, &route, &delivery.body);
        ctx.seen.event_type = observe::event_type(&route, &checked, &delivery.body);
        let json = match checked.map_err(read)? {
            BodyVerdict::Pass(json) => json,
            BodyVerdict::Settle(what) => return Err(Stop::Settle(what)),
        };
        let key = checks::idempotency_key(req, &route, verified.id.as_deref(), json.as_ref())
            .map_err(read)?;
        ctx.seen.key(key.as_deref());
        match key {
            Some(key) => {
                let key = DedupeKey::new(&route.idempotency.namespace, &key);
                match self.reserve(&route, key).await? {
                    Some(held) => delivery.reservation.push(held),
                    // The store failed and the policy is fail open: it was
                    // counted once; asking it again for the signature would
                    // only count it twice.
                    None => return Ok(delivery),
                }
            }
            None if route.idempotency.required => {
                return Err(read(Reason::MissingIdempotencyKey).into())
            }
            None => {}
        }
        match self
            .reserve_signature(ctx, &route, &verified.signature)
            .await
        {
            Ok(held) => delivery.reservation.extend(held),
            Err(stop) => {
                end_reservation(&route, delivery.reservation, false).await;
                return Err(stop);
            }
        }
        Ok(delivery)
    }

    /// Reserves `key`: held (forward), in flight (`409`), delivered
    /// (`200` duplicate), or the store's failure under the route's policy.
    async fn reserve(
        &self,
        route: &CompiledRoute,
        key: DedupeKey,
    ) -> std::result::Result<Option<Held>, Stop> {
        let rejected = |reason| Rejection::on(route, reason, BodyState::Read).into();
        match self.store.reserve(key).await {
            Ok(Reservation::Acquired(token)) => Ok(Some(Held::new(
                self.store.clone(),
                key,
                token,
                route.inflight.clone(),
            ))),
            Ok(Reservation::InFlight) => Err(rejected(Reason::InFlight)),
            Ok(Reservation::Delivered) => Err(Stop::Settle(Settled::Duplicate)),
            Err(e) => {
                let policy = self.on_store_error;
                self.metrics
                    .dedupe_errors
                    .with_label_values(&[&*route.name, policy.as_str()])
                    .inc();
                tracing::warn!(route = %route.name, error = %e, policy = policy.as_str(), "dedupe store unavailable");
                match policy {
                    OnStoreError::FailClosed => Err(rejected(Reason::DedupeUnavailable)),
                    // Forward without dedupe: a duplicate may get through.
                    OnStoreError::FailOpen => Ok(None),
                }
            }
        }
    }

    /// Reserves the matched signature as the delivery's second identity, on
    /// routes that dedupe: a captured delivery replayed with a fresh
    /// (unsigned) idempotency key is answered like a duplicate of the one it
    /// copies (the caller releases the key it reserved).
    async fn reserve_signature(
        &self,
        ctx: &mut RequestCtx,
        route: &CompiledRoute,
        signature: &[u8],
    ) -> std::result::Result<Option<Held>, Stop> {
        if signature.is_empty() || route.idempotency.source == KeySource::None {
            return Ok(None);
        }
        let key = DedupeKey::for_signature(&route.idempotency.namespace, signature);
        let reserved = self.reserve(route, key).await;
        ctx.replayed = matches!(
            reserved,
            Err(Stop::Settle(Settled::Duplicate))
                | Err(Stop::Reject(Rejection {
                    reason: Reason::InFlight,
                    ..
                }))
        );
        reserved
    }

    /// Sends the delivery upstream, settles its reservation on the answer's
    /// header, then relays the answer to the sender.
    async fn forward(
        &self,
        s: &mut Session,
        ctx: &mut RequestCtx,
        delivery: Delivery,
    ) -> std::result::Result<(), Stop> {
        let Delivery {
            route,
            upstream_path,
            body,
            verified,
            reservation,
        } = delivery;
        let upstream_req = UpstreamRequest {
            route: &route,
            path: &upstream_path,
            verified,
            body_len: body.len(),
            client: s.client_addr().and_then(|a| a.as_inet()).copied(),
            request_id: &ctx.request_id,
            tls: s.digest().is_some_and(|d| d.ssl_digest.is_some()),
        };
        let original = s.req_header();
        let build = || upstream_req.build(original);
        let started = Instant::now();
        let answer = match build() {
            Ok(req) => {
                let (connector, peer) = (&route.connector, &route.peer);
                forward::exchange(connector, peer, req, &build, &body, route.upstream.timeout).await
            }
            Err(e) => Err(ExchangeError::Unreachable(e)),
        };
        let elapsed = started.elapsed();
        ctx.upstream_time = Some(elapsed);
        self.metrics
            .record_upstream(&route.name, answer_class(&answer), elapsed);
        let answer = match answer {
            Ok(a) => a,
            Err(ExchangeError::Timeout) => {
                // The receiver has the request and may still process it: a
                // retry now would be a second copy.
                reservation.into_iter().for_each(Held::keep_until_expiry);
                return Err(Rejection::on(&route, Reason::UpstreamTimeout, BodyState::Read).into());
            }
            Err(ExchangeError::Unreachable(e)) => {
                tracing::debug!(route = %route.name, error = %e, "upstream exchange failed");
                end_reservation(&route, reservation, false).await;
                let reason = Reason::UpstreamUnreachable;
                return Err(Rejection::on(&route, reason, BodyState::Read).into());
            }
        };
        let status = answer.header.status;
        // Settle before relaying: the receiver has processed the delivery
        // whatever happens to the sender's connection now.
        end_reservation(&route, reservation, status.is_success()).await;
        ctx.outcome = Some(if verified {
            Outcome::Forwarded(status.as_u16())
        } else {
            Outcome::ForwardedUnverified(status.as_u16())
        });
        if self.drain.draining() {
            s.set_keepalive(None);
        }
        if let Err(e) =
            forward::relay(s, &route.connector, &route.peer, answer, &ctx.request_id).await
        {
            tracing::debug!(route = %route.name, error = %e, "relaying the answer failed");
            s.set_keepalive(None);
        }
        Ok(())
    }
}

/// Verification and freshness over the exact bytes the sender signed (for
/// URL-signing senders, the route's public URL plus the query as sent);
/// then, for a verified setup handshake, the answer hookgate gives itself.
fn authenticate(
    req: &pingora::http::RequestHeader,
    route: &CompiledRoute,
    signature: std::result::Result<verify::SignatureHeader, verify::Failure>,
    body: &[u8],
    seen: &mut observe::Seen,
) -> std::result::Result<verify::Verdict, Stop> {
    let v = &route.verify;
    let query = req.uri.query();
    let url = v
        .public_url
        .as_deref()
        .map(|u| verify::public_url(u, query));
    let signed = verify::SignedRequest::new(req.method.as_str(), &req.headers, body)
        .with_url(url.as_deref())
        .with_query(query);
    let now = verify::unix_now();
    let verdict = signature.and_then(|header| {
        let check = |tolerance| {
            let scheme = v.scheme.as_ref();
            verify::verify_parsed(scheme, &header, &signed, &v.keys, now, tolerance)
        };
        let verdict = check(v.tolerance);
        // A stale request whose MAC matched still tells the clock skew.
        let stale_ts = || check(None).ok().and_then(|v| v.timestamp);
        seen.signature_age = observe::verdict(route, &verdict, now, stale_ts);
        verdict
    });
    // A verified setup handshake: answered, with no key and nothing
    // forwarded.
    if let Ok(verified) = &verdict {
        if let Some(reply) = handshake::signed(route, &signed, verified) {
            return Err(Stop::Handshake(reply));
        }
    }
    Ok(verdict)
}

/// Reads the body whole, answering `100 Continue` first when asked, its
/// bytes held against `server.max_buffered`: `lease` holds the declared
/// length (`None` when it did not fit: `503` before a byte is read).
async fn read_body(
    s: &mut Session,
    route: &CompiledRoute,
    declared: Option<usize>,
    timeout: Duration,
    lease: Option<Lease>,
) -> std::result::Result<(Bytes, Lease), Stop> {
    let unread = |reason| Rejection::on(route, reason, BodyState::Unread).into();
    let Some(mut lease) = lease else {
        return Err(unread(Reason::Overloaded));
    };
    if checks::expects_continue(s.req_header()) {
        s.write_continue_response().await.map_err(Stop::Abort)?;
    }
    match body::read_whole(s, route.max_body, declared, timeout, &mut lease).await {
        Ok(b) => Ok((b, lease)),
        Err(BodyError::TooLarge) => Err(unread(Reason::BodyTooLarge)),
        Err(BodyError::Timeout) => Err(unread(Reason::BodyTimeout)),
        Err(BodyError::Overloaded) => Err(unread(Reason::Overloaded)),
        Err(BodyError::BadFraming) => Err(unread(Reason::BadFraming)),
        Err(BodyError::Downstream(e)) => Err(Stop::Abort(e)),
    }
}

/// Ends the reservations a request holds: delivered when the upstream
/// answered `2xx`, released otherwise. A store failure is logged; the
/// reservation then expires after `in_flight_timeout` by itself.
async fn end_reservation(route: &CompiledRoute, reservations: Vec<Held>, delivered: bool) {
    for held in reservations {
        end_one(route, held, delivered).await;
    }
}

async fn end_one(route: &CompiledRoute, held: Held, delivered: bool) {
    let (result, what) = if delivered {
        (held.settle().await, "mark delivered")
    } else {
        (held.release().await, "release reservation")
    };
    if let Err(e) = result {
        tracing::warn!(route = %route.name, error = %e, "could not {what}");
    }
}

/// The `class` label of an upstream exchange.
fn answer_class(answer: &std::result::Result<forward::Answer, ExchangeError>) -> &'static str {
    match answer {
        Ok(a) => crate::metrics::status_class(a.header.status.as_u16()),
        Err(ExchangeError::Timeout) => "timeout",
        Err(ExchangeError::Unreachable(_)) => "error",
    }
}
