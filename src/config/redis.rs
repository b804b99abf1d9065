//! `dedupe.redis`: the Redis backend's settings, from the file's mirror to
//! the model's [`Backend::Redis`].

use std::time::Duration;

use serde_saphyr::Spanned;

use super::file;
use super::model::{dur, pos, Backend, OnStoreError};
use super::{Problem, Problems};

/// The longest `dedupe.redis.prefix`.
const MAX_PREFIX: usize = 256;

pub(super) fn build_redis(r: &Spanned<file::Redis>, p: &mut Problems) -> Option<Backend> {
    let before = p.len();
    let r = &r.value;
    // Messages never repeat the URL: it may hold a password.
    let url = r.url.value.trim();
    let ukey = "dedupe.redis.url";
    match url::Url::parse(url).map(|u| u.scheme().to_string()) {
        Ok(s) if s == "redis" || s == "valkey" => {
            if ::redis::Client::open(url).is_err() {
                p.push(Problem::at(
                    ukey,
                    pos(&r.url),
                    "not a valid Redis URL; use redis://[user:password@]host[:port][/db]".into(),
                ));
            }
        }
        Ok(s) if s == "rediss" || s == "valkeys" => p.push(Problem::at(
            ukey,
            pos(&r.url),
            format!("`{s}://` (TLS to Redis) is not supported by this build yet; use redis:// on a private network or through a TLS tunnel"),
        )),
        Ok(s) => p.push(Problem::at(
            ukey,
            pos(&r.url),
            format!("scheme `{s}` is not supported; use redis:// or valkey://"),
        )),
        Err(_) => p.push(Problem::at(
            ukey,
            pos(&r.url),
            "not a URL; use redis://[user:password@]host[:port][/db]".into(),
        )),
    }
    let prefix = match &r.prefix {
        None => "hookgate:".to_string(),
        Some(x) if x.value.len() <= MAX_PREFIX => x.value.clone(),
        Some(x) => {
            p.push(Problem::at(
                "dedupe.redis.prefix",
                pos(x),
                format!("at most {MAX_PREFIX} bytes"),
            ));
            String::new()
        }
    };
    let timeout = dur(
        p,
        &r.timeout,
        "dedupe.redis.timeout",
        Duration::from_secs(1),
    );
    if timeout.is_zero() || timeout > Duration::from_secs(60) {
        let at = r.timeout.as_ref().map_or((0, 0), pos);
        p.push(Problem::at(
            "dedupe.redis.timeout",
            at,
            "must be longer than zero and at most 60s".into(),
        ));
    }
    let connections = match &r.connections {
        None => 2,
        Some(c) if (1..=64).contains(&c.value) => c.value as usize,
        Some(c) => {
            p.push(Problem::at(
                "dedupe.redis.connections",
                pos(c),
                "must be between 1 and 64".into(),
            ));
            1
        }
    };
    let on_error = match r.on_error.as_ref().map(|o| (o.value.as_str(), o)) {
        None | Some(("fail_closed", _)) => OnStoreError::FailClosed,
        Some(("fail_open", _)) => OnStoreError::FailOpen,
        Some((other, o)) => {
            p.push(Problem::at(
                "dedupe.redis.on_error",
                pos(o),
                format!("`{other}`: use `fail_closed` or `fail_open`"),
            ));
            OnStoreError::FailClosed
        }
    };
    if p.len() != before {
        return None;
    }
    Some(Backend::Redis {
        url: url.to_string(),
        prefix,
        timeout,
        connections,
        on_error,
    })
}
