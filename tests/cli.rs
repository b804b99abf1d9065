//! The `hookgate` binary as a user runs it: `check` on good and bad files,
//! `run` serving a real request and stopping on SIGTERM.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_hookgate");

fn check(path: &std::path::Path, env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const GOOD: &str = "routes:
  - name: a
    path: /a
    upstream:
      url: http://127.0.0.1:3000/a
      timeout: 5s
    max_body: 1MiB
    verify:
      scheme: fynapse
      secrets:
        - env: HOOKGATE_CLI_TEST_SECRET
";

#[test]
fn shipped_configs_pass_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, text) = check(
        &root.join("conf/hookgate.yaml"),
        &[("FYNAPSE_WEBHOOK_SECRET", "s")],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("fynapse-balances"), "{text}");
    let (code, text) = check(&root.join("conf/dev.yaml"), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("warning") && text.contains("inline"),
        "{text}"
    );
    let out = Command::new(BIN).arg("check").output().unwrap();
    assert!(out.status.success(), "the embedded config is valid");
}

#[test]
fn check_names_key_and_line_of_each_fault() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("HOOKGATE_CLI_TEST_SECRET", "s")];
    let (code, text) = check(&write(&dir, "good.yaml", GOOD), &env);
    assert_eq!(code, 0, "{text}");

    let cases: Vec<(&str, String, &str)> = vec![
        ("unknown key", GOOD.replace("    path: /a", "    path: /a\n    pathh: /b"), "line 4, column 5: routes[0].pathh: unknown key `pathh`; did you mean `path`?"),
        ("missing env", GOOD.to_string(), "line 11, column 11: routes[0].verify.secrets[0].env: environment variable `HOOKGATE_CLI_TEST_SECRET` is not set"),
        ("missing file", GOOD.replace("- env: HOOKGATE_CLI_TEST_SECRET", "- file: /nonexistent/hookgate-secret"), "line 11, column 11: routes[0].verify.secrets[0].file: cannot read secret file `/nonexistent/hookgate-secret`"),
        ("bad url", GOOD.replace("http://127.0.0.1:3000/a", "http//nowhere"), "line 5, column 12: routes[0].upstream.url"),
        ("bad duration", GOOD.replace("timeout: 5s", "timeout: 5 seconds"), "line 6, column 16: routes[0].upstream.timeout: `5 seconds`"),
        ("bad size", GOOD.replace("max_body: 1MiB", "max_body: 1 MB please"), "line 7, column 15: routes[0].max_body"),
        ("duplicate name", format!("{GOOD}{}", GOOD.replace("routes:\n", "").replace("path: /a", "path: /b")), "line 12, column 11: routes[1].name: duplicate route name `a` (first at line 2)"),
        ("duplicate path", format!("{GOOD}{}", GOOD.replace("routes:\n", "").replace("name: a", "name: b")), "line 12: routes[1].path: duplicate path"),
        ("tolerance without timestamp", GOOD.replace("scheme: fynapse", "scheme: fynapse\n      tolerance: 5m").replace("tolerance: 5m", "tolerance: 5q"), "routes[0].verify.tolerance"),
        ("duplicate key", GOOD.replace("    max_body: 1MiB", "    max_body: 1MiB\n    max_body: 2MiB"), "line 8"),
    ];
    for (what, yaml, expected) in cases {
        let env: &[(&str, &str)] = if what == "missing env" { &[] } else { &env };
        let (code, text) = check(&write(&dir, "bad.yaml", &yaml), env);
        assert_eq!(code, 1, "{what}: {text}");
        assert!(
            text.contains(expected),
            "{what}: expected {expected:?} in:\n{text}"
        );
        assert!(!text.contains("panicked"), "{what}: {text}");
    }
}

#[test]
fn check_never_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = write(&dir, "secret", "file-secret-value\n");
    let yaml = GOOD
        .replace(
            "- env: HOOKGATE_CLI_TEST_SECRET",
            &format!("- file: {}", secret_file.display()),
        )
        .replace("http://127.0.0.1:3000/a", "nope");
    let (code, text) = check(&write(&dir, "c.yaml", &yaml), &[]);
    assert_eq!(code, 1);
    assert!(!text.contains("file-secret-value"), "{text}");
}

#[test]
fn run_serves_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start();
    rx.respond(|_, _| Reply {
        delay: Duration::from_millis(700),
        ..Reply::status(200)
    });
    let port = free_port();
    let yaml = format!(
        "server:\n  listen: [\"127.0.0.1:{port}\"]\n  grace_period: 3s\n{}",
        GOOD.replace("http://127.0.0.1:3000/a", &rx.url("/a"))
    );
    let path = write(&dir, "run.yaml", &yaml);
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .env("HOOKGATE_CLI_TEST_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "gateway did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let body = event_body("evt-cli", 100);
    let h = signed_headers(&body, "cli-1");
    assert_eq!(post(addr, "/a", &h, &body).status, 200);

    // A slow request in flight when SIGTERM arrives still completes.
    let b = body.clone();
    let slow = std::thread::spawn(move || post(addr, "/a", &signed_headers(&b, "cli-2"), &b));
    std::thread::sleep(Duration::from_millis(200));
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(slow.join().unwrap().status, 200);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(
        log.contains("outcome=\"forwarded\"") || log.contains("outcome=forwarded"),
        "{log}"
    );
    assert!(!log.contains(SECRET), "the secret is never logged");
    assert!(!log.contains(&h[1].1), "the signature is never logged");
}

