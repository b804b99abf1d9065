//! Issue 15 through the real gateway: setup handshakes answered by hookgate
//! itself (and only when authentic, or keyless), URL-signed and public-key
//! senders, Slack's form bodies.

mod common;

use common::*;
use hmac::{Hmac, Mac};
use std::time::{Duration, Instant};

use hookgate::server::RunningGateway;
use hookgate::verify::{self, Delivery};
use serde_json::{json, Value};

const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const ZOOM_SECRET: &str = "zoom_secret_token";
const DROPBOX_SECRET: &str = "dropbox_app_secret";
const WC_SECRET: &str = "wc_secret";
const TWILIO_TOKEN: &str = "12345";
const TWILIO_URL: &str = "https://hooks.example.com/twilio";
/// Discord's signing key in tests (the public half is configured).
const DISCORD_PRIVATE: &str = "1111111111111111111111111111111111111111111111111111111111111111";

fn route(name: &str, upstream: &str, verify: Value) -> Value {
    json!({
        "name": name,
        "path": format!("/{name}"),
        "upstream": { "url": upstream, "connect_timeout": "1s", "timeout": "2s" },
        "verify": verify,
    })
}

fn discord_public_hex() -> String {
    let d = verify::scheme_by_name("discord").unwrap();
    let private = d.derive_private_key(DISCORD_PRIVATE).unwrap();
    hex::encode(d.public_key_for(&private).unwrap().as_bytes())
}

/// A gateway with one route per sender of this file.
fn gateway(rx: &Receiver, handshake: bool) -> RunningGateway {
    let mut c = TestConfig::new(free_port());
    let with = |mut v: Value| {
        if !handshake {
            v["handshake"] = json!(false);
        }
        v
    };
    let mut slack = route(
        "slack",
        &rx.url("/slack"),
        with(json!({ "scheme": "slack", "secrets": [{ "value": SLACK_SECRET }] })),
    );
    // As the README recommends: events dedupe on their id; form bodies
    // (slash commands, interactivity) carry none.
    slack["idempotency"] = json!({ "key": "json:/event_id", "required": false });
    c = c.route(slack);
    let mut zoom = route(
        "zoom",
        &rx.url("/zoom"),
        with(json!({ "scheme": "zoom", "secrets": [{ "value": ZOOM_SECRET }] })),
    );
    zoom["idempotency"] = json!({ "key": "json:/event_ts", "required": !handshake });
    c = c.route(zoom);
    let mut discord = route(
        "discord",
        &rx.url("/discord"),
        with(json!({ "scheme": "discord", "public_keys": [{ "value": discord_public_hex() }] })),
    );
    discord["idempotency"] = json!({ "key": "json:/id", "required": !handshake });
    c = c.route(discord);
    let mut dropbox = route(
        "dropbox",
        &rx.url("/dropbox"),
        with(json!({ "scheme": "dropbox", "secrets": [{ "value": DROPBOX_SECRET }] })),
    );
    dropbox["idempotency"] = json!({ "key": "none" });
    c = c.route(dropbox);
    c = c.route(route(
        "woocommerce",
        &rx.url("/woocommerce"),
        with(json!({ "scheme": "woocommerce", "secrets": [{ "value": WC_SECRET }] })),
    ));
    let mut twilio = route(
        "twilio",
        &rx.url("/twilio"),
        json!({ "scheme": "twilio", "secrets": [{ "value": TWILIO_TOKEN }], "public_url": TWILIO_URL }),
    );
    twilio["idempotency"] = json!({ "key": "header:I-Twilio-Idempotency-Token" });
    c = c.route(twilio);
    start_gateway(&c.yaml())
}

