//! The accepted socket as hyper and the upgraded WebSocket see it: reads tell the watchdog
//! a request has begun, and the per-IP places live here so they are released when the
//! socket closes, upgraded or not.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::watch::Watch;
use crate::transport::per_ip::IpSlot;

/// The accepted socket, with the watchdog's view of its reads and the per-IP places it
/// holds: its own (direct clients) or, behind a trusted proxy, the forwarded client's of the
/// WebSocket it carries. Both are released when the socket closes, upgraded or not.
pub(crate) struct Stream {
    pub(super) tcp: TcpStream,
    /// `None` once a WebSocket took the stream over (it has no watchdog).
    pub(super) watch: Option<Arc<Watch>>,
    pub(super) _slot: Option<IpSlot>,
    /// Only on connections from a trusted proxy when connections per IP are limited: a
    /// direct client's socket does not pay for it.
    pub(super) forwarded: Option<Forwarded>,
}

/// The forwarded client's place, shared by the connection and the requests it serves.
pub(super) type Forwarded = Arc<Mutex<Option<IpSlot>>>;

impl Stream {
    /// The socket itself, for the WebSocket that takes the stream over after the upgrade.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Called by the WebSocket that takes the stream over: the watchdog's state (freed with
    /// the HTTP connection task) is not kept for the socket's life.
    pub(crate) fn leave_watchdog(&mut self) {
        self.watch = None;
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            if let Some(watch) = &self.watch {
                watch.bytes_read();
            }
        }
        r
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}
