//! Every key of the config file and the kind of value it holds, for the
//! lint pre-pass ([`super::lint`]).
//!
//! This table mirrors the serde structs of [`super::file`]. When a key is
//! added there, add it here: `table_and_serde_structs_agree` (in
//! `lint.rs`) fails until both say the same keys, the same required keys
//! and compatible kinds.

/// What a key holds.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// A whole number (`4`).
    Int,
    /// `true` or `false`.
    Bool,
    /// Any scalar.
    Str,
    /// A duration (`250ms`, `1.5s`), checked by `units::parse_duration`.
    Duration,
    /// A size (`1MiB`), checked by `units::parse_size`.
    Size,
    /// A list of values of one kind.
    List(&'static Kind),
    /// A mapping with these keys.
    Map(&'static [Key]),
    /// A mapping with any keys and scalar values (`forward.headers`).
    FreeMap,
}

/// One key of a mapping.
#[derive(Debug, Clone, Copy)]
pub(super) struct Key {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// The value is a secret (or may carry one): never shown in a snippet.
    pub secret: bool,
}

const fn opt(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        required: false,
        secret: false,
    }
}

const fn req(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        required: true,
        secret: false,
    }
}

const fn secret(key: Key) -> Key {
    Key {
        secret: true,
        ..key
    }
}

const STRS: Kind = Kind::List(&Kind::Str);

const TLS: Kind = Kind::Map(&[req("cert", Kind::Str), req("key", Kind::Str)]);

const SERVER: Kind = Kind::Map(&[
    opt("listen", STRS),
    opt("tls", TLS),
    opt("admin", Kind::Str),
    opt("threads", Kind::Int),
    opt("body_timeout", Kind::Duration),
    opt("idle_timeout", Kind::Duration),
    opt("header_timeout", Kind::Duration),
    opt("max_connections", Kind::Int),
    opt("max_buffered", Kind::Size),
    opt("grace_period", Kind::Duration),
    opt("log_format", Kind::Str),
]);

const SECRET_STRS: Kind = Kind::List(&Kind::Str);

const REDIS_SENTINEL: Kind = Kind::Map(&[
    req("master", Kind::Str),
    // Sentinel URLs may carry the password too.
    secret(req("urls", SECRET_STRS)),
]);

const REDIS: Kind = Kind::Map(&[
    // `redis://:password@host`: the password stays out of snippets. One of
    // `url`, `cluster`, `sentinel` (the builder says which is missing).
    secret(opt("url", Kind::Str)),
    secret(opt("cluster", SECRET_STRS)),
    opt("sentinel", REDIS_SENTINEL),
    opt("ca", Kind::Str),
    opt("cert", Kind::Str),
    opt("key", Kind::Str),
    opt("wait_replicas", Kind::Int),
    opt("prefix", Kind::Str),
    opt("timeout", Kind::Duration),
    opt("connections", Kind::Int),
    opt("on_error", Kind::Str),
]);

const DEDUPE: Kind = Kind::Map(&[
    opt("backend", Kind::Str),
    opt("ttl", Kind::Duration),
    opt("in_flight_timeout", Kind::Duration),
    opt("max_entries", Kind::Int),
    opt("redis", REDIS),
]);

const UPSTREAM: Kind = Kind::Map(&[
    req("url", Kind::Str),
    opt("connect_timeout", Kind::Duration),
    opt("timeout", Kind::Duration),
    opt("ca", Kind::Str),
]);

const HMAC: Kind = Kind::Map(&[
    req("header", Kind::Str),
    opt("prefix", Kind::Str),
    opt("encoding", Kind::Str),
    opt("algorithm", Kind::Str),
    opt("template", Kind::Str),
    opt("timestamp_header", Kind::Str),
    opt("id_header", Kind::Str),
]);

const SECRET_SOURCE: Kind = Kind::Map(&[
    opt("name", Kind::Str),
    opt("env", Kind::Str),
    opt("file", Kind::Str),
    secret(opt("value", Kind::Str)),
]);

const VERIFY: Kind = Kind::Map(&[
    req("scheme", Kind::Str),
    // Which of `secrets` and `public_keys` a route needs depends on its
    // scheme: the builder says so, with the scheme's name.
    opt("secrets", Kind::List(&SECRET_SOURCE)),
    opt("public_keys", Kind::List(&SECRET_SOURCE)),
    opt("public_url", Kind::Str),
    opt("handshake", Kind::Bool),
    opt("tolerance", Kind::Duration),
    opt("enforce", Kind::Bool),
    opt("hmac", HMAC),
]);

const IDEMPOTENCY: Kind = Kind::Map(&[
    opt("key", Kind::Str),
    opt("namespace", Kind::Str),
    opt("required", Kind::Bool),
    opt("retry_after", Kind::Duration),
]);

const FORWARD: Kind = Kind::Map(&[
    opt("strip_signature", Kind::Bool),
    // Header values may be credentials for the upstream.
    secret(opt("headers", Kind::FreeMap)),
]);

const ROUTE: Kind = Kind::Map(&[
    req("name", Kind::Str),
    opt("path", Kind::Str),
    opt("path_prefix", Kind::Str),
    opt("host", Kind::Str),
    opt("methods", STRS),
    req("upstream", UPSTREAM),
    req("verify", VERIFY),
    opt("idempotency", IDEMPOTENCY),
    opt("max_body", Kind::Size),
    opt("content_types", STRS),
    opt("events", STRS),
    opt("event_field", Kind::Str),
    opt("unlisted_events", Kind::Str),
    opt("validate_json", Kind::Bool),
    opt("forward", FORWARD),
]);

/// The whole file.
pub(super) const FILE: Kind = Kind::Map(&[
    opt("server", SERVER),
    opt("dedupe", DEDUPE),
    opt("alerts", Kind::Map(&[opt("failing_after", Kind::Int)])),
    req("routes", Kind::List(&ROUTE)),
]);
