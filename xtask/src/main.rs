//! `cargo xtask`: the two commands a fresh Debian or Ubuntu machine with only
//! a Rust toolchain needs.
//!
//! - `cargo xtask run [ARGS]`: installs what the build needs, then
//!   `cargo run --release --bin hookgate -- run [ARGS]` (the embedded dev
//!   config unless ARGS say otherwise; release, like the README's other
//!   `cargo run --release` commands, so they share one build).
//! - `cargo xtask test [ARGS]`: installs what the tests need, then
//!   `cargo test --workspace [ARGS]` and `promtool test rules` on the alert
//!   rules.
//! - `cargo xtask setup [run|test]`: only the installing part.
//!
//! A missing tool is installed with `apt-get` when running as root;
//! otherwise the exact command is printed and nothing runs.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// A system tool the build or the tests need.
struct Need {
    /// The command looked for on `PATH`.
    tool: &'static str,
    /// The Debian/Ubuntu package that provides it.
    package: &'static str,
    /// Why, in a few words.
    why: &'static str,
}

const BUILD: &[Need] = &[
    Need {
        tool: "cc",
        package: "build-essential",
        why: "a C compiler for ring and zlib-ng",
    },
    Need {
        tool: "cmake",
        package: "cmake",
        why: "Pingora builds zlib-ng with it",
    },
];

const TEST: &[Need] = &[
    Need {
        tool: "redis-server",
        package: "redis-server",
        why: "tests/redis.rs starts its own instances",
    },
    Need {
        tool: "redis-cli",
        package: "redis-tools",
        why: "to look into those instances",
    },
    Need {
        tool: "kill",
        package: "procps",
        why: "tests send SIGTERM and SIGHUP to the binary",
    },
    Need {
        tool: "promtool",
        package: "prometheus",
        why: "tests conf/alerts.yaml",
    },
];

#[derive(Clone, Copy, PartialEq)]
enum Task {
    Run,
    Test,
}

impl Task {
    fn needs(self) -> Vec<&'static Need> {
        match self {
            Task::Run => BUILD.iter().collect(),
            Task::Test => BUILD.iter().chain(TEST).collect(),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((t, rest)) => (t.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match task {
        "run" => setup(Task::Run).and_then(|()| run(rest)),
        "test" => setup(Task::Test).and_then(|()| test(rest)),
        "setup" => match rest.first().map(String::as_str) {
            Some("run") => setup(Task::Run),
            None | Some("test") => setup(Task::Test),
            Some(other) => Err(format!("setup: `{other}`: expected run or test")),
        },
        "help" | "-h" | "--help" => {
            print!("{}", usage());
            Ok(())
        }
        other => Err(format!("unknown task `{other}`\n\n{}", usage())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> &'static str {
    "usage: cargo xtask <task> [args]

  run [ARGS]       install what the build needs, then `cargo run --release --bin hookgate -- run [ARGS]`
  test [ARGS]      install what the tests need, then `cargo test --workspace [ARGS]`
                   and `promtool test rules conf/alerts_test.yaml`
  setup [run|test] only install (default: test)

Missing tools are installed with apt-get when running as root; otherwise
the command to run is printed.
"
}

/// The repository root (this crate's parent).
fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Whether `tool` is an executable file on `PATH`.
fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(tool))
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// The packages of the missing tools, each once, in order.
fn missing(needs: &[&Need], present: impl Fn(&str) -> bool) -> Vec<&'static str> {
    let mut packages: Vec<&'static str> = Vec::new();
    for n in needs {
        if !present(n.tool) && !packages.contains(&n.package) {
            packages.push(n.package);
        }
    }
    packages
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn install_command(packages: &[&str], sudo: bool) -> String {
    let s = if sudo { "sudo " } else { "" };
    format!(
        "{s}apt-get update && {s}DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    )
}

/// Checks each prerequisite of `task`; installs the missing ones when it
/// can, else says how and fails.
fn setup(task: Task) -> Result<(), String> {
    let needs = task.needs();
    let packages = missing(&needs, on_path);
    if packages.is_empty() {
        return Ok(());
    }
    for n in needs.iter().filter(|n| !on_path(n.tool)) {
        eprintln!(
            "xtask: missing `{}` ({}): package {}",
            n.tool, n.why, n.package
        );
    }
    if !on_path("apt-get") {
        return Err(format!(
            "no apt-get here: install {} with your package manager, then run this again",
            packages.join(", ")
        ));
    }
    if !is_root() {
        return Err(format!(
            "not root, so not installing. Run:\n\n    {}\n\nthen this again.",
            install_command(&packages, true)
        ));
    }
    eprintln!("xtask: {}", install_command(&packages, false));
    sh(Command::new("apt-get").args(["update", "-qq"]))?;
    sh(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    if packages.contains(&"prometheus") {
        // Only promtool is wanted; Debian may start a Prometheus server on
        // :9090 as well, which is where hookgate's dev admin listens.
        let stopped = Command::new("systemctl")
            .args(["disable", "--now", "prometheus"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if stopped {
            eprintln!("xtask: stopped and disabled the prometheus service the package started");
        }
    }
    let still = missing(&needs, on_path);
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!("still missing after install: {}", still.join(", ")))
    }
}

/// Runs a command in the repository root; an error if it fails.
fn sh(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

/// Whether `cargo run` set this variable for xtask itself. They must not
/// reach the inner cargo: build scripts such as ring's watch
/// `CARGO_PKG_NAME` and `CARGO_MANIFEST_DIR`, and would see `xtask` instead
/// of the value a plain `cargo test` gives them, so every `cargo xtask test`
/// and the next plain `cargo test` would rebuild them in turn.
fn set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_run) {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn run(args: &[String]) -> Result<(), String> {
    sh(cargo()
        .args(["run", "--release", "--bin", "hookgate", "--", "run"])
        .args(args))
}

fn test(args: &[String]) -> Result<(), String> {
    sh(cargo().args(["test", "--workspace"]).args(args))?;
    sh(Command::new("promtool").args(["test", "rules", "conf/alerts_test.yaml"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_packages_once_each_in_order() {
        let needs = Task::Test.needs();
        assert_eq!(missing(&needs, |_| true), Vec::<&str>::new());
        assert_eq!(
            missing(&needs, |t| t != "cmake" && !t.starts_with("redis")),
            vec!["cmake", "redis-server", "redis-tools"]
        );
        let run = Task::Run.needs();
        assert_eq!(missing(&run, |_| false), vec!["build-essential", "cmake"]);
    }

    #[test]
    fn the_printed_command_is_one_line_to_paste() {
        assert_eq!(
            install_command(&["cmake", "redis-server"], true),
            "sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake redis-server"
        );
    }

    #[test]
    fn the_inner_cargo_sees_the_environment_of_a_plain_cargo() {
        for name in ["CARGO_PKG_NAME", "CARGO_MANIFEST_DIR", "CARGO_BIN_NAME"] {
            assert!(set_by_cargo_run(name), "{name}");
        }
        for name in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "PATH",
            "RUSTFLAGS",
        ] {
            assert!(!set_by_cargo_run(name), "{name}");
        }
    }

    #[test]
    fn finds_tools_on_path() {
        assert!(on_path("sh"));
        assert!(!on_path("surely-not-a-tool-xtask"));
    }
}