/// What `scheme` sends for `body` (and `url`), signed with `key`, plus the
/// content type.
fn signed_by(
    scheme: &str,
    key: &verify::Key,
    url: Option<&str>,
    body: &[u8],
    content_type: &str,
) -> (Vec<(&'static str, String)>, verify::Signed) {
    let s = verify::scheme_by_name(scheme).unwrap();
    let d = Delivery {
        method: "POST",
        url,
        body,
        timestamp: now(),
        id: "",
    };
    let signed = s.sign_delivery(key, &d).unwrap();
    let mut h = vec![("Content-Type", content_type.to_string())];
    for (k, v) in &signed.headers {
        h.push((Box::leak(k.clone().into_boxed_str()), v.clone()));
    }
    (h, signed)
}

fn secret_signed(scheme: &str, secret: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let key = verify::scheme_by_name(scheme)
        .unwrap()
        .derive_key(secret)
        .unwrap();
    signed_by(scheme, &key, None, body, "application/json").0
}

fn discord_signed(body: &[u8]) -> Vec<(&'static str, String)> {
    let d = verify::scheme_by_name("discord").unwrap();
    let key = d.derive_private_key(DISCORD_PRIVATE).unwrap();
    signed_by("discord", &key, None, body, "application/json").0
}

/// `headers` with the value of `name` changed in one character (to another
/// valid in hex and base64, away from any padding).
fn tampered(mut headers: Vec<(&'static str, String)>, name: &str) -> Vec<(&'static str, String)> {
    let (_, v) = headers
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("no {name}"));
    let i = v.len() - 5;
    let swap = if &v[i..=i] == "0" { "1" } else { "0" };
    v.replace_range(i..=i, swap);
    headers
}

fn own_answer(r: &Response) {
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{r:?}");
    assert!(r.header("x-request-id").is_some(), "{r:?}");
}

/// `hookgate_requests_total{outcome="handshake"}` of `route`, once it
/// reads `expected` (a request is counted as it is logged, just after its
/// answer was written) or after 2 s.
fn handshakes_counted(gw: &RunningGateway, route: &str, expected: u64) -> u64 {
    let line =
        format!(r#"hookgate_requests_total{{outcome="handshake",reason="-",route="{route}"}} "#);
    let read = || {
        let text = String::from_utf8(gw.gateway.metrics().encode()).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&line).map(str::to_string))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    let until = Instant::now() + Duration::from_secs(2);
    while read() != expected && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    read()
}

#[test]
fn slack_url_verification_is_answered_only_when_signed() {
    let rx = Receiver::start();
    let gw = gateway(&rx, true);
    let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let r = post(
        gw.addr,
        "/slack",
        &secret_signed("slack", SLACK_SECRET, body),
        body,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    assert_eq!(r.header("content-type"), Some("text/plain"));
    own_answer(&r);
    assert_eq!(handshakes_counted(&gw, "slack", 1), 1);

    let bad = tampered(
        secret_signed("slack", SLACK_SECRET, body),
        "X-Slack-Signature",
    );
    let r = post(gw.addr, "/slack", &bad, body);
    assert_eq!((r.status, r.error().as_str()), (401, "signature_mismatch"));
    let unsigned = [("Content-Type", "application/json".to_string())];
    let r = post(gw.addr, "/slack", &unsigned, body);
    assert_eq!((r.status, r.error().as_str()), (401, "missing_signature"));
    assert_eq!(rx.count(), 0, "nothing forwarded");
    assert_eq!(handshakes_counted(&gw, "slack", 1), 1);
}

#[test]
fn zoom_url_validation_is_answered_with_the_matched_secret() {
    let rx = Receiver::start();
    let gw = gateway(&rx, true);
    let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let r = post(
        gw.addr,
        "/zoom",
        &secret_signed("zoom", ZOOM_SECRET, body),
        body,
    );
    assert_eq!(r.status, 200, "{r:?}");
    own_answer(&r);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(ZOOM_SECRET.as_bytes()).unwrap();
    mac.update(b"qgg8vlvZRS6UYooatFL8Aw");
    assert_eq!(
        r.json(),
        json!({
            "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
            "encryptedToken": hex::encode(mac.finalize().into_bytes()),
        })
    );

    // An unauthenticated client must not get a MAC of its token.
    let bad = tampered(secret_signed("zoom", ZOOM_SECRET, body), "x-zm-signature");
    let r = post(gw.addr, "/zoom", &bad, body);
    assert_eq!((r.status, r.error().as_str()), (401, "signature_mismatch"));
    let unsigned = [("Content-Type", "application/json".to_string())];
    let r = post(gw.addr, "/zoom", &unsigned, body);
    assert_eq!((r.status, r.error().as_str()), (401, "missing_signature"));
    assert_eq!(rx.count(), 0);
}

#[test]
fn discord_pings_are_answered_when_signed_and_refused_401_when_not() {
    let rx = Receiver::start();
    let gw = gateway(&rx, true);
    let ping = br#"{"id":"1","application_id":"2","type":1,"version":1}"#;
    let r = post(gw.addr, "/discord", &discord_signed(ping), ping);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"type": 1}));
    assert_eq!(r.header("content-type"), Some("application/json"));
    own_answer(&r);

    // Discord checks the endpoint refuses badly signed PINGs.
    let bad = tampered(discord_signed(ping), "X-Signature-Ed25519");
    let r = post(gw.addr, "/discord", &bad, ping);
    assert_eq!((r.status, r.error().as_str()), (401, "signature_mismatch"));
    let other = br#"{"id":"1","application_id":"2","type":1,"version":2}"#;
    let r = post(gw.addr, "/discord", &discord_signed(ping), other);
    assert_eq!((r.status, r.error().as_str()), (401, "signature_mismatch"));
    let unsigned = [("Content-Type", "application/json".to_string())];
    let r = post(gw.addr, "/discord", &unsigned, ping);
    assert_eq!((r.status, r.error().as_str()), (401, "missing_signature"));

    // The webhook-events PING: 204, no body.
    let event_ping = br#"{"version":1,"application_id":"2","type":0}"#;
    let r = post(gw.addr, "/discord", &discord_signed(event_ping), event_ping);
    assert_eq!((r.status, r.body.len()), (204, 0), "{r:?}");
    assert_eq!(rx.count(), 0, "no handshake forwarded");
    assert_eq!(handshakes_counted(&gw, "discord", 2), 2);

    // A public-key sender's ordinary interaction goes through, once.
    let cmd = br#"{"id":"int_1","application_id":"2","type":2,"data":{"name":"ping"}}"#;
    let r = post(gw.addr, "/discord", &discord_signed(cmd), cmd);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(rx.count(), 1);
    assert_eq!(sha(&rx.last().body), sha(cmd));
    let r = post(gw.addr, "/discord", &discord_signed(cmd), cmd);
    assert_eq!(r.header("hookgate-duplicate"), Some("true"), "{r:?}");
    assert_eq!(rx.count(), 1);
}

