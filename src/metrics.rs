//! The gateway's metrics, in a Prometheus registry of its own.
//!
//! One [`Metrics`] per [`Gateway`](crate::gateway::Gateway), not the
//! process-global registry: several gateways in one process (tests,
//! embedders) keep their counts apart. Labels are bounded: route names come
//! from the config, outcomes and reasons from closed sets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::config::Route;
use crate::dedupe::DedupeStore;

mod process;

/// Signature age buckets, in seconds (absolute: a timestamp ahead of this
/// host's clock counts as old as one behind it): 1 s to 1 h, with the
/// default tolerance (300 s) and its half (150 s) as bounds.
const AGE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 150.0, 240.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Upstream classes counted from start, at 0, for every route.
const UPSTREAM_CLASSES: &[&str] = &["2xx", "4xx", "5xx", "error", "timeout"];

/// Latency buckets, in seconds: 0.5 ms to 30 s.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every instrument hookgate records.
pub struct Metrics {
    registry: Registry,
    /// `hookgate_requests_total{route,outcome,reason}`.
    pub(crate) requests: IntCounterVec,
    /// `hookgate_duplicates_total{route}`: deliveries answered as duplicates.
    pub(crate) duplicates: IntCounterVec,
    /// `hookgate_upstream_responses_total{route,class}`: `2xx`…`5xx`, or
    /// `error` (unreachable) and `timeout`.
    pub(crate) upstream: IntCounterVec,
    /// `hookgate_inflight_reservations{route}`: keys reserved and not settled.
    pub(crate) inflight: IntGaugeVec,
    /// `hookgate_dedupe_entries`: keys the store holds (set at scrape).
    pub(crate) dedupe_entries: IntGauge,
    /// `hookgate_dedupe_evictions_total`: delivered keys the store forgot
    /// before their `ttl` to stay within `max_entries` (read from the store
    /// at scrape).
    pub(crate) dedupe_evictions: IntCounter,
    /// The store's eviction count at the last scrape.
    evictions_seen: AtomicU64,
    /// `hookgate_dedupe_errors_total{route,policy}`: store failures, by what
    /// was done about them (`fail_closed`, `fail_open`).
    pub(crate) dedupe_errors: IntCounterVec,
    /// `hookgate_request_duration_seconds{route}`: whole request, as hookgate saw it.
    pub(crate) request_seconds: HistogramVec,
    /// `hookgate_upstream_duration_seconds{route}`: until the upstream's answer header.
    pub(crate) upstream_seconds: HistogramVec,
    /// `hookgate_config_reloads_total{result}`: `ok` or `refused`.
    pub(crate) reloads: IntCounterVec,
    /// `hookgate_verified_total{route,secret}`: verified requests by the
    /// secret that matched (its `name`, or its 1-based position).
    verified: IntCounterVec,
    /// `hookgate_signature_age_seconds{route}`: |now - signed timestamp|
    /// for every request whose MAC matched, stale ones included.
    signature_age: HistogramVec,
    /// `hookgate_route_verification_failing{route}`: 1 while a route's last
    /// `alerts.failing_after` parsed signatures all mismatched.
    verification_failing: IntGaugeVec,
    /// Each route's run of signature mismatches, kept across reloads.
    streaks: Mutex<HashMap<String, Arc<AtomicU32>>>,
    /// `hookgate_dedupe_settle_failures_total`: reservations the store
    /// could not mark delivered.
    dedupe_settle_failures: IntCounter,
    /// `process_*`, read from `/proc` at each scrape.
    process: process::ProcessMetrics,
}

