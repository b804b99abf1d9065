//! The standard `process_*` metrics, read from `/proc/self` at each scrape
//! (Linux; elsewhere they stay at 0). The prometheus crate's own process
//! collector needs the `procfs` crate; these few reads need nothing.

use prometheus::{Gauge, IntGauge, Registry};

/// `process_*` gauges of this process.
pub(super) struct ProcessMetrics {
    cpu_seconds: Gauge,
    resident_bytes: IntGauge,
    virtual_bytes: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    start_time: IntGauge,
    threads: IntGauge,
}

impl ProcessMetrics {
    pub(super) fn register(registry: &Registry) -> Self {
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).unwrap_or_else(|_| super::unreachable_metric(name));
            let _ = registry.register(Box::new(g.clone()));
            g
        };
        let name = "process_cpu_seconds_total";
        let cpu_seconds = Gauge::new(name, "Total user and system CPU time spent in seconds.")
            .unwrap_or_else(|_| super::unreachable_metric(name));
        let _ = registry.register(Box::new(cpu_seconds.clone()));
        let m = ProcessMetrics {
            cpu_seconds,
            resident_bytes: gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            virtual_bytes: gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            ),
            open_fds: gauge("process_open_fds", "Number of open file descriptors."),
            max_fds: gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
            ),
            start_time: gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
            ),
            threads: gauge("process_threads", "Number of OS threads in the process."),
        };
        m.observe();
        m
    }

    /// Reads `/proc/self` into the gauges; what cannot be read is left as is.
    pub(super) fn observe(&self) {
        let ticks = clock_ticks();
        if let Some(stat) = read("/proc/self/stat") {
            // Fields after the command name, which is in parentheses and
            // may hold spaces: state is field 3, so index 0 here.
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
                if let (Some(utime), Some(stime)) = (num(11), num(12)) {
                    #[allow(clippy::cast_precision_loss)]
                    self.cpu_seconds.set((utime + stime) as f64 / ticks as f64);
                }
                if let Some(n) = num(17) {
                    self.threads.set(to_i64(n));
                }
                if let Some(v) = num(20) {
                    self.virtual_bytes.set(to_i64(v));
                }
                if let (Some(start), Some(boot)) = (num(19), boot_time()) {
                    self.start_time.set(to_i64(boot + start / ticks));
                }
            }
        }
        // Resident size in kB from `status`: no page size to guess.
        let rss_kb = read("/proc/self/status").and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
        if let Some(kb) = rss_kb {
            self.resident_bytes.set(to_i64(kb.saturating_mul(1024)));
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(to_i64(dir.count() as u64));
        }
        if let Some(limits) = read("/proc/self/limits") {
            let max = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(max) = max {
                self.max_fds.set(to_i64(max));
            }
        }
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Clock ticks per second (`_SC_CLK_TCK`): 100 on every Linux platform
/// hookgate builds for.
fn clock_ticks() -> u64 {
    100
}

/// The system's boot time, Unix seconds.
fn boot_time() -> Option<u64> {
    read("/proc/stat")?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}
