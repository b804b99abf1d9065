//! Command-line definitions.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// hookgate: verify webhook signatures, drop duplicates, forward clean
/// deliveries byte for byte.
#[derive(Debug, Parser)]
#[command(name = "hookgate", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Run {
        /// The routes file. Without it, the embedded development config
        /// (127.0.0.1:8080 → 127.0.0.1:3000, inline dev secret) is used.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Log format; overrides `server.log_format`.
        #[arg(long, value_parser = ["human", "json"])]
        log_format: Option<String>,
    },
    /// Validate a config and print its routes; exit 1 on error.
    Check {
        /// The routes file (default: the embedded development config).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the signature header(s) a sender would attach to a body.
    Sign {
        /// Scheme name (with --secret).
        #[arg(long)]
        scheme: Option<String>,
        /// Secret (with --scheme).
        #[arg(long)]
        secret: Option<String>,
        /// A routes file (with --route): sign as that route expects.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Route name (with --config).
        #[arg(long)]
        route: Option<String>,
        /// Unix seconds to sign (default: now).
        #[arg(long)]
        timestamp: Option<i64>,
        /// Delivery id, for schemes that sign one (default: random).
        #[arg(long)]
        id: Option<String>,
        /// Body file (default: standard input).
        body: Option<PathBuf>,
    },
    /// Sign and POST a delivery; print status, key headers and time.
    Send {
        /// Where to send (http://host:port/path).
        #[arg(long)]
        url: String,
        /// Scheme name (with --secret).
        #[arg(long)]
        scheme: Option<String>,
        /// Secret (with --scheme).
        #[arg(long)]
        secret: Option<String>,
        /// A routes file (with --route).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Route name (with --config).
        #[arg(long)]
        route: Option<String>,
        /// Idempotency key (default: a fresh one).
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Send the same delivery N times (each signed anew), to see dedupe.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Unix seconds to sign (default: now).
        #[arg(long)]
        timestamp: Option<i64>,
        /// Body file.
        body: PathBuf,
    },
    /// Run a gateway and a receiver, send a valid, duplicate, tampered,
    /// stale and unsigned delivery, and print what happened.
    Demo,
}
