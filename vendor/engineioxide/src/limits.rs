//! ActiveNow patch: process-wide limits of the WebSocket transport that socketioxide's
//! builder has no method for. Set once at start-up by the server (one Socket.IO server per
//! process); unset, the upstream behaviour is kept.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

static WS_WRITE_TIMEOUT_MS: AtomicU64 = AtomicU64::new(0);
static WS_CONTROL_FRAMES_PER_SECOND: AtomicU32 = AtomicU32::new(0);

/// A WebSocket write (a packet, a flush) that makes no progress for `timeout` closes the
/// session: a client that stops reading cannot hold its task and TCP stream.
pub fn set_ws_write_timeout(timeout: Duration) {
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1);
    WS_WRITE_TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

/// WebSocket ping and pong frames one client may send per second (bursts of twice as
/// many); more close the session. The library answers every ping, so a flood cannot be
/// dropped, only stopped.
pub fn set_ws_control_rate(per_second: u32) {
    WS_CONTROL_FRAMES_PER_SECOND.store(per_second, Ordering::Relaxed);
}

pub(crate) fn ws_write_timeout() -> Option<Duration> {
    match WS_WRITE_TIMEOUT_MS.load(Ordering::Relaxed) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

/// Counts one client's control frames in one-second windows.
pub(crate) struct ControlRate {
    window: tokio::time::Instant,
    seen: u32,
}

impl ControlRate {
    pub(crate) fn new() -> ControlRate {
        ControlRate {
            window: tokio::time::Instant::now(),
            seen: 0,
        }
    }

    /// False once the client sent more than twice the rate within one second.
    pub(crate) fn allow(&mut self) -> bool {
        let rate = WS_CONTROL_FRAMES_PER_SECOND.load(Ordering::Relaxed);
        if rate == 0 {
            return true;
        }
        let now = tokio::time::Instant::now();
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.seen = 0;
        }
        self.seen += 1;
        self.seen <= rate.saturating_mul(2)
    }
}
