//! The protocol layer's counters (the engine keeps its own), and how a part of the server
//! adds its own lines to `/metrics` without `observe.rs` knowing it: it implements
//! [`WriteMetrics`] and the app registers it (see `app.rs`).

use std::fmt::Write;

use activenow_engine::metrics::{Counter, Gauge};

/// Counters of the protocol layer (the engine keeps its own).
#[derive(Default)]
pub struct AppMetrics {
    pub messages_in: Counter,
    pub errors: Counter,
    pub rate_limited: Counter,
    pub upgrades_refused: Counter,
    /// Sockets dropped because a write made no progress for SLOW_CONSUMER_TIMEOUT_MS.
    pub write_timeouts: Counter,
    /// HTTP connections dropped by the header or idle timeout (slowloris, silent clients).
    pub http_timeouts: Counter,
    /// Requests and connections refused by a per-IP limit (429).
    pub per_ip_refused: Counter,
    /// Open sockets per protocol (the dashboard's "connections per protocol").
    pub sockets: SocketGauges,
}

/// Open WebSockets of each protocol on this node (Socket.IO counts its own).
#[derive(Default)]
pub struct SocketGauges {
    pub rooms: Gauge,
    pub visitors: Gauge,
    pub channels: Gauge,
    pub online: Gauge,
    pub sessions: Gauge,
}

/// Counts one open socket while it lives: `let _open = OpenSocket::new(&gauge);`.
pub struct OpenSocket<'a>(&'a Gauge);

impl<'a> OpenSocket<'a> {
    pub fn new(gauge: &'a Gauge) -> OpenSocket<'a> {
        gauge.inc();
        OpenSocket(gauge)
    }
}

impl Drop for OpenSocket<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A part of the server with Prometheus lines of its own (a protocol's counters, a
/// service's gauges), appended to `/metrics` by `observe.rs`.
pub trait WriteMetrics: Send + Sync {
    fn write_metrics(&self, out: &mut String);
}

/// One metric in the exposition format: its help, its type and its value.
pub fn write_line(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP activenow_{name} {help}\n# TYPE activenow_{name} {kind}\nactivenow_{name} {value}"
    );
}