#[test]
fn demo_runs_and_its_table_holds() {
    let out = Command::new(BIN).arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |case: &str| {
        text.lines()
            .find(|l| l.starts_with(case))
            .unwrap_or_else(|| panic!("no row {case}:\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    for (case, status, answer, saw) in [
        ("valid", "200", "forwarded", "1"),
        ("duplicate", "200", "duplicate", "nothing"),
        ("tampered", "401", "signature_mismatch", "nothing"),
        ("stale", "401", "stale_timestamp", "nothing"),
        ("unsigned", "401", "missing_signature", "nothing"),
    ] {
        let r = row(case);
        assert!(
            r.contains(&status)
                && r.contains(&answer)
                && r.contains(&saw)
                && r.last() == Some(&"yes"),
            "{case}: {r:?}"
        );
    }
    assert!(!text.contains(" NO"), "{text}");
}

#[test]
fn sign_and_send_round_trip_through_the_gateway() {
    let (gw, rx) = setup("");
    let dir = tempfile::tempdir().unwrap();
    let body = event_body("evt-send", 300);
    let body_path = write(&dir, "body.json", std::str::from_utf8(&body).unwrap());

    // `sign` prints the header a sender attaches; the gateway accepts it.
    let out = Command::new(BIN)
        .args(["sign", "--scheme", "fynapse", "--secret", SECRET])
        // A minute ago: `send` below signs the same body now, and the same
        // signature under a new key would rightly be answered as a replay.
        .args(["--timestamp", &(now() - 60).to_string()])
        .arg(&body_path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let (name, value) = line.trim().split_once(": ").unwrap();
    assert_eq!(name, "Webhook-Signature");
    let h = vec![
        ("Content-Type", "application/json".to_string()),
        ("Webhook-Signature", value.to_string()),
        ("Idempotency-Key", "signed-by-cli".to_string()),
    ];
    assert_eq!(post(gw.addr, "/webhooks/fynapse", &h, &body).status, 200);
    assert_eq!(rx.count(), 1);

    // `send --repeat 3`: one forwarded, two duplicates.
    let out = Command::new(BIN)
        .args([
            "send",
            "--url",
            &format!("http://{}/webhooks/fynapse", gw.addr),
        ])
        .args([
            "--scheme",
            "fynapse",
            "--secret",
            SECRET,
            "--repeat",
            "3",
            "--idempotency-key",
            "sent-by-cli",
        ])
        .arg(&body_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("#1 200") && lines[0].contains("forwarded"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("#2 200") && lines[1].contains("duplicate (already delivered)"),
        "{text}"
    );
    assert!(lines[2].contains("duplicate (already delivered)"), "{text}");
    assert_eq!(rx.count(), 2);
    assert_eq!(
        rx.last().header("idempotency-key").as_deref(),
        Some("sent-by-cli")
    );
    assert!(!text.contains(SECRET));

    // A wrong secret: 401, exit 1.
    let out = Command::new(BIN)
        .args([
            "send",
            "--url",
            &format!("http://{}/webhooks/fynapse", gw.addr),
        ])
        .args(["--scheme", "fynapse", "--secret", "wrong"])
        .arg(&body_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("401"));
}

#[test]
fn sign_and_send_refuse_an_id_the_scheme_cannot_carry() {
    // Found by fuzzing (scheme_standard_webhooks): a Standard Webhooks id is
    // signed as `<id>.<t>.<body>`, so the scheme refuses an empty id or one
    // with a `.`; `sign` used to print headers the gateway answers 401.
    let dir = tempfile::tempdir().unwrap();
    let body_path = write(&dir, "body.json", "{}");
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    for id in ["", "order.17"] {
        let out = Command::new(BIN)
            .args(["sign", "--scheme", "standard-webhooks", "--secret", secret])
            .args(["--id", id])
            .arg(&body_path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{id:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("cannot be sent with the standard-webhooks scheme"),
            "{err}"
        );
    }
    let out = Command::new(BIN)
        .args(["send", "--url", "http://127.0.0.1:1/x"])
        .args(["--scheme", "standard-webhooks", "--secret", secret])
        .args(["--idempotency-key", "order.17"])
        .arg(&body_path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be sent"));
    // A plain id still signs; other schemes take any id.
    let out = Command::new(BIN)
        .args(["sign", "--scheme", "standard-webhooks", "--secret", secret])
        .args(["--id", "msg_17"])
        .arg(&body_path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new(BIN)
        .args([
            "sign", "--scheme", "github", "--secret", "s", "--id", "order.17",
        ])
        .arg(&body_path)
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn sign_knows_every_scheme_and_says_what_public_key_schemes_need() {
    let dir = tempfile::tempdir().unwrap();
    let json = write(&dir, "body.json", r#"{"type":1}"#);
    let form = write(
        &dir,
        "body.form",
        "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212",
    );
    let sign = |args: &[&str], body: &std::path::Path| {
        let out = Command::new(BIN)
            .arg("sign")
            .args(args)
            .arg(body)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Every shared-secret scheme signs (names in any case); URL-signed ones
    // with --url.
    for name in hookgate::verify::SCHEME_NAMES {
        let scheme = hookgate::verify::scheme_by_name(name).unwrap();
        let upper = name.to_ascii_uppercase();
        let mut args = vec!["--scheme", &upper, "--timestamp", "1700000000"];
        if scheme.needs_public_url() {
            args.extend(["--url", "https://hooks.example.com/in?x=1"]);
        }
        let secret = match *name {
            "standard-webhooks" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            _ => "a-secret",
        };
        args.extend(["--secret", secret]);
        let (ok, out, err) = sign(&args, &json);
        let takes_secret = scheme
            .key_kinds()
            .contains(&hookgate::verify::KeyKind::Secret);
        if takes_secret {
            assert!(ok, "{name}: {err}");
            assert!(!out.is_empty(), "{name}");
        } else {
            assert!(!ok, "{name}");
            assert!(err.contains("--private-key FILE"), "{name}: {err}");
        }
    }
    // Twilio's official example, through the CLI.
    let (ok, out, err) = sign(
        &[
            "--scheme",
            "twilio",
            "--secret",
            "12345",
            "--url",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
        ],
        &form,
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "X-Twilio-Signature: 0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    );
    let (ok, _, err) = sign(&["--scheme", "twilio", "--secret", "12345"], &form);
    assert!(!ok && err.contains("--url"), "{err}");
    // A private key signs for a public-key scheme (RFC 8032 test-1 seed).
    let key = write(
        &dir,
        "discord.key",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
    );
    let (ok, out, err) = sign(
        &[
            "--scheme",
            "discord",
            "--private-key",
            key.to_str().unwrap(),
            "--timestamp",
            "1700000000",
        ],
        &json,
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("X-Signature-Ed25519: 1695961a47c91a1ec033b819b7e87e3d"),
        "{out}"
    );
    // A shared-secret scheme refuses a private key.
    let (ok, _, err) = sign(
        &["--scheme", "github", "--private-key", key.to_str().unwrap()],
        &json,
    );
    assert!(!ok && err.contains("--secret"), "{err}");
}

#[test]
fn sign_and_send_as_a_route_sign_its_public_url() {
    // Twilio's official example: a route whose `public_url` is the URL
    // Twilio signs; `sign --config --route` needs no --url.
    let dir = tempfile::tempdir().unwrap();
    let form = write(
        &dir,
        "body.form",
        "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212",
    );
    let config = write(
        &dir,
        "twilio.yaml",
        "routes:
  - name: sms
    path: /myapp.php
    upstream: { url: \"http://127.0.0.1:3000/sms\" }
    verify:
      scheme: twilio
      secrets: [ { value: \"12345\" } ]
      public_url: https://mycompany.com/myapp.php
    idempotency: { key: none }
",
    );
    let sign = |extra: &[&str]| {
        Command::new(BIN)
            .args(["sign", "--config"])
            .arg(&config)
            .args(["--route", "sms"])
            .args(extra)
            .arg(&form)
            .output()
            .unwrap()
    };
    let out = sign(&["--url", "https://mycompany.com/myapp.php?foo=1&bar=2"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "X-Twilio-Signature: 0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    );
    // No --url: the route's public_url (here without the query).
    let out = sign(&[]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("X-Twilio-Signature: "));

    // `send` to the gateway's address signs the route's public URL plus
    // the query it requests, and the gateway agrees.
    let rx = Receiver::start();
    let gw = start_gateway(
        &TestConfig::new(free_port())
            .route(serde_json::json!({
                "name": "sms",
                "path": "/myapp.php",
                "upstream": { "url": rx.url("/sms") },
                "verify": {
                    "scheme": "twilio",
                    "secrets": [{ "value": "12345" }],
                    "public_url": "https://mycompany.com/myapp.php"
                },
                "idempotency": { "key": "none" }
            }))
            .yaml(),
    );
    let gw_config = write(&dir, "gw.yaml", &std::fs::read_to_string(&config).unwrap());
    let out = Command::new(BIN)
        .args([
            "send",
            "--url",
            &format!("http://{}/myapp.php?foo=1&bar=2", gw.addr),
        ])
        .args(["--config"])
        .arg(&gw_config)
        .args(["--route", "sms"])
        .arg(&form)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text} {out:?}");
    assert!(text.contains("#1 200"), "{text}");
    assert_eq!(rx.count(), 1);
}