impl Metrics {
    /// A fresh registry with every instrument registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|_| unreachable_metric(name));
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let histogram = |name: &str, help: &str| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
                &["route"],
            )
            .unwrap_or_else(|_| unreachable_metric(name));
            let _ = registry.register(Box::new(h.clone()));
            h
        };
        let requests = counter(
            "hookgate_requests_total",
            "Requests by route, outcome and reason.",
            &["route", "outcome", "reason"],
        );
        let duplicates = counter(
            "hookgate_duplicates_total",
            "Deliveries answered as duplicates.",
            &["route"],
        );
        let upstream = counter(
            "hookgate_upstream_responses_total",
            "Upstream answers by status class (or error, timeout).",
            &["route", "class"],
        );
        let dedupe_errors = counter(
            "hookgate_dedupe_errors_total",
            "Dedupe store failures, by the policy applied.",
            &["route", "policy"],
        );
        let reloads = counter(
            "hookgate_config_reloads_total",
            "Config reloads by result.",
            &["result"],
        );
        let inflight = IntGaugeVec::new(
            Opts::new(
                "hookgate_inflight_reservations",
                "Keys reserved and not yet settled.",
            ),
            &["route"],
        )
        .unwrap_or_else(|_| unreachable_metric("hookgate_inflight_reservations"));
        let _ = registry.register(Box::new(inflight.clone()));
        let dedupe_entries =
            IntGauge::new("hookgate_dedupe_entries", "Keys held by the dedupe store.")
                .unwrap_or_else(|_| unreachable_metric("hookgate_dedupe_entries"));
        let _ = registry.register(Box::new(dedupe_entries.clone()));
        let dedupe_evictions = IntCounter::new(
            "hookgate_dedupe_evictions_total",
            "Delivered keys forgotten before their ttl to stay within max_entries.",
        )
        .unwrap_or_else(|_| unreachable_metric("hookgate_dedupe_evictions_total"));
        let _ = registry.register(Box::new(dedupe_evictions.clone()));
        let request_seconds = histogram(
            "hookgate_request_duration_seconds",
            "Request duration, end to end.",
        );
        let (verified, signature_age, verification_failing, dedupe_settle_failures) =
            register_verification(&registry);
        for result in ["ok", "refused"] {
            reloads.with_label_values(&[result]);
        }
        let process = process::ProcessMetrics::register(&registry);
        let upstream_seconds = histogram(
            "hookgate_upstream_duration_seconds",
            "Time from forwarding to the upstream's answer header.",
        );
        Metrics {
            registry,
            requests,
            duplicates,
            upstream,
            inflight,
            dedupe_entries,
            dedupe_evictions,
            evictions_seen: AtomicU64::new(0),
            dedupe_errors,
            request_seconds,
            upstream_seconds,
            reloads,
            verified,
            signature_age,
            verification_failing,
            streaks: Mutex::new(HashMap::new()),
            dedupe_settle_failures,
            process,
        }
    }

    /// The per-route instruments of `route`, every series of the route
    /// created (counters at 0) so that they are scraped from start.
    /// `failing_after` is `alerts.failing_after`.
    pub(crate) fn for_route(&self, route: &Route, failing_after: u32) -> RouteMetrics {
        let name = &*route.name;
        self.duplicates.with_label_values(&[name]);
        self.requests.with_label_values(&[name, "forwarded", "-"]);
        for class in UPSTREAM_CLASSES {
            self.upstream.with_label_values(&[name, class]);
        }
        self.request_seconds.with_label_values(&[name]);
        self.upstream_seconds.with_label_values(&[name]);
        let streak = match self.streaks.lock() {
            Ok(mut s) => s.entry(name.to_string()).or_default().clone(),
            // Poisoned only if a panic happened mid-insert: count afresh.
            Err(_) => Arc::default(),
        };
        RouteMetrics {
            verified: route
                .verify
                .key_names
                .iter()
                .map(|k| self.verified.with_label_values(&[name, k]))
                .collect(),
            age: self.signature_age.with_label_values(&[name]),
            failing: self.verification_failing.with_label_values(&[name]),
            streak,
            failing_after,
        }
    }

    /// Counts one reservation the dedupe store could not mark delivered.
    pub fn dedupe_settle_failed(&self) {
        self.dedupe_settle_failures.inc();
    }

    /// Reads what only the store knows (its entries, its evictions) into
    /// the registry; the admin listener calls it before each scrape.
    pub(crate) fn observe_store(&self, store: &dyn DedupeStore) {
        if let Some(n) = store.entry_count() {
            self.dedupe_entries
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        if let Some(total) = store.evictions() {
            let before = self.evictions_seen.swap(total, Ordering::Relaxed);
            self.dedupe_evictions.inc_by(total.saturating_sub(before));
        }
    }

    /// Counts one finished request (`logging` calls it once per request).
    pub(crate) fn record_request(
        &self,
        route: &str,
        outcome: &str,
        reason: &str,
        duplicate: bool,
        elapsed: std::time::Duration,
    ) {
        self.requests
            .with_label_values(&[route, outcome, reason])
            .inc();
        self.request_seconds
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
        if duplicate {
            self.duplicates.with_label_values(&[route]).inc();
        }
    }

    /// Counts one upstream exchange by the class of its answer.
    pub(crate) fn record_upstream(&self, route: &str, class: &str, elapsed: std::time::Duration) {
        self.upstream.with_label_values(&[route, class]).inc();
        self.upstream_seconds
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// The registry in Prometheus text format.
    pub fn encode(&self) -> Vec<u8> {
        self.process.observe();
        let mut out = Vec::new();
        // Encoding into a Vec only fails on a malformed family, which the
        // constructors above cannot produce.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The verification and alert instruments (and `hookgate_build_info`),
/// registered in `registry`.
fn register_verification(
    registry: &Registry,
) -> (IntCounterVec, HistogramVec, IntGaugeVec, IntCounter) {
    let verified = IntCounterVec::new(
        Opts::new(
            "hookgate_verified_total",
            "Verified requests by route and the secret that matched.",
        ),
        &["route", "secret"],
    )
    .unwrap_or_else(|_| unreachable_metric("hookgate_verified_total"));
    let _ = registry.register(Box::new(verified.clone()));
    let signature_age = HistogramVec::new(
        HistogramOpts::new(
            "hookgate_signature_age_seconds",
            "How far the signed timestamp is from now (absolute), for requests whose MAC matched.",
        )
        .buckets(AGE_BUCKETS.to_vec()),
        &["route"],
    )
    .unwrap_or_else(|_| unreachable_metric("hookgate_signature_age_seconds"));
    let _ = registry.register(Box::new(signature_age.clone()));
    let gauge = |name: &str, help: &str, labels: &[&str]| {
        let g = IntGaugeVec::new(Opts::new(name, help), labels)
            .unwrap_or_else(|_| unreachable_metric(name));
        let _ = registry.register(Box::new(g.clone()));
        g
    };
    let verification_failing = gauge(
        "hookgate_route_verification_failing",
        "1 while the route's last alerts.failing_after signed requests all failed verification.",
        &["route"],
    );
    let build_info = gauge(
        "hookgate_build_info",
        "The running hookgate's version (always 1).",
        &["version"],
    );
    build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    let dedupe_settle_failures = IntCounter::new(
        "hookgate_dedupe_settle_failures_total",
        "Reservations the dedupe store could not mark delivered.",
    )
    .unwrap_or_else(|_| unreachable_metric("hookgate_dedupe_settle_failures_total"));
    let _ = registry.register(Box::new(dedupe_settle_failures.clone()));
    (
        verified,
        signature_age,
        verification_failing,
        dedupe_settle_failures,
    )
}

/// A route's verification instruments, held by its compiled route.
pub(crate) struct RouteMetrics {
    /// `hookgate_verified_total{route,secret}`, by key index.
    verified: Vec<IntCounter>,
    age: Histogram,
    failing: IntGauge,
    /// Signature mismatches since the last verified request.
    streak: Arc<AtomicU32>,
    failing_after: u32,
}

impl RouteMetrics {
    /// A request verified with key `key_index`, signed `age` seconds ago
    /// (if its scheme signs a timestamp): the route is not failing.
    pub fn verified(&self, key_index: usize, age: Option<i64>) {
        if let Some(c) = self.verified.get(key_index) {
            c.inc();
        }
        self.signature_age(age);
        self.streak.store(0, Ordering::Relaxed);
        self.failing.set(0);
    }

    /// A request whose MAC matched, signed `age` seconds ago.
    pub fn signature_age(&self, age: Option<i64>) {
        if let Some(age) = age {
            // Whole seconds: exact in an f64.
            #[allow(clippy::cast_precision_loss)]
            self.age.observe(age.unsigned_abs() as f64);
        }
    }

    /// `alerts.failing_after`.
    pub fn failing_after(&self) -> u32 {
        self.failing_after
    }

    /// A parsed signature that matched no key. `true` when this one made
    /// the route failing (the gauge turned `1`).
    pub fn mismatched(&self) -> bool {
        let n = self
            .streak
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if n >= self.failing_after && self.failing.get() == 0 {
            self.failing.set(1);
            return true;
        }
        false
    }
}

/// The metric definitions above are constants; a failure to build one is a
/// programming error caught by the unit test below, never by input.
fn unreachable_metric<T>(name: &str) -> T {
    panic!("invalid metric definition {name}")
}

/// The status class label of an upstream status.
pub(crate) fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_encodes() {
        let m = Metrics::new();
        m.requests.with_label_values(&["r", "forwarded", "-"]).inc();
        m.request_seconds.with_label_values(&["r"]).observe(0.01);
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(
            text.contains(
                "hookgate_requests_total{outcome=\"forwarded\",reason=\"-\",route=\"r\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("hookgate_request_duration_seconds_bucket"),
            "{text}"
        );
        // Two registries do not share counts.
        assert!(!String::from_utf8(Metrics::new().encode())
            .unwrap()
            .contains("forwarded"));
    }
}
