//! Every scheme end to end: one gateway with a route per scheme, a real
//! receiver. Valid → forwarded; tampered body → 401; stale (where the scheme
//! signs a timestamp) → 401; duplicates caught on the scheme's own id.

mod common;

use common::*;
use hookgate::verify::{self, Scheme};
use serde_json::json;

const STD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// (route path, scheme name, secret, signs a timestamp, id header)
const SCHEMES: &[(&str, &str, &str, bool)] = &[
    ("/stripe", "stripe", "whsec_stripe_secret", true),
    ("/std", "standard-webhooks", STD_SECRET, true),
    ("/github", "github", "It's a Secret to Everybody", false),
    ("/shopify", "shopify", "shop-secret", false),
    ("/slack", "slack", "8f742231b10e8888abcd99yyyzzz85a5", true),
    // Issue 15's body-signed senders (URL-signed, public-key senders and
    // the handshakes: tests/handshakes.rs).
    ("/dropbox", "dropbox", "dropbox_app_secret", false),
    ("/intercom", "intercom", "intercom_client_secret", false),
    ("/typeform", "typeform", "typeform_secret", false),
    ("/woocommerce", "woocommerce", "wc_secret", false),
    ("/pagerduty", "pagerduty", "pd_secret", false),
    ("/vercel", "vercel", "vercel_secret", false),
    ("/sentry", "sentry", "sentry_client_secret", false),
    ("/bitbucket", "bitbucket", "bitbucket_secret", false),
    ("/zoom", "zoom", "zoom_secret_token", true),
    ("/paddle", "paddle", "paddle_secret", true),
    ("/calendly", "calendly", "calendly_signing_key", true),
    ("/zendesk", "zendesk", "zendesk_secret", true),
];

