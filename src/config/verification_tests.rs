//! Tests of `verification.rs`.

use super::super::{from_yaml, Config, KeySource, Problem};

const DISCORD_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const WHPK: &str = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

/// A one-route config whose `verify:` block is `verify` (YAML lines at
/// the block's indentation) and whose route adds `extra`.
fn config(verify: &str, extra: &str) -> String {
    let verify: String = verify.lines().map(|l| format!("      {l}\n")).collect();
    let extra: String = extra.lines().map(|l| format!("    {l}\n")).collect();
    format!(
            "routes:\n  - name: r\n    path: /in\n    upstream:\n      url: http://127.0.0.1:3000/hooks\n{extra}    verify:\n{verify}"
        )
}

fn ok(verify: &str, extra: &str) -> Config {
    let yaml = config(verify, extra);
    from_yaml(&yaml, "t.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn refused(verify: &str, extra: &str) -> Vec<Problem> {
    let yaml = config(verify, extra);
    match from_yaml(&yaml, "t.yaml") {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(e) => e.problems,
    }
}

fn only(problems: &[Problem], key: &str, says: &str) {
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].key, key, "{problems:#?}");
    assert!(problems[0].message.contains(says), "{}", problems[0]);
}

#[test]
fn public_url_is_required_by_url_signing_schemes() {
    let p = refused("scheme: twilio\nsecrets: [{ value: tok }]", "");
    only(&p, "routes[0].verify.public_url", "signs the URL");
    let c = ok(
        "scheme: twilio\nsecrets: [{ value: tok }]\npublic_url: https://hooks.example.com:8443/in",
        "",
    );
    assert_eq!(
        c.routes[0].verify.public_url.as_deref(),
        Some("https://hooks.example.com:8443/in")
    );
    // Kept exactly as written: the sender signs those bytes.
    let c = ok(
        "scheme: square\nsecrets: [{ value: k }]\npublic_url: https://Hooks.Example.com/a%20b",
        "",
    );
    assert_eq!(
        c.routes[0].verify.public_url.as_deref(),
        Some("https://Hooks.Example.com/a%20b")
    );
}

#[test]
fn public_url_is_refused_elsewhere_and_when_malformed() {
    let p = refused(
        "scheme: github\nsecrets: [{ value: s }]\npublic_url: https://h.example/in",
        "",
    );
    only(&p, "routes[0].verify.public_url", "does not sign the URL");
    for (bad, says) in [
        ("hooks.example.com/in", "not a URL"),
        ("ftp://h.example/in", "http or https"),
        ("https://u:p@h.example/in", "no user"),
        ("https://h.example/in?x=1", "no query"),
        ("https://h.example/in#f", "no query, fragment"),
        ("\"https://h.example/in?\"", "no query"),
    ] {
        let p = refused(
            &format!("scheme: hubspot\nsecrets: [{{ value: s }}]\npublic_url: {bad}"),
            "",
        );
        only(&p, "routes[0].verify.public_url", says);
    }
    // One URL per route: a prefix route would take many.
    let yaml = config(
        "scheme: twilio\nsecrets: [{ value: tok }]\npublic_url: https://h.example/in",
        "",
    )
    .replace("path: /in", "path_prefix: /in");
    let p = from_yaml(&yaml, "t.yaml").unwrap_err().problems;
    only(&p, "routes[0].verify.public_url", "path_prefix");
}

#[test]
fn public_key_schemes_take_public_keys_not_secrets() {
    let c = ok(
        &format!("scheme: discord\npublic_keys: [{{ value: {DISCORD_KEY} }}]"),
        "",
    );
    assert_eq!(c.routes[0].verify.keys.len(), 1);
    // A public key is no secret: no inline warning for it.
    assert!(
        !c.warnings.iter().any(|w| w.contains("inline")),
        "{:?}",
        c.warnings
    );
    let p = refused("scheme: discord\nsecrets: [{ value: s }]", "");
    only(&p, "routes[0].verify.secrets", "configure `public_keys`");
    let p = refused("scheme: sendgrid", "");
    only(
        &p,
        "routes[0].verify.public_keys",
        "at least one public key",
    );
    let p = refused("scheme: discord\npublic_keys: [{ value: abcd }]", "");
    assert_eq!(p[0].key, "routes[0].verify.public_keys[0]", "{p:#?}");
    let p = refused(
        &format!("scheme: github\npublic_keys: [{{ value: {DISCORD_KEY} }}]"),
        "",
    );
    assert!(
            p.iter()
                .any(|p| p.key == "routes[0].verify.public_keys"
                    && p.message.contains("shared secret")),
            "{p:#?}"
        );
    let p = refused("scheme: github", "");
    only(&p, "routes[0].verify.secrets", "at least one secret");
    let p = refused(
        "scheme: discord\npublic_keys: [{ env: HOOKGATE_NO_SUCH_VAR_15 }]",
        "",
    );
    only(&p, "routes[0].verify.public_keys[0].env", "is not set");
}

#[test]
fn standard_webhooks_takes_secrets_public_keys_or_both() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let c = ok(
        &format!("scheme: standard-webhooks\nsecrets: [{{ value: {secret} }}]"),
        "",
    );
    assert_eq!(c.routes[0].verify.keys.len(), 1);
    let c = ok(
        &format!("scheme: standard-webhooks\npublic_keys: [{{ value: \"{WHPK}\" }}]"),
        "",
    );
    assert_eq!(c.routes[0].verify.keys.len(), 1);
    let c = ok(
            &format!("scheme: standard-webhooks\nsecrets: [{{ value: {secret} }}]\npublic_keys: [{{ value: \"{WHPK}\" }}]"),
            "",
        );
    // Secrets first, then public keys: `key_index` counts in this order.
    let kinds: Vec<_> = c.routes[0].verify.keys.iter().map(|k| k.kind()).collect();
    assert_eq!(
        kinds,
        [
            crate::verify::KeyKind::Secret,
            crate::verify::KeyKind::PublicKey
        ]
    );
    let p = refused("scheme: standard-webhooks\nsecrets: []", "");
    only(&p, "routes[0].verify.secrets", "or both");
}

