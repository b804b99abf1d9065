//! Routes compiled for the request path: each config route with the runtime
//! objects a request on it needs (its upstream peer, the connection pool
//! for its CA, its metric handles), built once per config load or reload,
//! so that nothing is looked up, and nothing can be missing, at request
//! time.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pingora::connectors::http::Connector;
use pingora::connectors::ConnectorOptions;
use pingora::upstreams::peer::HttpPeer;
use prometheus::IntGauge;

use super::routing::RouteTable;
use crate::config::{Config, Route};
use crate::metrics::{Metrics, RouteMetrics};

/// Upstream connections idle longer than this are not reused. It sits under
/// the 5 s keep-alive default of common receivers (Node.js), so that a pooled
/// connection is seldom closed by the receiver just as hookgate reuses it.
pub(crate) const POOL_IDLE: Duration = Duration::from_secs(4);

/// Connections kept idle per upstream pool.
const POOL_SIZE: usize = 128;

/// A route ready for requests.
pub(crate) struct CompiledRoute {
    route: Arc<Route>,
    /// The upstream, with the route's timeouts.
    pub peer: HttpPeer,
    /// The connector (and so the pool) for the route's upstream CA.
    pub connector: Arc<Connector>,
    /// `hookgate_inflight_reservations{route}`.
    pub inflight: IntGauge,
    /// The route's verification instruments.
    pub verification: RouteMetrics,
}

impl Deref for CompiledRoute {
    type Target = Route;

    fn deref(&self) -> &Route {
        &self.route
    }
}

impl AsRef<Route> for CompiledRoute {
    fn as_ref(&self) -> &Route {
        &self.route
    }
}

/// What a config contributes to the request path; replaced whole on
/// reload. A request keeps the `Routes` it started with until it ends.
pub(crate) struct Routes {
    pub table: RouteTable<CompiledRoute>,
    pub body_timeout: Duration,
}

impl Routes {
    /// Compiles `config`'s routes, taking connectors from `pools`.
    pub fn compile(config: &Config, pools: &Pools, metrics: &Metrics) -> Self {
        let policy = config.dedupe.on_error();
        let compiled = config.routes.iter().map(|route| {
            // Counted from start, at 0, under the policy in force.
            metrics
                .dedupe_errors
                .with_label_values(&[&*route.name, policy.as_str()]);
            Arc::new(CompiledRoute {
                peer: peer_for(route),
                connector: pools.for_ca(route.upstream.ca.as_deref()),
                inflight: metrics.inflight.with_label_values(&[&*route.name]),
                verification: metrics.for_route(route, config.failing_after),
                route: route.clone(),
            })
        });
        Routes {
            table: RouteTable::new(compiled),
            body_timeout: config.server.body_timeout,
        }
    }
}

/// One connector per upstream CA file (`None`: the system roots), kept for
/// the gateway's life so that a reload keeps its pooled connections.
pub(crate) struct Pools {
    by_ca: Mutex<HashMap<Option<String>, Arc<Connector>>>,
}

impl Pools {
    pub fn new() -> Self {
        Pools {
            by_ca: Mutex::new(HashMap::new()),
        }
    }

    fn for_ca(&self, ca: Option<&str>) -> Arc<Connector> {
        let make = || {
            let mut options = ConnectorOptions::new(POOL_SIZE);
            options.keepalive_pool_size = POOL_SIZE;
            options.ca_file = ca.map(str::to_string);
            Arc::new(Connector::new(Some(options)))
        };
        // A poisoned lock only means another reload panicked mid-insert;
        // a fresh connector is always correct, just without pooled
        // connections.
        match self.by_ca.lock() {
            Ok(mut by_ca) => by_ca
                .entry(ca.map(str::to_string))
                .or_insert_with(make)
                .clone(),
            Err(_) => make(),
        }
    }
}

/// The peer for a route's upstream, with its timeouts.
fn peer_for(route: &Route) -> HttpPeer {
    let u = &route.upstream;
    let mut peer = HttpPeer::new(
        u.addr,
        u.tls,
        if u.tls { u.sni.clone() } else { String::new() },
    );
    peer.options.connection_timeout = Some(u.connect_timeout);
    peer.options.read_timeout = Some(u.timeout);
    peer.options.write_timeout = Some(u.timeout);
    peer.options.idle_timeout = Some(POOL_IDLE);
    peer
}