fn routes(rx: &Receiver) -> String {
    let mut y = String::new();
    for (path, scheme, secret, ts) in SCHEMES {
        let key = match *scheme {
            // Stripe and Slack carry no delivery id in a header: the event id is in the body.
            "stripe" => "json:/id",
            "slack" => "json:/event_id",
            // Nor do these: their event id is in the body too.
            s if verify::scheme_by_name(s)
                .and_then(|s| s.id_header().map(str::to_string))
                .is_none() =>
            {
                "json:/id"
            }
            _ => "scheme",
        };
        y.push_str(&format!(
            "  - name: r{name}
    path: {path}
    upstream: {{ url: \"{url}\" }}
    verify:
      scheme: {scheme}
      secrets: [ {{ value: \"{secret}\" }} ]
{tol}    idempotency: {{ key: \"{key}\" }}
",
            name = path.trim_start_matches('/'),
            url = rx.url(path),
            tol = if *ts { "      tolerance: 5m\n" } else { "" },
        ));
    }
    y.push_str(&format!(
        "  - name: rgeneric
    path: /generic
    upstream: {{ url: \"{}\" }}
    verify:
      scheme: hmac
      secrets: [ {{ value: generic-secret }} ]
      hmac:
        header: X-Acme-Signature
        prefix: \"sha512=\"
        encoding: base64
        algorithm: sha512
        template: \"{{id}}:{{timestamp}}:{{body}}\"
        timestamp_header: X-Acme-Timestamp
        id_header: X-Acme-Delivery
      tolerance: 2m
    idempotency: {{ key: scheme }}
",
        rx.url("/generic")
    ));
    y
}

fn signed(
    scheme: &dyn Scheme,
    secret: &str,
    body: &[u8],
    t: i64,
    id: &str,
) -> Vec<(&'static str, String)> {
    let key = scheme.derive_key(secret).unwrap();
    let mut h = vec![("Content-Type", "application/json".to_string())];
    for (k, v) in scheme.sign(&key, body, t, id) {
        h.push((Box::leak(k.into_boxed_str()), v));
    }
    if let Some(idh) = scheme.id_header() {
        if !h.iter().any(|(k, _)| k.eq_ignore_ascii_case(idh)) {
            h.push((Box::leak(idh.to_string().into_boxed_str()), id.to_string()));
        }
    }
    h
}

fn generic() -> verify::GenericHmac {
    verify::GenericHmac::new(verify::GenericOptions {
        header: "X-Acme-Signature".into(),
        prefix: "sha512=".into(),
        encoding: verify::Encoding::Base64,
        algorithm: verify::Algorithm::Sha512,
        template: "{id}:{timestamp}:{body}".into(),
        timestamp_header: Some("X-Acme-Timestamp".into()),
        id_header: Some("X-Acme-Delivery".into()),
    })
    .unwrap()
}

#[test]
fn every_scheme_end_to_end() {
    let rx = Receiver::start();
    let gw = start_gateway(&config_yaml(free_port(), &rx.url("/f"), "", &routes(&rx)));
    let mut all: Vec<(&str, Box<dyn Scheme>, &str, bool)> = SCHEMES
        .iter()
        .map(|(p, n, s, ts)| (*p, verify::scheme_by_name(n).unwrap(), *s, *ts))
        .collect();
    all.push(("/generic", Box::new(generic()), "generic-secret", true));

    for (i, (path, scheme, secret, ts)) in all.iter().enumerate() {
        let name = scheme.name();
        let id = format!("msg_{i}_{}", now());
        let body = format!(
            r#"{{"id":"{id}","event_id":"{id}","type":"test","pad":"{}"}}"#,
            "y".repeat(300)
        )
        .into_bytes();
        let before = rx.count();

        let h = signed(scheme.as_ref(), secret, &body, now(), &id);
        let r = post(gw.addr, path, &h, &body);
        assert_eq!(r.status, 200, "{name}: valid → forwarded: {r:?}");
        assert_eq!(rx.count(), before + 1, "{name}");
        let got = rx.last();
        assert_eq!(sha(&got.body), sha(&body), "{name}");
        assert_eq!(
            got.header("x-hookgate-verified").as_deref(),
            Some("true"),
            "{name}"
        );

        // The same delivery again (signed anew): a duplicate, on the scheme's id.
        let h2 = signed(scheme.as_ref(), secret, &body, now(), &id);
        let r = post(gw.addr, path, &h2, &body);
        assert_eq!(
            r.header("hookgate-duplicate"),
            Some("true"),
            "{name}: {r:?}"
        );
        assert_eq!(rx.count(), before + 1, "{name}");

        let mut tampered = body.clone();
        tampered[10] ^= 0x01;
        let h3 = signed(scheme.as_ref(), secret, &body, now(), &format!("{id}-t"));
        let r = post(gw.addr, path, &h3, &tampered);
        assert_eq!(
            (r.status, r.error()),
            (401, "signature_mismatch".to_string()),
            "{name}: tampered"
        );

        if *ts {
            let h4 = signed(
                scheme.as_ref(),
                secret,
                &body,
                now() - 3600,
                &format!("{id}-s"),
            );
            let r = post(gw.addr, path, &h4, &body);
            assert_eq!(
                (r.status, r.error()),
                (401, "stale_timestamp".to_string()),
                "{name}: stale"
            );
        }
        assert_eq!(rx.count(), before + 1, "{name}: nothing else forwarded");
    }
}

#[test]
fn svix_headers_are_accepted_and_deduped_on_svix_id() {
    let rx = Receiver::start();
    let gw = start_gateway(&config_yaml(free_port(), &rx.url("/f"), "", &routes(&rx)));
    let scheme = verify::scheme_by_name("standard-webhooks").unwrap();
    let body = br#"{"type":"invoice.paid"}"#.to_vec();
    let svix = |t: i64| {
        signed(scheme.as_ref(), STD_SECRET, &body, t, "msg_svix_1")
            .into_iter()
            .map(|(k, v)| {
                let k = k.replace("webhook-", "svix-");
                (&*Box::leak(k.into_boxed_str()), v)
            })
            .collect::<Vec<_>>()
    };
    let h = svix(now());
    assert!(h.iter().any(|(k, _)| *k == "svix-id"), "{h:?}");
    assert_eq!(post(gw.addr, "/std", &h, &body).status, 200);
    let r = post(gw.addr, "/std", &svix(now()), &body);
    assert_eq!(r.header("hookgate-duplicate"), Some("true"));
    assert_eq!(rx.count(), 1);
}

#[test]
fn standard_webhooks_official_vector_through_the_gateway() {
    // spec §2.1: a 1614265330 signature is stale today; with a tolerance
    // that spans it, the official vector verifies end to end.
    let rx = Receiver::start();
    let yaml = format!(
        "  - name: vector
    path: /vector
    upstream: {{ url: \"{}\" }}
    verify:
      scheme: standard-webhooks
      secrets: [ {{ value: \"{STD_SECRET}\" }} ]
      tolerance: 36500d
",
        rx.url("/v")
    );
    let gw = start_gateway(&config_yaml(free_port(), &rx.url("/f"), "", &yaml));
    let body = br#"{"test": 2432232314}"#;
    let h = vec![
        ("Content-Type", "application/json".to_string()),
        ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".to_string()),
        ("webhook-timestamp", "1614265330".to_string()),
        (
            "webhook-signature",
            "v1a,xx v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_string(),
        ),
    ];
    assert_eq!(post(gw.addr, "/vector", &h, body).status, 200);
    let mut bad = h.clone();
    bad[3].1 = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=".into();
    assert_eq!(
        post(gw.addr, "/vector", &bad, body).error(),
        "signature_mismatch"
    );
    let mut none = h.clone();
    none[3].1 = "v1a,abcd v2,efgh".into();
    assert_eq!(
        post(gw.addr, "/vector", &none, body).error(),
        "malformed_signature"
    );
}

#[test]
fn tolerance_on_a_scheme_without_timestamp_is_a_config_error() {
    let mut config = TestConfig::fynapse(free_port(), "http://127.0.0.1:9/x");
    config.routes[0]["verify"]["scheme"] = json!("github");
    let yaml = config.yaml();
    let err = hookgate::config::from_yaml(&yaml, "t.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("routes[0].verify.tolerance") && err.contains("signs no timestamp"),
        "{err}"
    );
}
