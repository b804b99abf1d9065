//! What an operator meets first, through the built binary: `check` with
//! every problem of a file at once, `HOOKGATE_CONFIG`, shell completions and
//! the man page, rotating a `file:` secret with SIGHUP.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{event_body, free_port, fynapse_signature, now, post, Receiver};

const BIN: &str = env!("CARGO_BIN_EXE_hookgate");

/// Runs the binary with `HOOKGATE_CONFIG` unset unless given.
fn hookgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("HOOKGATE_CONFIG")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD: &str = "server:
  listen: [\"127.0.0.1:8080\"]
  threads: 2
  body_timeout: 10s
routes:
  - name: a
    path: /a
    upstream:
      url: http://127.0.0.1:3000/a
    verify:
      scheme: fynapse
      secrets:
        - value: cli-inline-secret
";

#[test]
fn check_reports_every_problem_of_a_file_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let bad = GOOD
        .replace("threads: 2", "threads: two")
        .replace("body_timeout: 10s", "bodytimeout: 10s")
        .replace(
            "    path: /a",
            "    path: /a\n    path: /b\n    max_body: 1.5MiB",
        )
        .replace("      scheme: fynapse", "      sheme: fynapse");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, bad).unwrap();
    let out = hookgate(&["check", "--config", path.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let origin = path.display().to_string();
    for expected in [
        format!("{origin}: line 3, column 12: server.threads: expected a whole number, found `two`\n  3 |   threads: two\n    |            ^^^"),
        format!("{origin}: line 4, column 3: server.bodytimeout: unknown key `bodytimeout`; did you mean `body_timeout`?"),
        format!("{origin}: line 8, column 5: routes[0].path: duplicate key `path` (first at line 7)"),
        format!("{origin}: line 13, column 7: routes[0].verify.sheme: unknown key `sheme`; did you mean `scheme`?"),
    ] {
        assert!(stderr.contains(&expected), "expected:\n{expected}\nin:\n{stderr}");
    }
    assert!(!stderr.contains("DuplicateKeyPolicy"), "{stderr}");
    assert!(!stderr.contains("max_body"), "1.5MiB is a size: {stderr}");
    assert!(!stderr.contains("cli-inline-secret"), "{stderr}");
}

#[test]
fn hookgate_config_is_read_when_there_is_no_config_flag() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, GOOD).unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, GOOD.replace("threads: 2", "threads: two")).unwrap();
    let good_env = [("HOOKGATE_CONFIG", good.to_str().unwrap())];
    let bad_env = [("HOOKGATE_CONFIG", bad.to_str().unwrap())];

    let out = hookgate(&["check"], &good_env);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("/a") && !stderr.contains("embedded"),
        "{stdout}{stderr}"
    );

    let out = hookgate(&["check"], &bad_env);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("bad.yaml: line 3") && stderr.contains("server.threads"),
        "{stderr}"
    );

    // `--config` wins over the variable.
    let out = hookgate(&["check", "--config", good.to_str().unwrap()], &bad_env);
    assert!(out.status.success(), "{:?}", text(&out));

    // `run` reads it too: a bad file stops it before it listens.
    let out = hookgate(&["run"], &bad_env);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("bad.yaml: line 3"), "{stderr}");

    // Neither: the embedded config, said on stderr.
    let out = hookgate(&["check"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success());
    assert!(stdout.contains("/webhooks/fynapse"), "{stdout}");
    assert!(
        stderr.contains(
            "no --config and no HOOKGATE_CONFIG: checked the embedded development config"
        ),
        "{stderr}"
    );
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _hookgate"),
        ("zsh", "#compdef hookgate"),
        ("fish", "complete -c hookgate"),
    ] {
        let out = hookgate(&["completions", shell], &[]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{shell}: {stderr}");
        assert!(stdout.contains(marker), "{shell}: {stdout}");
        for sub in ["run", "check", "completions", "man"] {
            assert!(stdout.contains(sub), "{shell} lacks {sub}");
        }
    }
    let out = hookgate(&["completions", "tcsh"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_pages() {
    let out = hookgate(&["man"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(".TH hookgate 1"), "{stdout}");
    for s in ["check", "completions", "hookgate\\-run(1)"] {
        assert!(stdout.contains(s), "man page lacks {s}:\n{stdout}");
    }
    let out = hookgate(&["man", "check"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(".TH hookgate-check 1"), "{stdout}");
    assert!(stdout.contains("HOOKGATE_CONFIG"), "{stdout}");
    let out = hookgate(&["man", "nope"], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("no subcommand `nope`"), "{stderr}");
}

#[test]
fn sighup_rereads_a_secret_file_so_a_secret_rotates_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("fynapse.secret");
    std::fs::write(&secret, "rotation-old\n").unwrap();
    let rx = Receiver::start();
    let port = free_port();
    let config = dir.path().join("hookgate.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  listen: [\"127.0.0.1:{port}\"]\nroutes:\n  - name: a\n    path: /a\n    upstream: {{ url: \"{}\" }}\n    verify:\n      scheme: fynapse\n      secrets: [ {{ file: {} }} ]\n",
            rx.url("/a"),
            secret.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("HOOKGATE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "hookgate did not start");
        std::thread::sleep(Duration::from_millis(30));
    }
    let mut n = 0;
    let mut send = |secret: &str| {
        n += 1;
        let body = event_body(&format!("rot-{n}"), 100);
        let h = vec![
            ("Content-Type", "application/json".to_string()),
            ("Webhook-Signature", fynapse_signature(secret, &body, now())),
            ("Idempotency-Key", format!("rotation-{n}")),
        ];
        post(addr, "/a", &h, &body).status
    };
    assert_eq!(send("rotation-old"), 200);
    assert_eq!(send("rotation-new"), 401);

    std::fs::write(&secret, "rotation-new\n").unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while send("rotation-new") != 200 {
        assert!(
            Instant::now() < deadline,
            "the new secret was not picked up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(send("rotation-old"), 401, "the old secret is gone");
    let _ = child.kill();
    let _ = child.wait();
}

/// The fenced block of the README whose first line starts with `first`:
/// its lines to the closing fence, with or without that first line.
fn readme_block<'a>(readme: &'a str, first: &str, include_first: bool) -> &'a str {
    let start = readme
        .find(&format!("```\n{first}"))
        .or_else(|| readme.find(&format!("```yaml\n{first}")))
        .unwrap_or_else(|| panic!("README has no block starting {first:?}"));
    let block = &readme[start..];
    let block = &block[block.find('\n').unwrap() + 1..];
    let block = &block[..block.find("```").unwrap()];
    if include_first {
        block
    } else {
        &block[block.find('\n').unwrap() + 1..]
    }
}

#[test]
fn readme_check_examples_are_real_output() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in ["bad.yaml", "ok.yaml", "twilio.yaml"] {
        let yaml = readme_block(&readme, &format!("# {name}"), true);
        std::fs::write(dir.path().join(name), yaml).unwrap();
        let expected = readme_block(&readme, &format!("$ hookgate check --config {name}"), false);
        let out = Command::new(BIN)
            .args(["check", "--config", name])
            .current_dir(dir.path())
            .env_remove("HOOKGATE_CONFIG")
            .env_remove("A_SECRET")
            .env("TWILIO_AUTH_TOKEN", "t")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), expected, "{name}");
    }
}
