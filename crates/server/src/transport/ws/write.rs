//! The socket loop's writes, each bounded in time so that a client that stops reading can
//! hold neither its task nor shutdown, and batched so that a queue leaves in one system call.

use std::pin::Pin;
use std::time::Duration;

use activenow_engine::outbox::CloseCause;
use activenow_engine::{Outbox, Outgoing};
use bytes::Bytes;
use tokio_util::sync::WaitForCancellationFuture;

use crate::close::Close;
use crate::transport::websocket::{Error, WebSocket};

/// Longest wait for a write outside the socket loop (a first frame, an error before the loop)
/// and for a close frame: a client that does not read cannot hold its task, nor shutdown.
pub const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Writes one text frame whose bytes are known to be UTF-8 JSON, within
/// [`CLOSE_WRITE_TIMEOUT`].
pub async fn send_frame(socket: &mut WebSocket, frame: Bytes) -> Result<(), Error> {
    send_frame_within(socket, frame, CLOSE_WRITE_TIMEOUT).await
}

pub(super) async fn send_frame_within(
    socket: &mut WebSocket,
    frame: Bytes,
    limit: Duration,
) -> Result<(), Error> {
    socket.queue_text(&frame)?;
    flush_within(socket, limit).await
}

/// Writes what is queued within `limit`. Without a wait when the kernel takes it all (the
/// usual case); only a socket that must wait pays for the timer and a boxed future, so the
/// socket task stays small (it is the size of the largest future it awaits, for life).
pub(super) async fn flush_within(socket: &mut WebSocket, limit: Duration) -> Result<(), Error> {
    if socket.write_now()? {
        return Ok(());
    }
    let wait = Box::pin(tokio::time::timeout(limit, socket.flush()));
    match wait.await {
        Ok(flushed) => flushed,
        Err(elapsed) => Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            elapsed,
        ))),
    }
}

/// Sends a close frame, giving up after [`CLOSE_WRITE_TIMEOUT`] (the caller then drops the
/// TCP stream).
pub async fn send_close(socket: &mut WebSocket, close: Close) {
    if socket.queue_close(close.code, close.reason).is_ok() {
        let _ = flush_within(socket, CLOSE_WRITE_TIMEOUT).await;
    }
}

/// Most frames written with one flush: a socket with a long queue still yields to the others.
const MAX_BATCH: usize = 64;

/// Queues `first` and whatever else is already in the outbox (at most [`MAX_BATCH`]
/// frames, and no more once `WS_WRITE_BUFFER_BYTES` are queued), to be written with one
/// system call: under load a socket's queued broadcasts leave in one write instead of one
/// each. The rest stays in the outbox for the next turn. Returns the close the engine asked
/// for, if any.
pub(super) fn queue_batch(
    socket: &mut WebSocket,
    outbox: &Outbox,
    first: Outgoing,
) -> Result<Option<CloseCause>, Error> {
    let mut next = Some(first);
    let mut queued = 0;
    let mut close = None;
    while let Some(out) = next.take() {
        match out {
            Outgoing::Frame(frame) => {
                // Rendered JSON: UTF-8 by construction, so no scan.
                socket.queue_text(&frame)?;
                queued += 1;
                if queued < MAX_BATCH && socket.wants_more() {
                    next = outbox.try_next();
                }
            }
            Outgoing::Close(cause) => close = Some(cause),
        }
    }
    Ok(close)
}

/// How a batch's write ended.
pub(super) enum Written {
    Done,
    Gone,
    TimedOut,
    Shutdown,
}

/// Writes the queued batch within `limit`; a write blocked on a client that does not read
/// still yields to shutdown. Waiting is the rare case, so only it is boxed.
pub(super) async fn write_batch(
    socket: &mut WebSocket,
    limit: Duration,
    shutdown: Pin<&mut WaitForCancellationFuture<'_>>,
) -> Written {
    match socket.write_now() {
        Ok(true) => return Written::Done,
        Ok(false) => {}
        Err(_) => return Written::Gone,
    }
    Box::pin(async move {
        tokio::select! {
            biased;
            _ = shutdown => Written::Shutdown,
            flushed = tokio::time::timeout(limit, socket.flush()) => match flushed {
                Ok(Ok(())) => Written::Done,
                Ok(Err(_)) => Written::Gone,
                Err(_) => Written::TimedOut,
            },
        }
    })
    .await
}
