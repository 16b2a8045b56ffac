//! Request counters and process resource usage for `get_metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters shared by all connections.
#[derive(Debug, Default)]
pub struct Metrics {
    active_connections: AtomicU64,
    total_requests: AtomicU64,
    failed_requests: AtomicU64,
    total_response_micros: AtomicU64,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricsSnapshot {
    /// Open WebSocket connections.
    pub active_connections: u64,
    /// Requests answered.
    pub total_requests: u64,
    /// Mean handling time in milliseconds.
    pub average_response_time_ms: f64,
    /// Share of requests answered with an error (0–1).
    pub error_rate: f64,
}

impl Metrics {
    /// A connection opened.
    pub fn connection_opened(&self) {
        self.active_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed.
    pub fn connection_closed(&self) {
        self.active_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// A request was answered after `elapsed`, with an error or not.
    pub fn request_done(&self, elapsed: Duration, failed: bool) {
        self.total_requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed_requests.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.total_response_micros
            .fetch_add(micros, Ordering::Relaxed);
    }

    /// Reads the counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let total = self.total_requests.load(Ordering::Relaxed);
        let failed = self.failed_requests.load(Ordering::Relaxed);
        let micros = self.total_response_micros.load(Ordering::Relaxed);
        let per_request = |value: f64| {
            if total == 0 {
                0.0
            } else {
                value / total as f64
            }
        };
        MetricsSnapshot {
            active_connections: self.active_connections.load(Ordering::Relaxed),
            total_requests: total,
            average_response_time_ms: per_request(micros as f64 / 1000.0),
            error_rate: per_request(failed as f64),
        }
    }
}

/// Resident set size of this process in bytes, from `/proc/self/statm`.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// CPU seconds (user + system) used by this process, from `/proc/self/stat`.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    Some((utime + stime) as f64 / ticks as f64)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|size| u64::try_from(size).ok())
        .unwrap_or(4096)
}