fn get(addr: std::net::SocketAddr, target: &str, extra: &str) -> Response {
    Conn::open(addr).request(
        format!("GET {target} HTTP/1.1\r\nHost: hooks.test\r\n{extra}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

#[test]
fn dropbox_challenge_is_echoed_as_text_and_nothing_else() {
    let rx = Receiver::start();
    let gw = gateway(&rx, true);
    let r = get(gw.addr, "/dropbox?challenge=LGfA1y8-9kDd_z3x", "");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, b"LGfA1y8-9kDd_z3x");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    own_answer(&r);
    assert_eq!(handshakes_counted(&gw, "dropbox", 1), 1);

    // Not a challenge a sender would send: not echoed, not forwarded.
    for target in [
        "/dropbox?challenge=%3Cscript%3E",
        "/dropbox?challenge=",
        "/dropbox?other=1",
        "/dropbox",
    ] {
        let r = get(gw.addr, target, "");
        assert!(r.status >= 400, "{target}: {r:?}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("script"),
            "{r:?}"
        );
    }
    // An unsigned POST stays 401.
    let body = br#"{"list_folder":{"accounts":["dbid:1"]}}"#;
    let r = post(
        gw.addr,
        "/dropbox",
        &[("Content-Type", "application/json".to_string())],
        body,
    );
    assert_eq!((r.status, r.error().as_str()), (401, "missing_signature"));
    // A signed notification is forwarded.
    let r = post(
        gw.addr,
        "/dropbox",
        &secret_signed("dropbox", DROPBOX_SECRET, body),
        body,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(rx.count(), 1);
    assert_eq!(handshakes_counted(&gw, "dropbox", 1), 1);
}

#[test]
fn woocommerce_creation_ping_is_acknowledged_and_not_forwarded() {
    let rx = Receiver::start();
    let gw = gateway(&rx, true);
    let form = [(
        "Content-Type",
        "application/x-www-form-urlencoded".to_string(),
    )];
    let r = post(gw.addr, "/woocommerce", &form, b"webhook_id=17");
    assert_eq!((r.status, r.body.len()), (200, 0), "{r:?}");
    own_answer(&r);
    assert_eq!(handshakes_counted(&gw, "woocommerce", 1), 1);

    // Short, unsigned, but not a ping: refused as unsigned.
    let json_type = [("Content-Type", "application/json".to_string())];
    let r = post(gw.addr, "/woocommerce", &json_type, br#"{"id":1}"#);
    assert_eq!((r.status, r.error().as_str()), (401, "missing_signature"));
    // A ping with a signature that does not verify is no ping.
    let mut bad = secret_signed("woocommerce", WC_SECRET, b"webhook_id=18");
    bad = tampered(bad, "X-WC-Webhook-Signature");
    let r = post(gw.addr, "/woocommerce", &bad, b"webhook_id=17");
    assert_eq!((r.status, r.error().as_str()), (401, "signature_mismatch"));
    assert_eq!(rx.count(), 0);
    assert_eq!(handshakes_counted(&gw, "woocommerce", 1), 1);
}

#[test]
fn with_handshake_false_signed_handshakes_are_forwarded_and_unsigned_refused() {
    let rx = Receiver::start();
    let gw = gateway(&rx, false);
    let body = br#"{"token":"t","challenge":"abc123","type":"url_verification"}"#;
    let r = post(
        gw.addr,
        "/slack",
        &secret_signed("slack", SLACK_SECRET, body),
        body,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(rx.count(), 1, "forwarded to the receiver");
    let r = get(gw.addr, "/dropbox?challenge=abc", "");
    assert_eq!(r.status, 405, "{r:?}");
    let form = [(
        "Content-Type",
        "application/x-www-form-urlencoded".to_string(),
    )];
    let r = post(gw.addr, "/woocommerce", &form, b"webhook_id=17");
    assert!(r.status >= 400, "{r:?}");
    assert_eq!(rx.count(), 1);
    assert_eq!(handshakes_counted(&gw, "slack", 0), 0);
}

#[test]
fn slack_form_bodies_are_accepted() {
    let rx = Receiver::start();
    let gw = gateway(&rx, true);
    let body = b"token=x&team_id=T1&command=%2Fweather&text=94070&trigger_id=1.2.3";
    let key = verify::scheme_by_name("slack")
        .unwrap()
        .derive_key(SLACK_SECRET)
        .unwrap();
    let (h, _) = signed_by(
        "slack",
        &key,
        None,
        body,
        "application/x-www-form-urlencoded",
    );
    let r = post(gw.addr, "/slack", &h, body);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(rx.count(), 1);
    assert_eq!(sha(&rx.last().body), sha(body));
    // Events still dedupe on their id.
    let event = br#"{"event_id":"Ev1","type":"event_callback","event":{"type":"app_mention"}}"#;
    for _ in 0..2 {
        post(
            gw.addr,
            "/slack",
            &secret_signed("slack", SLACK_SECRET, event),
            event,
        );
    }
    assert_eq!(rx.count(), 2);
}

#[test]
fn twilio_signs_the_public_url_with_its_query() {
    let rx = Receiver::start();
    let gw = gateway(&rx, true);
    let key = verify::scheme_by_name("twilio")
        .unwrap()
        .derive_key(TWILIO_TOKEN)
        .unwrap();
    let query = "foo=1&bar=a%20b";
    let public = format!("{TWILIO_URL}?{query}");
    let form = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234";
    let (mut h, _) = signed_by(
        "twilio",
        &key,
        Some(&public),
        form,
        "application/x-www-form-urlencoded",
    );
    h.push(("I-Twilio-Idempotency-Token", "idem-1".to_string()));
    let path = format!("/twilio?{query}");
    let r = post(gw.addr, &path, &h, form);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(rx.count(), 1);
    assert_eq!(sha(&rx.last().body), sha(form));

    // Another query than the one signed: refused.
    h.retain(|(k, _)| *k != "I-Twilio-Idempotency-Token");
    h.push(("I-Twilio-Idempotency-Token", "idem-2".to_string()));
    let r = post(gw.addr, "/twilio?foo=1&bar=a%20c", &h, form);
    assert_eq!((r.status, r.error().as_str()), (401, "signature_mismatch"));

    // A JSON body: Twilio adds `bodySHA256` to the query and signs the URL.
    let json_body = br#"{"CallSid":"CA1"}"#;
    let (mut h, signed) = signed_by("twilio", &key, Some(&public), json_body, "application/json");
    h.push(("I-Twilio-Idempotency-Token", "idem-3".to_string()));
    let sent = signed.url.expect("twilio adds bodySHA256");
    let path = format!("/twilio{}", sent.strip_prefix(TWILIO_URL).unwrap());
    let r = post(gw.addr, &path, &h, json_body);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(rx.count(), 2);
    let r = post(gw.addr, &path, &h, br#"{"CallSid":"CA2"}"#);
    assert_eq!((r.status, r.error().as_str()), (401, "signature_mismatch"));
    assert_eq!(rx.count(), 2);
}
