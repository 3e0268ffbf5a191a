//! The per-connection send queue.
//!
//! Frames arrive already encoded (`Bytes` shared by every receiver of a broadcast) and wait
//! here until the connection's task writes them.
//!
//! The slow-consumer policy is time-based, so that a burst does not close a healthy reader:
//! a queue may grow past its `capacity` (a burst of joins and leaves is thousands of events
//! at once), and the connection becomes a slow consumer only when its queue has stayed at or
//! above `capacity` for `timeout` (the reader is not keeping up), or at once when it reaches
//! `max` (a hard bound on memory). A slow consumer's queue is dropped and its task told to
//! close the socket. Memory per connection therefore never grows past `max` frame handles
//! (the frame bytes themselves are shared by every receiver).
//!
//! Room counts do not queue: a count waits in a single slot that each newer count replaces,
//! so a burst of changes coalesces to the latest value and a count equal to the last one
//! written is never sent again ("only on change").

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Why the engine wants a socket closed; the protocol adapter maps it to a close code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCause {
    /// The queue stayed full for the slow-consumer timeout, or reached its hard bound: the
    /// client reads slower than events arrive.
    SlowConsumer,
    /// Kicked by the server (session finished, logged out, ...) after the queued frames.
    Finished,
    /// Disconnected by the back end (`DELETE /v1/users/{identity}`), after the queued frames.
    Kicked,
}

/// What the connection task should do next.
#[derive(Debug, PartialEq)]
pub enum Outgoing {
    Frame(Bytes),
    Close(CloseCause),
}

#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    // A std mutex: pushes hold it for a deque operation, never across an await.
    state: Mutex<State>,
    notify: Notify,
    limits: OutboxLimits,
}

/// When a connection's queue makes it a slow consumer.
#[derive(Clone, Copy, Debug)]
pub struct OutboxLimits {
    /// Frames waiting at which the slow-consumer clock starts.
    pub capacity: usize,
    /// Frames waiting at which the connection is a slow consumer at once.
    pub max: usize,
    /// How long the queue may stay at or above `capacity`.
    pub timeout: Duration,
}

