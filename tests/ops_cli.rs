//! Operator-facing behaviour through the built binary: `check --offline`,
//! dev mode's admin listener, the metrics present from start.

mod common;

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{event_body, free_port, fynapse_signature, get, now, post, Receiver};

const BIN: &str = env!("CARGO_BIN_EXE_hookgate");

/// Runs the binary with `HOOKGATE_CONFIG` unset.
fn hookgate(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("HOOKGATE_CONFIG")
        .env_remove("OPS_CLI_UNSET_SECRET")
        .output()
        .unwrap()
}

const PRODUCTION: &str = "server:
  listen: [\"127.0.0.1:8080\"]
routes:
  - name: a
    path: /a
    upstream:
      url: https://receiver.hookgate-test.invalid/a
    verify:
      scheme: fynapse
      secrets:
        - env: OPS_CLI_UNSET_SECRET
          name: current
        - file: /nonexistent/hookgate/secret
";

#[test]
fn check_offline_skips_only_secrets_and_dns_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prod.yaml");
    std::fs::write(&path, PRODUCTION).unwrap();
    let path = path.to_str().unwrap();

    // Without --offline: the environment is missing, so it fails.
    let full = hookgate(&["check", "--config", path]);
    assert_eq!(full.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert!(stderr.contains("OPS_CLI_UNSET_SECRET"), "{stderr}");

    let offline = hookgate(&["check", "--offline", "--config", path]);
    let stderr = String::from_utf8_lossy(&offline.stderr);
    assert_eq!(offline.status.code(), Some(0), "{stderr}");
    for skipped in [
        "routes[0].verify.secrets[0].env: did not read environment variable `OPS_CLI_UNSET_SECRET`",
        "routes[0].verify.secrets[1].file: did not read secret file `/nonexistent/hookgate/secret`",
        "routes[0].upstream.url: did not resolve `receiver.hookgate-test.invalid` (DNS)",
    ] {
        assert!(stderr.contains(skipped), "{skipped} not in {stderr}");
    }
    let stdout = String::from_utf8_lossy(&offline.stdout);
    assert!(stdout.contains("fynapse"), "{stdout}");

    // Everything else is still checked: a key typo, a bad option fit.
    let broken = PRODUCTION
        .replace("name: current", "nmae: current")
        .replace(
            "      scheme: fynapse",
            "      scheme: fynapse\n      tolerance: 5x",
        );
    std::fs::write(dir.path().join("broken.yaml"), broken).unwrap();
    let bad = hookgate(&[
        "check",
        "--offline",
        "--config",
        dir.path().join("broken.yaml").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nmae"), "{stderr}");
    assert!(stderr.contains("tolerance"), "{stderr}");
}

#[test]
fn check_offline_passes_on_every_route_config_in_conf() {
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/conf");
    for entry in std::fs::read_dir(conf).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".yaml") || name.starts_with("alerts") {
            continue;
        }
        let out = hookgate(&["check", "--offline", "--config", path.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A `hookgate run` child, killed when dropped; its stderr is read at the end.
struct Running {
    child: Child,
}

impl Running {
    fn start(args: &[&str], wait_for: std::net::SocketAddr, dir: &std::path::Path) -> Running {
        let child = Command::new(BIN)
            .args(args)
            .current_dir(dir)
            .env_remove("HOOKGATE_CONFIG")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(wait_for).is_err() {
            assert!(Instant::now() < deadline, "hookgate did not start");
            std::thread::sleep(Duration::from_millis(30));
        }
        Running { child }
    }

    /// Stops the process and returns what it logged.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

fn scrape(admin: std::net::SocketAddr) -> String {
    String::from_utf8_lossy(&get(admin, "/metrics").body).into_owned()
}

/// The value of one series line, `name{labels} value`.
fn series(metrics: &str, line_start: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

const SECRET: &str = "ops-cli-metrics-secret-7c1e";

#[test]
fn metrics_from_start_verification_signals_and_flat_json_access_lines() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start();
    let (port, admin_port) = (free_port(), free_port());
    let config = dir.path().join("hookgate.yaml");
    std::fs::write(
        &config,
        format!(
            "server:
  listen: [\"127.0.0.1:{port}\"]
  admin: \"127.0.0.1:{admin_port}\"
alerts:
  failing_after: 3
routes:
  - name: a
    path: /a
    upstream: {{ url: \"{}\" }}
    verify:
      scheme: fynapse
      secrets:
        - value: {SECRET}
          name: current
        - value: ops-cli-older-secret
    idempotency: {{ key: \"header:Idempotency-Key\" }}
",
            rx.url("/a")
        ),
    )
    .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();
    let gw = Running::start(
        &[
            "run",
            "--log-format",
            "json",
            "--config",
            config.to_str().unwrap(),
        ],
        addr,
        dir.path(),
    );

    // Every metric is there before the first request.
    let m = scrape(admin);
    for line in [
        "hookgate_build_info{version=\"",
        "hookgate_verified_total{route=\"a\",secret=\"current\"} 0",
        "hookgate_verified_total{route=\"a\",secret=\"2\"} 0",
        "hookgate_route_verification_failing{route=\"a\"} 0",
        "hookgate_signature_age_seconds_count{route=\"a\"} 0",
        "hookgate_dedupe_settle_failures_total 0",
        "hookgate_upstream_responses_total{class=\"5xx\",route=\"a\"} 0",
        "hookgate_duplicates_total{route=\"a\"} 0",
        "hookgate_dedupe_errors_total{policy=\"fail_closed\",route=\"a\"} 0",
        "hookgate_config_reloads_total{result=\"refused\"} 0",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
    ] {
        assert!(m.contains(line), "{line} missing from\n{m}");
    }

    let mut n = 0;
    let mut signatures = Vec::new();
    let mut send = |secret: &str, at: i64| {
        n += 1;
        let body = event_body(&format!("body-marker-{n}"), 50);
        let signature = fynapse_signature(secret, &body, at);
        signatures.push(signature.clone());
        let h = vec![
            ("Content-Type", "application/json".to_string()),
            ("Webhook-Signature", signature),
            ("Idempotency-Key", format!("key-{n}")),
        ];
        post(addr, "/a?token=hidden", &h, &body).status
    };
    // Verified with the named secret, then with the second one (by position).
    assert_eq!(send(SECRET, now()), 200);
    assert_eq!(send("ops-cli-older-secret", now() - 100), 200);
    // Stale, but the MAC matched: its age is observed, it is not a mismatch.
    assert_eq!(send(SECRET, now() - 1000), 401);
    // Missing signatures are noise: they never make a route failing.
    for _ in 0..5 {
        let h = [("Content-Type", "application/json".to_string())];
        assert_eq!(post(addr, "/a", &h, b"{}").status, 401);
    }
    let m = scrape(admin);
    assert_eq!(
        series(
            &m,
            "hookgate_verified_total{route=\"a\",secret=\"current\"}"
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        series(&m, "hookgate_verified_total{route=\"a\",secret=\"2\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        series(&m, "hookgate_signature_age_seconds_count{route=\"a\"}"),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        series(
            &m,
            "hookgate_signature_age_seconds_bucket{route=\"a\",le=\"60\"}"
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        series(&m, "hookgate_route_verification_failing{route=\"a\"}"),
        Some(0.0),
        "{m}"
    );

    // Three mismatches in a row: failing; one success: not failing again.
    for _ in 0..2 {
        assert_eq!(send("wrong-secret", now()), 401);
    }
    let m = scrape(admin);
    assert_eq!(
        series(&m, "hookgate_route_verification_failing{route=\"a\"}"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(send("wrong-secret", now()), 401);
    let m = scrape(admin);
    assert_eq!(
        series(&m, "hookgate_route_verification_failing{route=\"a\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(send(SECRET, now()), 200);
    let m = scrape(admin);
    assert_eq!(
        series(&m, "hookgate_route_verification_failing{route=\"a\"}"),
        Some(0.0),
        "{m}"
    );

    let log = gw.stop();
    assert!(
        log.contains("failed verification (signature_mismatch)"),
        "{log}"
    );
    // No secret, signature or body ever reaches the log.
    assert!(
        !log.contains(SECRET) && !log.contains("ops-cli-older-secret"),
        "{log}"
    );
    for signature in &signatures {
        assert!(
            !log.contains(signature.as_str()),
            "a signature was logged: {log}"
        );
    }
    assert!(
        !log.contains("body-marker") && !log.contains("hidden"),
        "{log}"
    );
    assert!(!log.contains(".rs\""), "a source path was logged: {log}");
    let access: Vec<serde_json::Value> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"))
        })
        .filter(|v| v["target"] == "hookgate::access")
        .collect();
    assert_eq!(access.len(), 12, "{log}");
    let first = &access[0];
    assert!(first.get("fields").is_none(), "{first}");
    for field in [
        "request_id",
        "route",
        "outcome",
        "reason",
        "status",
        "method",
        "path",
        "client_ip",
        "idempotency_key",
        "event_type",
        "signature_age_s",
        "upstream_status",
        "upstream_ms",
        "elapsed_ms",
    ] {
        assert!(first.get(field).is_some(), "{field} missing: {first}");
    }
    assert_eq!(first["path"], "/a");
    assert_eq!(first["client_ip"], "127.0.0.1");
    assert_eq!(first["idempotency_key"], "key-1");
    assert_eq!(first["upstream_status"], 200);
    for v in &access {
        let ms = v["elapsed_ms"].to_string();
        let decimals = ms.split('.').nth(1).map_or(0, str::len);
        assert!(decimals <= 3, "{ms}");
    }
    let stale = &access[2];
    assert_eq!(stale["reason"], "stale_timestamp");
    assert!(
        stale["signature_age_s"].as_i64().unwrap() >= 1000,
        "{stale}"
    );
}

#[test]
fn dev_mode_serves_admin_endpoints_and_a_hint_that_works_anywhere() {
    let taken = |a: &str| std::net::TcpListener::bind(a).is_err();
    if ["127.0.0.1:8080", "127.0.0.1:3000", "127.0.0.1:9090"]
        .iter()
        .any(|a| taken(a))
    {
        eprintln!("skipped: dev mode's fixed ports are taken on this machine");
        return;
    }
    // Run from an empty directory: the hint must not need a file there.
    let dir = tempfile::tempdir().unwrap();
    let admin: std::net::SocketAddr = "127.0.0.1:9090".parse().unwrap();
    let gw = Running::start(&["run"], admin, dir.path());
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(get(admin, path).status, 200, "{path}");
    }
    let log_so_far = gw.stop();
    assert!(
        log_so_far.contains("on http://127.0.0.1:9090"),
        "{log_so_far}"
    );
    let hint = log_so_far
        .lines()
        .find_map(|l| l.split_once("try: ").map(|(_, h)| h.to_string()))
        .unwrap_or_else(|| panic!("no hint in {log_so_far}"));
    assert!(
        hint.ends_with(" -"),
        "the hint reads its body from stdin: {hint}"
    );

    // The hint, as typed, against a fresh dev-mode gateway.
    let gw = Running::start(&["run"], admin, dir.path());
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-c", &hint])
        .current_dir(dir.path())
        .env("PATH", path)
        .output()
        .unwrap();
    let _ = gw.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("#2 200") && stdout.contains("duplicate"),
        "{stdout}"
    );
}

/// Runs `hookgate` with `stdin` as standard input and `env` set.
fn hookgate_with(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("HOOKGATE_CONFIG")
        .env_remove("HOOKGATE_SECRET")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn send_reads_stdin_adds_headers_says_the_outcome_and_exits_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start();
    let port = free_port();
    let config = dir.path().join("hookgate.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  listen: [\"127.0.0.1:{port}\"]\nroutes:\n  - name: a\n    path: /a\n    upstream: {{ url: \"{}\" }}\n    verify:\n      scheme: fynapse\n      secrets: [ {{ value: {SECRET} }} ]\n",
            rx.url("/a")
        ),
    )
    .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let gw = Running::start(
        &["run", "--config", config.to_str().unwrap()],
        addr,
        dir.path(),
    );
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let url = format!("http://{addr}/a");
    let body = event_body("send-1", 80);

    // Body on stdin, secret from a file, an extra header: forwarded, exit 0.
    let ok = hookgate_with(
        &[
            "send",
            "--url",
            &url,
            "--scheme",
            "FYNAPSE",
            "--secret-file",
            secret_file.to_str().unwrap(),
            "--header",
            "X-Tenant: blue",
            "-H",
            "X-Trace:t-1",
            "--repeat",
            "2",
            "-",
        ],
        &body,
        &[],
    );
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("#1 200") && stdout.contains("forwarded"),
        "{stdout}"
    );
    assert!(stdout.contains("duplicate (already delivered)"), "{stdout}");
    let got = rx.last();
    assert_eq!(got.body.as_ref(), body.as_slice());
    assert_eq!(got.header("x-tenant").as_deref(), Some("blue"));
    assert_eq!(got.header("x-trace").as_deref(), Some("t-1"));

    // A wrong secret from the environment: rejected, said plainly, exit 1.
    let rejected = hookgate_with(
        &["send", "--url", &url, "--scheme", "fynapse", "-"],
        &body,
        &[("HOOKGATE_SECRET", "not-the-secret")],
    );
    let stdout = String::from_utf8_lossy(&rejected.stdout);
    assert_eq!(rejected.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("rejected: signature_mismatch"), "{stdout}");
    let _ = gw.stop();

    // Nobody listening: exit 2.
    let down = hookgate_with(
        &[
            "send", "--url", &url, "--scheme", "fynapse", "--secret", "s", "-",
        ],
        &body,
        &[],
    );
    let stdout = String::from_utf8_lossy(&down.stdout);
    assert_eq!(down.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("could not reach the gateway"), "{stdout}");
}

#[test]
fn sign_takes_the_secret_from_a_file_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, "sign-secret-1\n").unwrap();
    let args = ["sign", "--scheme", "fynapse", "--timestamp", "1700000000"];
    let sign = |extra: &[&str], env: &[(&str, &str)]| {
        let all: Vec<&str> = args.iter().chain(extra).copied().collect();
        let out = hookgate_with(&all, b"{}", env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let inline = sign(&["--secret", "sign-secret-1"], &[]);
    assert_eq!(
        sign(&["--secret-file", file.to_str().unwrap()], &[]),
        inline
    );
    assert_eq!(sign(&[], &[("HOOKGATE_SECRET", "sign-secret-1")]), inline);
    assert_ne!(sign(&["--secret", "other"], &[]), inline);
}

#[test]
fn readme_offline_check_example_is_real_output() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = |first: &str| {
        let start = readme.find(first).unwrap_or_else(|| panic!("no {first}"));
        let rest = &readme[start..];
        rest[..rest.find("```").unwrap()].to_string()
    };
    let yaml = block("# ok.yaml");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.yaml"), yaml).unwrap();
    let shown = block("$ hookgate check --offline --config ok.yaml\n");
    let expected = &shown[shown.find('\n').unwrap() + 1..];
    let out = Command::new(BIN)
        .args(["check", "--offline", "--config", "ok.yaml"])
        .current_dir(dir.path())
        .env_remove("HOOKGATE_CONFIG")
        .env_remove("A_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let got = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(got, expected);
}

#[test]
fn a_config_that_cannot_start_is_reported_in_json_under_json_logs() {
    let out = hookgate(&[
        "run",
        "--log-format",
        "json",
        "--config",
        "/nonexistent/hookgate.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["level"], "ERROR");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/hookgate.yaml"),
        "{v}"
    );
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn sigterm_exits_once_no_request_is_in_flight_and_finishes_those_that_are() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start();
    rx.respond(|_, _| {
        let mut r = common::Reply::status(200);
        r.delay = Duration::from_millis(1500);
        r
    });
    let port = free_port();
    let config = dir.path().join("hookgate.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  listen: [\"127.0.0.1:{port}\"]\n  grace_period: 20s\nroutes:\n  - name: a\n    path: /a\n    upstream: {{ url: \"{}\" }}\n    verify:\n      scheme: fynapse\n      secrets: [ {{ value: {SECRET} }} ]\n",
            rx.url("/a")
        ),
    )
    .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let args = ["run", "--config", config.to_str().unwrap()];

    // Nothing in flight: it exits at once, not after 20 s.
    let mut idle = Running::start(&args, addr, dir.path());
    let started = Instant::now();
    sigterm(&idle.child);
    let status = idle.child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(status.success(), "{status:?}");

    // One request in flight: it is answered (closing its connection), then
    // the process exits, long before the grace period ends.
    let mut busy = Running::start(&args, addr, dir.path());
    let client = std::thread::spawn(move || {
        let body = event_body("drain-1", 60);
        let h = vec![
            ("Content-Type", "application/json".to_string()),
            ("Webhook-Signature", fynapse_signature(SECRET, &body, now())),
            ("Idempotency-Key", "drain-1".to_string()),
        ];
        let mut conn = common::Conn::open(addr);
        conn.request(&common::request_bytes("POST", "/a", &h, &body))
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while rx.accepts() == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the receiver"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    sigterm(&busy.child);
    let answer = client.join().unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("connection"), Some("close"));
    let status = busy.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let _ = busy.stop();
    let _ = idle.stop();
}