#[test]
fn handshake_defaults_on_where_the_scheme_has_one_and_is_refused_elsewhere() {
    for scheme in ["slack", "zoom", "dropbox", "woocommerce"] {
        let c = ok(&format!("scheme: {scheme}\nsecrets: [{{ value: s }}]"), "");
        assert!(c.routes[0].verify.handshake, "{scheme}");
    }
    let c = ok(
        &format!("scheme: discord\npublic_keys: [{{ value: {DISCORD_KEY} }}]"),
        "",
    );
    assert!(c.routes[0].verify.handshake);
    let c = ok(
        "scheme: slack\nsecrets: [{ value: s }]\nhandshake: false",
        "",
    );
    assert!(!c.routes[0].verify.handshake);
    let c = ok("scheme: github\nsecrets: [{ value: s }]", "");
    assert!(!c.routes[0].verify.handshake);
    let p = refused(
        "scheme: github\nsecrets: [{ value: s }]\nhandshake: true",
        "",
    );
    only(&p, "routes[0].verify.handshake", "no setup handshake");
}

#[test]
fn scheme_key_follows_carries_id() {
    // Mailgun's id is the signed token from the body: no header, and
    // the default, so that a captured signature is accepted once.
    let c = ok("scheme: mailgun\nsecrets: [{ value: k }]", "");
    assert_eq!(c.routes[0].idempotency.source, KeySource::Scheme(None));
    assert!(c.routes[0].idempotency.required);
    let c = ok(
        "scheme: mailgun\nsecrets: [{ value: k }]",
        "idempotency: { key: scheme }",
    );
    assert_eq!(c.routes[0].idempotency.source, KeySource::Scheme(None));
    let c = ok(
        "scheme: gitlab\nsecrets: [{ value: k }]",
        "idempotency: { key: scheme }",
    );
    assert!(matches!(
        c.routes[0].idempotency.source,
        KeySource::Scheme(Some(_))
    ));
    let p = refused(
        "scheme: slack\nsecrets: [{ value: s }]",
        "idempotency: { key: scheme }",
    );
    only(&p, "routes[0].idempotency.key", "no delivery id");
}

#[test]
fn slack_and_twilio_take_forms_by_default() {
    let form = "application/x-www-form-urlencoded";
    let c = ok("scheme: slack\nsecrets: [{ value: s }]", "");
    assert_eq!(c.routes[0].content_types, ["application/json", form]);
    let c = ok(
        "scheme: twilio\nsecrets: [{ value: s }]\npublic_url: https://h.example/in",
        "",
    );
    assert_eq!(c.routes[0].content_types, ["application/json", form]);
    let c = ok("scheme: github\nsecrets: [{ value: s }]", "");
    assert_eq!(c.routes[0].content_types, ["application/json"]);
    // Explicit wins.
    let c = ok(
        "scheme: slack\nsecrets: [{ value: s }]",
        "content_types: [application/json]",
    );
    assert_eq!(c.routes[0].content_types, ["application/json"]);
    // A required JSON key refuses form bodies: said at load.
    let c = ok(
        "scheme: slack\nsecrets: [{ value: s }]",
        "idempotency: { key: \"json:/event_id\" }",
    );
    assert!(
        c.warnings.iter().any(|w| w.contains("form-encoded")),
        "{:?}",
        c.warnings
    );
    let c = ok(
        "scheme: slack\nsecrets: [{ value: s }]",
        "idempotency: { key: \"json:/event_id\", required: false }",
    );
    assert!(!c.warnings.iter().any(|w| w.contains("form-encoded")));
}

fn yaml(secrets: &str, alerts: &str) -> String {
    format!(
        "{alerts}routes:
  - name: a
    path: /a
    upstream:
      url: http://127.0.0.1:3000/a
    verify:
      scheme: fynapse
      secrets:
{secrets}"
    )
}

#[test]
fn secrets_are_labelled_by_name_or_position() {
    let c = from_yaml(
        &yaml(
            "        - value: s-one\n          name: old\n        - value: s-two\n",
            "",
        ),
        "t",
    )
    .unwrap();
    assert_eq!(c.routes[0].verify.key_names, ["old", "2"]);
    assert_eq!(c.failing_after, 20);
    let dup =
        "        - value: s-one\n          name: k\n        - value: s-two\n          name: k\n";
    let e = from_yaml(&yaml(dup, ""), "t").unwrap_err().to_string();
    assert!(
        e.contains("secrets[1].name") && e.contains("duplicate"),
        "{e}"
    );
    let e = from_yaml(
        &yaml("        - value: s\n          name: \"a b\"\n", ""),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("secrets[0].name"), "{e}");
}

#[test]
fn failing_after_is_read_and_checked() {
    let one = "        - value: s-one\n";
    let c = from_yaml(&yaml(one, "alerts:\n  failing_after: 3\n"), "t").unwrap();
    assert_eq!(c.failing_after, 3);
    let e = from_yaml(&yaml(one, "alerts:\n  failing_after: 0\n"), "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("alerts.failing_after"), "{e}");
}
