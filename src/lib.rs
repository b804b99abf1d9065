//! hookgate: a webhook verifier gateway.
//!
//! It stands in front of an existing webhook receiver, reads each delivery
//! whole, checks its signature and timestamp, drops duplicates, and forwards
//! only clean requests, byte for byte.
//!
//! The crate has layers that can be used apart:
//!
//! - [`verify`]: pure signature verification (headers + body + keys + now →
//!   [`verify::Verdict`]), no Pingora, no I/O.
//! - [`dedupe`]: the [`dedupe::DedupeStore`] trait, the in-memory store and
//!   the Redis store shared by replicas.
//! - [`config`]: the YAML routes file → a validated [`config::Config`].
//! - [`gateway`]: the request path on Pingora; [`gateway::Gateway::handle`]
//!   can be called from your own `ProxyHttp::request_filter`.
//! - [`server`]: a config as a Pingora server, with its admin listener and
//!   hot reload.
//!
//! ```
//! use hookgate::verify::{self, Fynapse, Scheme};
//! use http::{HeaderMap, HeaderValue};
//!
//! let key = Fynapse.derive_key("whsec_test_secret").unwrap();
//! let body = br#"{"event_type":"balance.extracted"}"#;
//! let mut headers = HeaderMap::new();
//! for (name, value) in Fynapse.sign(&key, body, 1_700_000_000, "") {
//!     headers.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
//!                    HeaderValue::from_str(&value).unwrap());
//! }
//! let request = verify::SignedRequest::new("POST", &headers, body);
//! let verdict = verify::verify(&Fynapse, &request, &[key], 1_700_000_010,
//!                              Some(std::time::Duration::from_secs(300)));
//! assert!(verdict.is_ok());
//! ```

#![warn(missing_docs)]

mod admin;
pub mod config;
pub mod dedupe;
pub mod gateway;
mod metrics;
mod reason;
mod reload;
pub mod server;
pub mod verify;

pub use metrics::Metrics;
pub use reason::{Reason, SenderNext};
