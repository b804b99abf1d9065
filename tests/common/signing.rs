//! Signed Fynapse deliveries, as a sender makes them.

use super::*;

/// The fynapse signature header for `body` at `t` with `secret`.
pub fn fynapse_signature(secret: &str, body: &[u8], t: i64) -> String {
    let key = Fynapse.derive_key(secret).unwrap();
    Fynapse.sign(&key, body, t, "").remove(0).1
}

/// Headers of a valid fynapse delivery.
///
/// Each idempotency key is signed at a second of its own, so that two
/// deliveries with different keys never carry the same signature, even
/// with the same body: hookgate rightly answers such a pair as a replay
/// (tests/replay.rs). A real sender's deliveries differ by event id or
/// signing time.
pub fn signed_headers(body: &[u8], key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".to_string()),
        (
            "Webhook-Signature",
            fynapse_signature(SECRET, body, signing_time(key)),
        ),
        ("Idempotency-Key", key.to_string()),
    ]
}

/// The signing time of `key`: the first key of this process is signed 240 s
/// ago, each new key a second later than the one before (wrapping after
/// 240 keys), all well inside the 5-minute tolerance. Two keys get the same
/// time only if the later one comes exactly 240·k − n seconds after the
/// earlier, n keys later. Tests that send more keys at once than that use
/// a body per key, as real deliveries have.
pub fn signing_time(key: &str) -> i64 {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static TIMES: OnceLock<Mutex<(i64, HashMap<String, i64>)>> = OnceLock::new();
    let times = TIMES.get_or_init(|| Mutex::new((0, HashMap::new())));
    let mut t = times.lock().unwrap();
    let (n, by_key) = &mut *t;
    if let Some(at) = by_key.get(key) {
        return *at;
    }
    let at = now() - 240 + (*n % 240);
    *n += 1;
    by_key.insert(key.to_string(), at);
    at
}

/// A balance.extracted body of about `size` bytes.
pub fn event_body(id: &str, size: usize) -> Vec<u8> {
    let head = format!(r#"{{"event_id":"{id}","event_type":"balance.extracted","data":{{"pad":""#);
    let tail = r#""}}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    let mut b = head.into_bytes();
    b.extend(std::iter::repeat_n(b'x', pad));
    b.extend_from_slice(tail.as_bytes());
    b
}

/// POSTs a signed delivery on a fresh connection.
pub fn deliver(addr: SocketAddr, body: &[u8], key: &str) -> Response {
    post(addr, "/webhooks/fynapse", &signed_headers(body, key), body)
}

/// POSTs on a fresh connection, `Connection: close`.
pub fn post(addr: SocketAddr, path: &str, headers: &[(&str, String)], body: &[u8]) -> Response {
    let mut h = headers.to_vec();
    h.push(("Connection", "close".to_string()));
    Conn::open(addr).request(&request_bytes("POST", path, &h, body))
}
