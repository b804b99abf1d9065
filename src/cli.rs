//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use hookgate::config::LogFormat;

/// hookgate: verify webhook signatures, drop duplicates, forward clean
/// deliveries byte for byte.
#[derive(Debug, Parser)]
#[command(name = "hookgate", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// What `hookgate` can do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Run {
        /// The routes file. Without it (and without `HOOKGATE_CONFIG`), the
        /// embedded development config (127.0.0.1:8080 → 127.0.0.1:3000,
        /// inline dev secret) is used.
        #[arg(long, short, env = "HOOKGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Log format (`human` or `json`); overrides `server.log_format`.
        #[arg(long, value_parser = <LogFormat as std::str::FromStr>::from_str)]
        log_format: Option<LogFormat>,
    },
    /// Validate a config and print its routes; exit 1 on error.
    Check {
        /// The routes file (default: `HOOKGATE_CONFIG`, else the embedded
        /// development config, which `check` says on stderr).
        #[arg(long, short, env = "HOOKGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Check everything that does not need the production environment:
        /// do not read secret variables and files, do not resolve upstream
        /// hosts (and say on stderr what was skipped). For CI.
        #[arg(long)]
        offline: bool,
    },
    /// Print the signature header(s) a sender would attach to a body.
    Sign(SignArgs),
    /// Sign and POST a delivery; print status, key headers and time.
    Send(SendArgs),
    /// Run a gateway and a receiver, send a valid, duplicate, tampered,
    /// stale and unsigned delivery, and print what happened.
    Demo,
    /// Print a shell completion script: `hookgate completions bash >
    /// /etc/bash_completion.d/hookgate`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): `hookgate man > hookgate.1`, `hookgate man
    /// run > hookgate-run.1`.
    Man {
        /// A subcommand: print its page (hookgate-run(1)) instead.
        command: Option<String>,
    },
}

/// `hookgate sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Scheme name, any case (with --secret, or --private-key for discord,
    /// sendgrid and standard-webhooks v1a).
    #[arg(long)]
    pub scheme: Option<String>,
    /// Secret (with --scheme); without it, --secret-file or the
    /// `HOOKGATE_SECRET` environment variable.
    #[arg(long)]
    pub secret: Option<String>,
    /// File holding the secret (a trailing newline is not part of it).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// File holding the sender's private key, for schemes verified with a
    /// public key (tests only: real senders never share it).
    #[arg(long)]
    pub private_key: Option<PathBuf>,
    /// The public URL the sender signs (twilio, square, hubspot, hmac with
    /// {url}), with its query (default with --config/--route: the route's
    /// `verify.public_url`).
    #[arg(long)]
    pub url: Option<String>,
    /// The request method, for schemes that sign it (hubspot).
    #[arg(long, default_value = "POST")]
    pub method: String,
    /// A routes file (with --route): sign as that route expects.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Route name (with --config).
    #[arg(long)]
    pub route: Option<String>,
    /// Unix seconds to sign (default: now).
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// Delivery id, for schemes that sign one (default: random).
    #[arg(long)]
    pub id: Option<String>,
    /// Body file (default: standard input).
    pub body: Option<PathBuf>,
}

/// `hookgate send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Where to send (http:// or https://host:port/path).
    #[arg(long)]
    pub url: String,
    /// The public URL the sender signs, when it is not --url (default with
    /// --config/--route: the route's `verify.public_url`); its query is
    /// --url's.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Scheme name, any case (with --secret, or --private-key).
    #[arg(long)]
    pub scheme: Option<String>,
    /// Secret (with --scheme); without it, --secret-file or the
    /// `HOOKGATE_SECRET` environment variable.
    #[arg(long)]
    pub secret: Option<String>,
    /// File holding the secret (a trailing newline is not part of it).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// An extra header, `NAME:VALUE`; repeatable. It replaces a header
    /// `send` would set.
    #[arg(long = "header", short = 'H', value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// File holding the sender's private key, for schemes verified with a
    /// public key (tests only).
    #[arg(long)]
    pub private_key: Option<PathBuf>,
    /// A routes file (with --route).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Route name (with --config).
    #[arg(long)]
    pub route: Option<String>,
    /// Idempotency key (default: a fresh one).
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Send the same delivery N times (each signed anew), to see dedupe.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Unix seconds to sign (default: now).
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// Body file, or `-` for standard input.
    pub body: PathBuf,
}
