//! `hookgate demo`: the Fynapse guide's "Testing the Integration" as one
//! command. A gateway and a built-in receiver on free loopback ports; a
//! valid, a duplicate, a tampered, a stale and an unsigned delivery; a table
//! of what the sender got and what the receiver saw.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use bytes::Bytes;
use hookgate::gateway::Gateway;
use hookgate::server;
use pingora::services::listening::Service;

use super::receiver::DevReceiver;
use super::send::{delivery_headers, Client};
use super::sign::Signer;

const SECRET: &str = "demo-secret";

fn free_addr() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))
}

fn config(gateway: SocketAddr, receiver: SocketAddr) -> String {
    format!(
        "server:
  listen: [\"{gateway}\"]
  threads: 1
routes:
  - name: fynapse-balances
    path: /webhooks/fynapse
    upstream: {{ url: \"http://{receiver}/hooks/balances\" }}
    verify:
      scheme: fynapse
      secrets: [ {{ value: {SECRET} }} ]
      tolerance: 5m
    idempotency: {{ key: \"header:Idempotency-Key\" }}
    events: [balance.extracted]
"
    )
}

/// One scenario: what is sent, and what should come back.
struct Case {
    name: &'static str,
    sent: &'static str,
    expect_status: u16,
    expect_forwarded: bool,
}

const CASES: [Case; 5] = [
    Case {
        name: "valid",
        sent: "signed, new Idempotency-Key",
        expect_status: 200,
        expect_forwarded: true,
    },
    Case {
        name: "duplicate",
        sent: "same key again, signed anew",
        expect_status: 200,
        expect_forwarded: false,
    },
    Case {
        name: "tampered",
        sent: "body changed after signing",
        expect_status: 401,
        expect_forwarded: false,
    },
    Case {
        name: "stale",
        sent: "signed 10 minutes ago",
        expect_status: 401,
        expect_forwarded: false,
    },
    Case {
        name: "unsigned",
        sent: "no Webhook-Signature",
        expect_status: 401,
        expect_forwarded: false,
    },
];

/// Runs the demo; returns whether every case behaved as expected.
pub fn run() -> Result<bool, String> {
    let gw_addr = free_addr()?;
    let rx_addr = free_addr()?;
    let yaml = config(gw_addr, rx_addr);
    let c = hookgate::config::from_yaml(&yaml, "demo").map_err(|e| e.to_string())?;
    let gateway = Arc::new(Gateway::from_config(&c).map_err(|e| e.to_string())?);
    let mut srv = server::build(&c, gateway).map_err(|e| e.to_string())?;
    let receiver = DevReceiver::new(false);
    let mut rx_svc = Service::new("demo receiver".to_string(), receiver.clone());
    rx_svc.add_tcp(&rx_addr.to_string());
    srv.add_service(rx_svc);
    let running = server::spawn_server(srv, &[gw_addr, rx_addr]).map_err(|e| e.to_string())?;

    println!("gateway  http://{gw_addr}/webhooks/fynapse  (scheme fynapse, secret {SECRET:?})");
    println!("receiver http://{rx_addr}/hooks/balances\n");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = Client::new(&format!("http://{gw_addr}/webhooks/fynapse"))?;
    let signer = Signer::from_args(Some("fynapse"), Some(SECRET), None, None)?;
    let now = hookgate::verify::unix_now();
    let body = br#"{"event_id":"a3efc743-ac6c-463b-aa19-4dd9c45b5b96","event_type":"balance.extracted","data":{"balances":[]}}"#;
    let key = format!("demo-{}", uuid::Uuid::new_v4().simple());

    println!(
        "{:<10} {:<30} {:>6}  {:<22} {:<14} OK",
        "CASE", "SENT", "STATUS", "ANSWER", "RECEIVER SAW"
    );
    let mut all_ok = true;
    for (i, case) in CASES.iter().enumerate() {
        let k = if case.name == "duplicate" {
            key.clone()
        } else {
            format!("{key}-{i}")
        };
        let (headers, payload) = request_for(case, &signer, body, now, &key, &k);
        let before = receiver.seen().len();
        let sent = rt.block_on(client.post(&headers, Bytes::from(payload)))?;
        let forwarded = receiver.seen().len() > before;
        let answer = match (sent.status, sent.header("hookgate-duplicate")) {
            (200, Some(_)) => "duplicate".to_string(),
            (200, None) if forwarded => "forwarded".to_string(),
            _ => sent.reason(),
        };
        let saw = if forwarded { "1 delivery" } else { "nothing" };
        let ok = sent.status == case.expect_status && forwarded == case.expect_forwarded;
        all_ok &= ok;
        println!(
            "{:<10} {:<30} {:>6}  {:<22} {:<14} {}",
            case.name,
            case.sent,
            sent.status,
            answer,
            saw,
            if ok { "yes" } else { "NO" }
        );
    }
    let seen = receiver.seen();
    println!(
        "\nThe receiver got {} delivery ({} bytes, X-Hookgate-Verified: {}).",
        seen.len(),
        seen.first().map_or(0, |s| s.len),
        seen.first()
            .and_then(|s| s.verified.clone())
            .unwrap_or_default()
    );
    running.stop();
    Ok(all_ok)
}

/// The headers and body a case sends: `key` is the delivery's own key
/// (valid, duplicate), `k` a fresh one for the cases that must not touch it.
fn request_for(
    case: &Case,
    signer: &Signer,
    body: &[u8],
    now: i64,
    key: &str,
    k: &str,
) -> (Vec<(String, String)>, Vec<u8>) {
    match case.name {
        "tampered" => {
            let h = delivery_headers(signer, body, now, k);
            (
                h,
                body.iter()
                    .copied()
                    .map(|b| if b == b'[' { b'{' } else { b })
                    .collect(),
            )
        }
        "stale" => (delivery_headers(signer, body, now - 600, k), body.to_vec()),
        "unsigned" => (
            delivery_headers(signer, body, now, k)
                .into_iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case("webhook-signature"))
                .collect(),
            body.to_vec(),
        ),
        "valid" => (delivery_headers(signer, body, now, key), body.to_vec()),
        _ => (delivery_headers(signer, body, now + 1, key), body.to_vec()),
    }
}
