//! The closed sets of words the config file takes, each declared once with
//! its spellings (`text_enum!`): the file layer reads them, the builders
//! and the runtime use them.

use super::value::text_enum;

text_enum! {
    /// The format of log lines (`server.log_format`, `--log-format`).
    pub enum LogFormat {
        /// One readable line per event.
        Human = "human",
        /// One JSON object per line.
        Json = "json",
    }
}

text_enum! {
    /// `dedupe.backend` as written.
    pub enum BackendKind {
        /// In process.
        Memory = "memory",
        /// Shared through Redis.
        Redis = "redis",
    }
}

text_enum! {
    /// What the gateway does with a request whose dedupe store call failed
    /// (`dedupe.redis.on_error`).
    pub enum OnStoreError {
        /// `503 dedupe_unavailable` with `Retry-After`: the sender retries
        /// later, nothing is lost and nothing is delivered twice.
        FailClosed = "fail_closed",
        /// Forward without dedupe (a duplicate may get through), log a
        /// warning and count it.
        FailOpen = "fail_open",
    }
}

text_enum! {
    /// What to do with an event type outside the allow-list
    /// (`unlisted_events`).
    pub enum UnlistedEvent {
        /// `200 {"status":"ignored"}`, nothing forwarded: the sender stops.
        Ignore = "ignore",
        /// `422`: the sender retries (Fynapse) or gives up, as its rules say.
        Reject = "reject",
    }
}
