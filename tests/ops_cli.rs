//! Operator-facing behaviour through the built binary: `check --offline`,
//! dev mode's admin listener, the metrics present from start.

mod common;

use std::process::{Command, Output};

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
