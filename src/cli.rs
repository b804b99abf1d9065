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
        /// Log format.
        #[arg(long, default_value = "human", value_parser = ["human", "json"])]
        log_format: String,
    },
    /// Validate a config and print its routes; exit 1 on error.
    Check {
        /// The routes file (default: the embedded development config).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}
