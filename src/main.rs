//! The `hookgate` binary: parse the command line, dispatch.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use hookgate::config::{self, Config, ConfigError, PathMatch};

use cli::{Cli, Command};

fn load(path: Option<&std::path::Path>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => config::load(p),
        None => config::from_yaml(config::EMBEDDED_DEV_CONFIG, "<embedded conf/dev.yaml>"),
    }
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match load(config.as_deref()) {
            Ok(c) => {
                print_routes(&c);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Run { config, log_format } => {
            init_logs(&log_format);
            let c = match load(config.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            for w in &c.warnings {
                tracing::warn!("{w}");
            }
            let listen: Vec<String> = c.server.listen.iter().map(|a| a.to_string()).collect();
            tracing::info!(listen = %listen.join(","), routes = c.routes.len(), "hookgate starting");
            match hookgate::server::run(&c) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hookgate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