impl OutboxLimits {
    /// `capacity`, a hard bound of 16 times it, and a 5 s timeout.
    pub fn new(capacity: usize) -> OutboxLimits {
        OutboxLimits {
            capacity,
            max: capacity.saturating_mul(16),
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    /// The newest count not yet written: (room version, count, encoded frame).
    count: Option<(u64, u64, Bytes)>,
    /// Version and count of the last count the client was told (by `hello` or a sync).
    told: (u64, u64),
    closing: Option<CloseCause>,
    /// Since when the queue holds at least `capacity` frames.
    full_since: Option<Instant>,
}

/// The queue stayed full too long (or reached its bound); the connection is now closing as a
/// slow consumer.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

impl Outbox {
    pub fn new(capacity: usize) -> Outbox {
        Outbox::with_limits(OutboxLimits::new(capacity))
    }

    pub fn with_limits(limits: OutboxLimits) -> Outbox {
        let capacity = limits.capacity.max(1);
        Outbox {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                notify: Notify::new(),
                limits: OutboxLimits {
                    capacity,
                    max: limits.max.max(capacity),
                    timeout: limits.timeout,
                },
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame. When the queue has been full for the timeout, or reaches its bound,
    /// it is dropped instead and the connection starts closing.
    pub fn push(&self, frame: Bytes) -> Result<(), Overflow> {
        let mut state = self.state();
        if state.closing.is_some() {
            return Ok(());
        }
        let limits = &self.inner.limits;
        let len = state.frames.len();
        let overflow = if len >= limits.max {
            true
        } else if len + 1 >= limits.capacity {
            let now = Instant::now();
            let since = *state.full_since.get_or_insert(now);
            now.duration_since(since) >= limits.timeout
        } else {
            false
        };
        if overflow {
            state.frames = VecDeque::new();
            state.count = None;
            state.closing = Some(CloseCause::SlowConsumer);
            drop(state);
            self.inner.notify.notify_one();
            return Err(Overflow);
        }
        state.frames.push_back(frame);
        drop(state);
        self.inner.notify.notify_one();
        Ok(())
    }

    /// Records the count the client was just told directly (in `hello`): older counts are
    /// ignored from now on and an equal one is not repeated.
    pub fn told_count(&self, version: u64, count: u64) {
        let mut state = self.state();
        if version >= state.told.0 {
            state.told = (version, count);
        }
        if matches!(state.count, Some((v, _, _)) if v <= version) {
            state.count = None;
        }
    }

    /// Offers the room's count as of `version`; keeps it only if newer than what is known.
    pub fn offer_count(&self, version: u64, count: u64, frame: Bytes) {
        let mut state = self.state();
        if version <= state.told.0 || matches!(state.count, Some((v, _, _)) if v >= version) {
            return;
        }
        if count == state.told.1 {
            // The client already shows this count: nothing to write, no wake-up (most room
            // events, updates and second tabs, leave the count as it was).
            state.told = (version, count);
            state.count = None;
            return;
        }
        state.count = Some((version, count, frame));
        drop(state);
        self.inner.notify.notify_one();
    }

    /// Closes the connection after the frames already queued.
    pub fn finish(&self) {
        let mut state = self.state();
        if state.closing.is_none() {
            state.closing = Some(CloseCause::Finished);
        }
        drop(state);
        self.inner.notify.notify_one();
    }

    /// Closes the connection after the frames already queued, as kicked by the back end.
    pub fn kick(&self) {
        let mut state = self.state();
        if state.closing.is_none() {
            state.closing = Some(CloseCause::Kicked);
        }
        drop(state);
        self.inner.notify.notify_one();
    }

    /// Why the connection is closing, if it is.
    pub fn close_cause(&self) -> Option<CloseCause> {
        self.state().closing
    }

    /// Frames waiting; for tests and metrics.
    pub fn len(&self) -> usize {
        self.state().frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits for the next thing to write. Only one task may wait on an outbox.
    pub async fn next(&self) -> Outgoing {
        loop {
            if let Some(out) = self.try_next() {
                return out;
            }
            self.inner.notify.notified().await;
        }
    }

    /// What is ready to write now, without waiting: lets a socket task write every queued
    /// frame with one flush. Only the task that calls [`Outbox::next`] may call it.
    pub fn try_next(&self) -> Option<Outgoing> {
        let mut state = self.state();
        if state.closing == Some(CloseCause::SlowConsumer) {
            return Some(Outgoing::Close(CloseCause::SlowConsumer));
        }
        if let Some(frame) = state.frames.pop_front() {
            if state.frames.len() < self.inner.limits.capacity {
                state.full_since = None;
            }
            // An idle socket keeps no queue memory for the rest of its life (frames are
            // 32-byte handles: the 4 to 8 slots a few events leave cost 128-256 bytes on
            // every idle socket). A drained queue is given back; the next frame allocates
            // it again: one allocation per batch the socket writes, beside a syscall.
            if state.frames.is_empty() && state.frames.capacity() > 0 {
                state.frames = VecDeque::new();
            }
            return Some(Outgoing::Frame(frame));
        }
        while let Some((version, count, frame)) = state.count.take() {
            let changed = count != state.told.1;
            state.told = (version, count);
            if changed {
                return Some(Outgoing::Frame(frame));
            }
        }
        state.closing.map(Outgoing::Close)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[tokio::test]
    async fn frames_in_order_then_counts_coalesced() {
        let out = Outbox::new(8);
        out.told_count(1, 1);
        out.push(frame("a")).unwrap();
        out.offer_count(2, 2, frame("c2"));
        out.offer_count(4, 4, frame("c4"));
        out.offer_count(3, 3, frame("c3")); // older than what waits: ignored
        out.push(frame("b")).unwrap();
        assert_eq!(out.next().await, Outgoing::Frame(frame("a")));
        assert_eq!(out.next().await, Outgoing::Frame(frame("b")));
        assert_eq!(out.next().await, Outgoing::Frame(frame("c4")));
        assert!(out.try_next().is_none());
    }

    #[tokio::test]
    async fn count_equal_to_last_told_is_not_sent() {
        let out = Outbox::new(8);
        out.told_count(5, 2);
        out.offer_count(4, 9, frame("old"));
        out.offer_count(6, 2, frame("same"));
        assert!(out.try_next().is_none());
        out.offer_count(7, 3, frame("three"));
        assert_eq!(out.next().await, Outgoing::Frame(frame("three")));
    }

    fn limits(capacity: usize, max: usize, timeout_ms: u64) -> OutboxLimits {
        OutboxLimits {
            capacity,
            max,
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_past_capacity_is_kept_while_the_reader_keeps_up() {
        let out = Outbox::with_limits(limits(2, 100, 1000));
        for _ in 0..50 {
            out.push(frame("x")).unwrap();
        }
        tokio::time::advance(Duration::from_millis(900)).await;
        out.push(frame("x")).unwrap();
        // The reader drains below capacity: the clock starts over.
        while out.len() > 1 {
            out.try_next();
        }
        tokio::time::advance(Duration::from_millis(900)).await;
        for _ in 0..10 {
            out.push(frame("x")).unwrap();
        }
        assert_eq!(out.len(), 11);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_full_for_the_timeout_closes_as_slow_consumer() {
        let out = Outbox::with_limits(limits(2, 100, 1000));
        out.push(frame("1")).unwrap();
        out.push(frame("2")).unwrap();
        tokio::time::advance(Duration::from_millis(1000)).await;
        assert_eq!(out.push(frame("3")), Err(Overflow));
        assert_eq!(out.len(), 0);
        assert_eq!(out.next().await, Outgoing::Close(CloseCause::SlowConsumer));
    }

    #[tokio::test]
    async fn overflow_closes_as_slow_consumer_and_frees_the_queue() {
        let out = Outbox::with_limits(limits(2, 3, 60_000));
        out.push(frame("1")).unwrap();
        out.push(frame("2")).unwrap();
        out.push(frame("3")).unwrap();
        assert_eq!(out.push(frame("4")), Err(Overflow));
        assert_eq!(out.len(), 0);
        assert_eq!(out.next().await, Outgoing::Close(CloseCause::SlowConsumer));
        // Further pushes are ignored, the queue stays empty.
        out.push(frame("5")).unwrap();
        assert_eq!(out.len(), 0);
    }

    #[tokio::test]
    async fn finish_flushes_first() {
        let out = Outbox::new(4);
        out.push(frame("last words")).unwrap();
        out.finish();
        assert_eq!(out.next().await, Outgoing::Frame(frame("last words")));
        assert_eq!(out.next().await, Outgoing::Close(CloseCause::Finished));
    }
}
