//! The process's log output: one line per event on stderr, human or one
//! flat JSON object. Pingora logs through the `log` crate; its records are
//! forwarded as events of target `pingora` with the module they come from,
//! never with the build machine's source paths.

use std::io::IsTerminal;

use hookgate::config::LogFormat;

/// Installs the subscriber for `format` (filter from `RUST_LOG`, else
/// `info`) and the bridge for Pingora's `log` records.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` would install `tracing-log`'s bridge, which adds
    // `log.file` (a path on the build machine) to every Pingora line.
    let set = match format {
        LogFormat::Json => tracing::subscriber::set_global_default(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .finish(),
        ),
        LogFormat::Human => tracing::subscriber::set_global_default(builder.finish()),
    };
    if set.is_ok() && log::set_logger(&PINGORA).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// Forwards `log` records (Pingora's) to `tracing`.
struct Bridge;

static PINGORA: Bridge = Bridge;

impl log::Log for Bridge {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, r: &log::Record<'_>) {
        let (module, message) = (r.target(), r.args());
        match r.level() {
            log::Level::Error => tracing::error!(target: "pingora", module, "{message}"),
            log::Level::Warn => tracing::warn!(target: "pingora", module, "{message}"),
            log::Level::Info => tracing::info!(target: "pingora", module, "{message}"),
            log::Level::Debug => tracing::debug!(target: "pingora", module, "{message}"),
            log::Level::Trace => tracing::trace!(target: "pingora", module, "{message}"),
        }
    }

    fn flush(&self) {}
}
