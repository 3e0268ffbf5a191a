//! Engine counters, exported by the server as Prometheus text. Relaxed atomics: each is an
//! independent tally, read without any ordering with the others.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        if n > 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default, Debug)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default, Debug)]
pub struct Metrics {
    /// Connections registered with the engine on this node (sockets).
    pub connections: Gauge,
    /// Presence held without a socket (HTTP online-status logins) on this node.
    pub detached_connections: Gauge,
    pub joins: Counter,
    pub leaves: Counter,
    pub updates: Counter,
    pub expirations: Counter,
    pub heartbeats: Counter,
    /// Room messages published through the broker.
    pub events_published: Counter,
    /// Frames queued to local sockets by broadcasts.
    pub frames_out: Counter,
    pub slow_consumers: Counter,
    /// Dropped connections lingering in the leave grace on this node now.
    pub lingering: Gauge,
    /// Drops that left at once because `leave_grace_max_pending` connections already
    /// lingered.
    pub leave_grace_overflows: Counter,
    pub backend_calls: Counter,
    pub backend_errors: Counter,
    /// Sum of backend call latencies, in microseconds (with `backend_calls`, the mean).
    pub backend_latency_us: Counter,
}

impl Metrics {
    /// The gauge a connection counts in: `connections` for a socket, else
    /// `detached_connections`.
    pub fn gauge(&self, socket: bool) -> &Gauge {
        if socket {
            &self.connections
        } else {
            &self.detached_connections
        }
    }
}
