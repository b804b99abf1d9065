//! The `hookgate` binary: parse the command line, dispatch.

mod cli;
mod cmd;

use std::process::ExitCode;

use std::sync::Arc;

use clap::{CommandFactory, Parser};
use hookgate::config::{self, Config, ConfigError, LoadOptions, LogFormat, PathMatch};
use hookgate::gateway::Gateway;
use hookgate::server::{self, StartError};

use cli::{Cli, Command};

fn load(path: Option<&std::path::Path>, opts: LoadOptions) -> Result<Config, ConfigError> {
    match path {
        Some(p) => config::load_with(p, opts),
        None => config::from_yaml_with(
            config::EMBEDDED_DEV_CONFIG,
            "<embedded conf/dev.yaml>",
            opts,
        ),
    }
}

/// The man page of hookgate, or of one of its subcommands (`hookgate-run`).
fn man_page(sub: Option<&str>) -> Result<Vec<u8>, String> {
    let mut cmd = Cli::command();
    cmd.build();
    let page = match sub {
        None => cmd,
        Some(name) => match cmd.find_subcommand(name) {
            Some(s) => s
                .clone()
                .display_name(format!("hookgate-{name}"))
                .bin_name(format!("hookgate {name}"))
                .version(env!("CARGO_PKG_VERSION")),
            None => {
                let names: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
                return Err(format!(
                    "no subcommand `{name}` (one of: {})",
                    names.join(", ")
                ));
            }
        },
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Writes generated text (completions, man page) to standard output.
fn print_bytes(out: &[u8]) -> Exit {
    use std::io::Write;
    match std::io::stdout().lock().write_all(out) {
        Ok(()) => Exit::Success,
        Err(e) => fail(e),
    }
}

fn print_routes(c: &Config) {
    println!(
        "{:<24} {:<32} {:<12} {:<8} UPSTREAM",
        "ROUTE", "MATCH", "SCHEME", "MODE"
    );
    for r in &c.routes {
        let m = match &r.path {
            PathMatch::Exact(p) => p.clone(),
            PathMatch::Prefix(p) => format!("{p}*"),
        };
        let m = match &r.host {
            Some(h) => format!("{h}{m}"),
            None => m,
        };
        let mode = if r.verify.enforce {
            "enforce"
        } else {
            "monitor"
        };
        println!(
            "{:<24} {:<32} {:<12} {:<8} {}",
            r.name,
            m,
            r.verify.scheme.name(),
            mode,
            r.upstream.url
        );
    }
    for w in &c.warnings {
        println!("warning: {w}");
    }
}

/// A delivery the dev config accepts, for the start hint (no file needed).
const DEV_SAMPLE: &str = r#"{"event_type":"balance.extracted","data":{"amount":"12.50"}}"#;

/// The start hint's command: the body on standard input.
const DEV_SEND: &str = "hookgate send --url http://127.0.0.1:8080/webhooks/fynapse \
    --scheme fynapse --secret dev-secret-change-me --repeat 2 -";

/// Runs the gateway in the foreground; SIGHUP reloads the config file. In
/// dev mode (no `--config`), a built-in receiver listens on the dev
/// config's upstream, 127.0.0.1:3000, so the whole path works with no other
/// service.
fn run(c: &Config, path: Option<&std::path::Path>) -> Result<(), StartError> {
    let mut c = c.clone();
    if path.is_none() && c.server.admin.is_none() {
        // Dev mode: the admin endpoints on a fixed local address.
        let admin = std::net::SocketAddr::from(([127, 0, 0, 1], 9090));
        if std::net::TcpListener::bind(admin).is_ok() {
            c.server.admin = Some(admin);
            tracing::info!("dev mode: /metrics, /healthz and /readyz on http://{admin}");
        } else {
            tracing::warn!("dev mode: {admin} is taken; no admin listener");
        }
    }
    let c = &c;
    let gateway = Arc::new(Gateway::from_config(c)?);
    let mut server = server::build(c, gateway.clone())?;
    server::exit_when_drained(&server, gateway.clone()).map_err(StartError::Thread)?;
    if let Some(path) = path {
        server::watch_reload(&mut server, path.to_path_buf(), gateway, c.clone());
    } else {
        let addr = "127.0.0.1:3000";
        if std::net::TcpListener::bind(addr).is_ok() {
            let receiver = cmd::receiver::DevReceiver::new(true);
            let mut svc =
                pingora::services::listening::Service::new("dev receiver".to_string(), receiver);
            svc.add_tcp(addr);
            server.add_service(svc);
            tracing::info!("dev mode: a built-in receiver on {addr} prints each delivery it gets");
        } else {
            tracing::warn!("dev mode: {addr} is taken; forwarding to whatever listens there");
        }
        tracing::info!("try: echo '{DEV_SAMPLE}' | {DEV_SEND}");
    }
    server.run_forever()
}

/// How a subcommand ended, as the shell sees it.
enum Exit {
    /// Everything as expected: 0.
    Success,
    /// The command ran and found a problem (a refused config, a rejected
    /// delivery, a demo case that misbehaved): 1.
    Failure,
    /// A code of the subcommand's own (`send`: 2 when the gateway could
    /// not be reached or answered `5xx`).
    Code(u8),
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        match e {
            Exit::Success => ExitCode::SUCCESS,
            Exit::Failure => ExitCode::FAILURE,
            Exit::Code(c) => ExitCode::from(c),
        }
    }
}

impl From<bool> for Exit {
    fn from(ok: bool) -> Self {
        if ok {
            Exit::Success
        } else {
            Exit::Failure
        }
    }
}

fn fail(e: impl std::fmt::Display) -> Exit {
    eprintln!("hookgate: {e}");
    Exit::Failure
}

fn main() -> ExitCode {
    // Before anything else: a SIGHUP must never end the process (issue 12).
    if let Err(e) = server::survive_sighup() {
        eprintln!("hookgate: cannot handle SIGHUP: {e}");
    }
    let cli = Cli::parse();
    let exit = match cli.command {
        Command::Sign(args) => cmd::sign::run(&args).map_or_else(fail, |()| Exit::Success),
        Command::Send(args) => cmd::send::run(&args).map_or_else(fail, Exit::Code),
        Command::Demo => cmd::demo::run().map_or_else(fail, Exit::from),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "hookgate", &mut out);
            print_bytes(&out)
        }
        Command::Man { command } => {
            man_page(command.as_deref()).map_or_else(fail, |page| print_bytes(&page))
        }
        Command::Check { config, offline } => {
            match load(config.as_deref(), LoadOptions { offline }) {
                Ok(c) => {
                    if config.is_none() {
                        eprintln!(
                        "hookgate: no --config and no HOOKGATE_CONFIG: checked the embedded development config"
                    );
                    }
                    for s in &c.skipped {
                        eprintln!("hookgate: offline, skipped {s}");
                    }
                    print_routes(&c);
                    Exit::Success
                }
                Err(e) => {
                    eprintln!("{e}");
                    Exit::Failure
                }
            }
        }
        Command::Run { config, log_format } => {
            let c = match load(config.as_deref(), LoadOptions::default()) {
                Ok(c) => c,
                Err(e) if log_format == Some(LogFormat::Json) => {
                    cmd::logs::init(LogFormat::Json);
                    tracing::error!(error = %e, "invalid config");
                    return ExitCode::FAILURE;
                }
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            cmd::logs::init(log_format.unwrap_or(c.server.log_format));
            for w in &c.warnings {
                tracing::warn!("{w}");
            }
            let listen: Vec<String> = c.server.listen.iter().map(|a| a.to_string()).collect();
            tracing::info!(listen = %listen.join(","), routes = c.routes.len(), "hookgate starting");
            run(&c, config.as_deref()).map_or_else(
                |e| {
                    tracing::error!(error = %e, "cannot start");
                    Exit::Failure
                },
                |()| Exit::Success,
            )
        }
    };
    exit.into()
}
