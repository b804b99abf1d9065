//! Every answer hookgate gives by itself, declared once: its status, its
//! stable label, what the sender does next and when it is given. The
//! gateway answers with it, the verify layer names its failures by it, logs
//! and metrics label by it, and a test holds the README's status table to
//! it. Pure data: no Pingora here.

use crate::verify::Failure;

/// What a sender does with an answer, as Fynapse's delivery rules decide:
/// it dead-letters 400, 401, 402, 405, 406, 410 and 413 and retries
/// everything else with backoff, honouring `Retry-After`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenderNext {
    /// Dead-lettered: a retry could not cure it.
    Final,
    /// Retried later.
    Retried,
}

macro_rules! reasons {
    ($(
        $(#[doc = $doc:literal])+
        $variant:ident = ($status:literal, $label:literal, $next:ident);
    )+) => {
        /// Why hookgate answered a request itself. The label is stable: it
        /// is the JSON `error`, the log field and the metric label.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl Reason {
            /// Every reason, in the order of the README's status table.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),+];

            /// The HTTP status.
            pub const fn status(self) -> u16 {
                match self { $(Reason::$variant => $status,)+ }
            }

            /// The stable label: the JSON `error`, the log's `reason`, the
            /// metric label.
            pub const fn label(self) -> &'static str {
                match self { $(Reason::$variant => $label,)+ }
            }

            /// What the sender does next (Fynapse's rules).
            pub const fn sender_next(self) -> SenderNext {
                match self { $(Reason::$variant => SenderNext::$next,)+ }
            }

            /// When hookgate gives this answer, in words.
            pub const fn doc(self) -> &'static str {
                match self { $(Reason::$variant => concat!($($doc),+),)+ }
            }
        }
    };
}

reasons! {
    /// The body is not JSON (on routes that check it).
    InvalidJson = (400, "invalid_json", Final);
    /// The idempotency key is required and absent.
    MissingIdempotencyKey = (400, "missing_idempotency_key", Final);
    /// The idempotency key is ambiguous (two different values), longer than
    /// 256 bytes, or holds control characters.
    InvalidIdempotencyKey = (400, "invalid_idempotency_key", Final);
    /// The chunked body is malformed (a bad chunk size, line or trailer).
    BadFraming = (400, "bad_framing", Final);
    /// The signature header is absent.
    MissingSignature = (401, "missing_signature", Final);
    /// The signature header does not parse.
    MalformedSignature = (401, "malformed_signature", Final);
    /// No signature matches any secret.
    SignatureMismatch = (401, "signature_mismatch", Final);
    /// The signed timestamp is outside the tolerance.
    StaleTimestamp = (401, "stale_timestamp", Final);
    /// No route matches host and path.
    NoRoute = (404, "no_route", Retried);
    /// The route does not take this method (with `Allow`).
    MethodNotAllowed = (405, "method_not_allowed", Final);
    /// The body did not arrive within `body_timeout`.
    BodyTimeout = (408, "body_timeout", Retried);
    /// The request's header did not arrive whole within `header_timeout`.
    HeaderTimeout = (408, "header_timeout", Retried);
    /// Another request with this key has no answer yet (with `Retry-After`).
    InFlight = (409, "in_flight", Retried);
    /// The body is larger than `max_body`.
    BodyTooLarge = (413, "body_too_large", Final);
    /// The content type is not one of the route's.
    UnsupportedMediaType = (415, "unsupported_media_type", Retried);
    /// The event type is not in the allow-list (`unlisted_events: reject`).
    EventNotAllowed = (422, "event_not_allowed", Retried);
    /// A transfer coding other than one `chunked` (e.g. `gzip, chunked`).
    UnsupportedTransferCoding = (501, "unsupported_transfer_coding", Retried);
    /// The upstream refused, reset or closed without an answer.
    UpstreamUnreachable = (502, "upstream_unreachable", Retried);
    /// The dedupe store cannot be reached (with `Retry-After`).
    DedupeUnavailable = (503, "dedupe_unavailable", Retried);
    /// The body would take the bytes held by all requests past
    /// `max_buffered` (with `Retry-After`).
    Overloaded = (503, "overloaded", Retried);
    /// The upstream did not answer in time.
    UpstreamTimeout = (504, "upstream_timeout", Retried);
}

impl From<Failure> for Reason {
    fn from(f: Failure) -> Self {
        match f {
            Failure::MissingSignature => Reason::MissingSignature,
            Failure::MalformedSignature => Reason::MalformedSignature,
            Failure::SignatureMismatch => Reason::SignatureMismatch,
            Failure::StaleTimestamp => Reason::StaleTimestamp,
        }
    }
}

/// The log and metric reason of a request answered like a duplicate
/// (`200` duplicate, or `409` while the original is in flight) because its
/// signature was already delivered or is in flight under another
/// idempotency key: a captured delivery replayed. Not an answer of its own:
/// the sender sees what a duplicate of the original would.
pub const REPLAYED_SIGNATURE: &str = "replayed_signature";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_next_follows_fynapse_rules() {
        // Fynapse dead-letters 400/401/402/405/406/410/413 and retries the
        // rest. A reason that a retry could cure must not be final.
        let final_codes = [400, 401, 402, 405, 406, 410, 413];
        for r in Reason::ALL {
            let expected = if final_codes.contains(&r.status()) {
                SenderNext::Final
            } else {
                SenderNext::Retried
            };
            assert_eq!(r.sender_next(), expected, "{r:?}");
        }
    }

    #[test]
    fn labels_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.label()), "{r:?}");
            assert!(r
                .label()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(!r.doc().is_empty());
        }
    }

    /// The README's status table is the operator's copy of this table: the
    /// same labels, statuses and next moves, no more and no fewer.
    #[test]
    fn readme_status_table_matches() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("### Status codes")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("README has a `### Status codes` section");
        let mut rows = Vec::new();
        for line in section.lines().filter(|l| l.starts_with("| ")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // ["", status, error, when, next, ""]
            let [_, status, error, _, next, ..] = cells[..] else {
                continue;
            };
            let Some(label) = error.strip_prefix('`').and_then(|e| e.strip_suffix('`')) else {
                continue;
            };
            if status == "status" {
                continue; // the table's head
            }
            rows.push((status.to_string(), label.to_string(), next.to_string()));
        }
        for r in Reason::ALL {
            let row = rows.iter().find(|(_, l, _)| l == r.label());
            let Some((status, _, next)) = row else {
                panic!("README has no row for `{}`", r.label());
            };
            assert!(
                status.starts_with(&r.status().to_string()),
                "{r:?}: {status}"
            );
            let word = match r.sender_next() {
                SenderNext::Final => "final",
                SenderNext::Retried => "retried",
            };
            assert!(next.starts_with(word), "{r:?}: README says `{next}`");
        }
        for (_, label, _) in &rows {
            assert!(
                Reason::ALL.iter().any(|r| r.label() == label),
                "README lists `{label}`, which is no reason"
            );
        }
    }

    #[test]
    fn every_verify_failure_maps_to_its_reason() {
        for (f, r) in [
            (Failure::MissingSignature, "missing_signature"),
            (Failure::MalformedSignature, "malformed_signature"),
            (Failure::SignatureMismatch, "signature_mismatch"),
            (Failure::StaleTimestamp, "stale_timestamp"),
        ] {
            assert_eq!(Reason::from(f).label(), r);
        }
    }
}
