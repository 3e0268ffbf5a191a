//! ActiveNow patch: a bounded, time-limited overflow behind a session's internal channel.
//!
//! Upstream, a packet sent while the channel (`max_buffer_size`) is full is refused, and
//! socketioxide drops it: a burst of broadcasts silently loses events for a client that
//! reads, only not fast enough for the burst. With [`OverflowLimits`] in the handshake
//! request's extensions, such packets wait in the session's overflow instead, in order, and
//! move into the channel as it drains. The session is closed (a slow consumer) when its
//! overflow stayed non-empty for `timeout` or reached `max_packets`: every packet is either
//! delivered or the session closed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use engineioxide_core::PacketBuf;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

/// The overflow of one session, read by [`crate::Socket`] from the handshake request's
/// extensions (absent: the upstream behaviour).
#[derive(Clone)]
pub struct OverflowLimits {
    /// Packets that may wait beyond the channel; reaching it closes the session at once.
    pub max_packets: usize,
    /// How long the overflow may stay non-empty.
    pub timeout: Duration,
    /// Called once when the session is closed as a slow consumer (a metric).
    pub on_slow: Arc<dyn Fn() + Send + Sync>,
}

struct State {
    queue: VecDeque<PacketBuf>,
    /// When the queue last became non-empty.
    since: Option<Instant>,
    /// Reached `max_packets`: the session is being closed.
    over: bool,
}

pub(crate) struct Overflow {
    limits: OverflowLimits,
    state: Mutex<State>,
    wake: Notify,
}

/// What the flusher must do next.
pub(crate) enum Next {
    /// Nothing is waiting: sleep until woken.
    Idle,
    /// Move the front packet into the channel before this instant.
    Flush(Instant),
    /// Close the session as a slow consumer.
    Close,
}

impl Overflow {
    pub(crate) fn new(limits: OverflowLimits) -> Overflow {
        Overflow {
            limits,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                since: None,
                over: false,
            }),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one packet: a channel permit when nothing waits before it, `None` for a
    /// place in the overflow, `Full` when the session is over its bound.
    pub(crate) fn reserve<'a>(
        &self,
        tx: &'a mpsc::Sender<crate::socket::Queued>,
    ) -> Result<Option<mpsc::Permit<'a, crate::socket::Queued>>, mpsc::error::TrySendError<()>> {
        let mut state = self.lock();
        if state.over {
            return Err(mpsc::error::TrySendError::Full(()));
        }
        if state.queue.is_empty() {
            match tx.try_reserve() {
                Ok(permit) => return Ok(Some(permit)),
                Err(mpsc::error::TrySendError::Closed(())) => {
                    return Err(mpsc::error::TrySendError::Closed(()));
                }
                Err(mpsc::error::TrySendError::Full(())) => {}
            }
        }
        if state.queue.len() >= self.limits.max_packets {
            state.over = true;
            self.wake.notify_one();
            return Err(mpsc::error::TrySendError::Full(()));
        }
        Ok(None)
    }

    pub(crate) fn push(&self, packets: PacketBuf) {
        let mut state = self.lock();
        if state.queue.is_empty() {
            state.since = Some(Instant::now());
            self.wake.notify_one();
        }
        state.queue.push_back(packets);
    }

    pub(crate) fn next(&self) -> Next {
        let state = self.lock();
        match (state.over, state.since) {
            (true, _) => Next::Close,
            (false, None) => Next::Idle,
            (false, Some(since)) => Next::Flush(since + self.limits.timeout),
        }
    }

    /// Moves the front packet into the channel through `permit` (under the lock, so that a
    /// packet sent meanwhile cannot overtake it).
    pub(crate) fn flush_one(&self, permit: mpsc::Permit<'_, crate::socket::Queued>) {
        let mut state = self.lock();
        if let Some(packets) = state.queue.pop_front() {
            permit.send(Box::new(packets));
        }
        if state.queue.is_empty() {
            state.since = None;
        }
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await
    }

    pub(crate) fn slow(&self) {
        let mut state = self.lock();
        state.queue.clear();
        state.over = true;
        drop(state);
        (self.limits.on_slow)();
    }
}
