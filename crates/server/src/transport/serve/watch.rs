//! A connection's phase clock, shared by the stream, the service and the watchdog, so that
//! one timer per connection can enforce the head, busy and idle deadlines (see the `serve` module).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::transport::http_limits::HttpLimits;

const HEAD: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;

/// One connection's phase and when it began (ms since `started`). Written by the stream
/// (first byte after idle), the service (request in, response out) and read by the watchdog.
pub(super) struct Watch {
    started: Instant,
    phase: AtomicU8,
    since_ms: AtomicU64,
    in_flight: AtomicU64,
    /// Wakes the watchdog when a deadline may have moved earlier (busy -> idle, idle -> head).
    pub(super) changed: Notify,
}

impl Watch {
    pub(super) fn new() -> Watch {
        Watch {
            started: Instant::now(),
            phase: AtomicU8::new(HEAD),
            since_ms: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn enter(&self, phase: u8) {
        self.since_ms.store(self.now_ms(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
    }

    pub(super) fn bytes_read(&self) {
        if self.phase.load(Ordering::Acquire) == IDLE {
            self.enter(HEAD);
            self.changed.notify_one();
        }
    }

    pub(super) fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.enter(BUSY);
    }

    pub(super) fn request_ended(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.enter(IDLE);
            self.changed.notify_one();
        }
    }

    /// When the current phase runs out; `None` while busy.
    pub(super) fn deadline(&self, limits: &HttpLimits) -> Option<Instant> {
        let limit = match self.phase.load(Ordering::Acquire) {
            HEAD => limits.header,
            IDLE => limits.idle,
            _ => return None,
        };
        let since = Duration::from_millis(self.since_ms.load(Ordering::Relaxed));
        Some(self.started + since + limit)
    }
}
