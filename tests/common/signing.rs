//! Signed Fynapse deliveries, as a sender makes them.

use super::*;

/// The fynapse signature header for `body` at `t` with `secret`.
pub fn fynapse_signature(secret: &str, body: &[u8], t: i64) -> String {
    let key = Fynapse.derive_key(secret).unwrap();
    Fynapse.sign(&key, body, t, "").remove(0).1
}

/// Headers of a valid fynapse delivery.
pub fn signed_headers(body: &[u8], key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".to_string()),
        ("Webhook-Signature", fynapse_signature(SECRET, body, now())),
        ("Idempotency-Key", key.to_string()),
    ]
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
