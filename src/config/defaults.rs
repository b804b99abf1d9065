//! Every default of the config file, in one place. The reference config
//! (`conf/hookgate.yaml`) and the README quote these values.

use std::net::SocketAddr;
use std::time::Duration;

/// `server.listen` when none is given.
pub const LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 8080);
/// `server.body_timeout`.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// `server.grace_period`.
pub const GRACE_PERIOD: Duration = Duration::from_secs(10);
/// `server.idle_timeout`: a keep-alive connection with no new request
/// within this time of the previous answer is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// `server.header_timeout`: a request's whole header must arrive within it.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// `server.max_connections`: open client connections served at once.
pub const MAX_CONNECTIONS: u64 = 10_000;
/// The largest `server.max_connections`.
pub const MAX_CONNECTIONS_CEILING: u64 = 1_000_000;
/// `server.max_buffered`: request body bytes held by all requests at once.
pub const MAX_BUFFERED: u64 = 256 << 20;
/// The largest `server.max_buffered`.
pub const MAX_BUFFERED_CEILING: u64 = 64 << 30;
/// `Retry-After` of an `overloaded` answer.
pub const OVERLOADED_RETRY_AFTER: Duration = Duration::from_secs(5);
/// The most `server.threads` may ask for.
pub const MAX_THREADS: u64 = 1024;

/// `dedupe.ttl`: how long a delivered key is remembered (a sender's whole
/// retry window: Fynapse retries for up to 72 h).
pub const TTL: Duration = Duration::from_secs(72 * 3600);
/// `dedupe.in_flight_timeout`.
pub const IN_FLIGHT_TIMEOUT: Duration = Duration::from_secs(60);
/// `dedupe.max_entries`.
pub const MAX_ENTRIES: u64 = 1_000_000;

/// `dedupe.redis.prefix`.
pub const REDIS_PREFIX: &str = "hookgate:";
/// `dedupe.redis.timeout`.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// `dedupe.redis.connections`.
pub const REDIS_CONNECTIONS: u64 = 2;

/// A route's `max_body`.
pub const MAX_BODY: u64 = 1 << 20;
/// The largest `max_body` a route may set.
pub const MAX_BODY_CEILING: u64 = 64 << 20;
/// A route's `content_types`, for most schemes.
pub const CONTENT_TYPE: &str = "application/json";
/// The form media type, which some senders post.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// A route's `content_types` when it sets none, by its scheme: JSON, and
/// forms too for the senders that post them (Slack's slash commands and
/// interactivity, Twilio's webhooks).
pub fn content_types(scheme: &str) -> &'static [&'static str] {
    match scheme {
        "slack" | "twilio" => &[CONTENT_TYPE, FORM_CONTENT_TYPE],
        _ => &[CONTENT_TYPE],
    }
}
/// A route's `event_field`.
pub const EVENT_FIELD: &str = "/event_type";
/// `upstream.connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// `upstream.timeout`.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// `verify.tolerance`, for schemes that sign a timestamp.
pub const TOLERANCE: Duration = Duration::from_secs(300);
/// `alerts.failing_after`.
pub const FAILING_AFTER: u32 = 20;
/// `idempotency.retry_after`.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
