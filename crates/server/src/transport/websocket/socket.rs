//! One server-side WebSocket over the accepted TCP stream, with buffers that exist only while
//! they hold bytes, as uWebSockets does: reads go through a buffer shared by the sockets of
//! a worker thread, and a socket keeps bytes of its own only for an incomplete frame or for
//! output the kernel did not take. An idle socket owns no buffer at all (a library socket
//! keeps a read buffer, resident and zero-filled, for its whole life).
//!
//! Every method is cancellation-safe: state lives in the socket, never across an `.await`
//! in a future, so the socket loop may drop a `recv` or `flush` in a `select!`.

use std::cell::RefCell;
use std::io;

use bytes::Bytes;

use super::frame::{self, Fragments, Limits, Message, Opcode, Violation};
use crate::transport::serve::Stream;

/// Why a socket ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("socket I/O: {0}")]
    Io(#[from] io::Error),
    #[error("protocol violation: {0:?}")]
    Protocol(Violation),
    /// Output beyond `max_write_buffer` waits for a client that does not read.
    #[error("write buffer full")]
    WriteBufferFull,
}

/// Buffer sizes and limits of one socket.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Most bytes taken from the kernel by one read (the thread's shared buffer).
    pub read_chunk: usize,
    /// Output queued by `feed` beyond this is written before more is queued.
    pub write_buffer: usize,
    /// Output waiting for the client beyond this ends the socket.
    pub max_write_buffer: usize,
    pub limits: Limits,
}

thread_local! {
    /// The read buffer of every socket this worker thread polls.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

pub struct WebSocket {
    stream: Stream,
    config: Config,
    /// Received bytes not decoded yet (an incomplete frame, or frames after the one
    /// returned), from `in_pos`. Empty, with no allocation, between messages.
    input: Vec<u8>,
    in_pos: usize,
    /// Encoded frames the kernel has not taken yet, from `out_pos`.
    output: Vec<u8>,
    out_pos: usize,
    fragments: Fragments,
    /// The client's close arrived (and was answered) or the stream ended.
    closed: bool,
}

impl WebSocket {
    pub(super) fn new(mut stream: Stream, early: Bytes, config: Config) -> WebSocket {
        stream.leave_watchdog();
        WebSocket {
            stream,
            config,
            input: early.to_vec(),
            in_pos: 0,
            output: Vec::new(),
            out_pos: 0,
            fragments: Fragments::default(),
            closed: false,
        }
    }

    /// The next message; `None` once the client closed or the stream ended. Pings are
    /// answered here (and still returned, so the caller can count them); a close is answered
    /// with the same code.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        if self.closed {
            return None;
        }
        loop {
            match self.decode_buffered() {
                Err(v) => return Some(Err(Error::Protocol(v))),
                Ok(Some(message)) => return Some(self.answer(message)),
                Ok(None) => {}
            }
            if let Err(e) = self.wait_readable().await {
                return Some(Err(e));
            }
            match self.read_available() {
                Ok(0) => {
                    self.closed = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Some(Err(Error::Io(e))),
            }
        }
    }

    /// Queues a message; written by [`flush`](Self::flush) or once the queue passes
    /// `write_buffer`.
    pub async fn feed(&mut self, message: Message) -> Result<(), Error> {
        match message {
            Message::Text(t) => self.queue(Opcode::Text, t.as_str().as_bytes())?,
            Message::Binary(b) => self.queue(Opcode::Binary, &b)?,
            Message::Ping(p) => self.queue(Opcode::Ping, &p[..p.len().min(125)])?,
            Message::Pong(p) => self.queue(Opcode::Pong, &p[..p.len().min(125)])?,
            Message::Close(c) => {
                let (code, reason) = c
                    .as_ref()
                    .map_or((1000, ""), |c| (c.code, c.reason.as_str()));
                self.queue_close(code, reason)?;
            }
        }
        if self.output.len() - self.out_pos >= self.config.write_buffer {
            self.flush().await?;
        }
        Ok(())
    }

    /// Queues one text frame of bytes the caller knows to be UTF-8 (rendered JSON).
    pub async fn feed_text(&mut self, text: &[u8]) -> Result<(), Error> {
        self.queue(Opcode::Text, text)?;
        if self.output.len() - self.out_pos >= self.config.write_buffer {
            self.flush().await?;
        }
        Ok(())
    }

    /// Queues one text frame without writing (see [`write_now`](Self::write_now)).
    pub fn queue_text(&mut self, text: &[u8]) -> Result<(), Error> {
        self.queue(Opcode::Text, text)
    }

    /// Queues a ping with no payload.
    pub fn queue_ping(&mut self) -> Result<(), Error> {
        self.queue(Opcode::Ping, &[])
    }

    /// Queues a close frame.
    pub fn queue_close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        self.reserve_output(reason.len() + 4)?;
        frame::encode_close(&mut self.output, code, reason);
        Ok(())
    }

    /// Bytes queued and not yet taken by the kernel.
    pub fn pending_output(&self) -> usize {
        self.output.len() - self.out_pos
    }

    /// Whether more frames may be queued before a write (`WS_WRITE_BUFFER_BYTES`).
    pub fn wants_more(&self) -> bool {
        self.pending_output() < self.config.write_buffer
    }

    /// Writes what the kernel takes now, without waiting; `Ok(true)` when nothing is left.
    /// The socket loop's common case: a write needs neither a timer nor a wait.
    pub fn write_now(&mut self) -> Result<bool, Error> {
        self.write_available()?;
        Ok(self.out_pos == self.output.len())
    }

    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Writes everything queued; the output buffer is freed once the kernel has it all.
    pub async fn flush(&mut self) -> Result<(), Error> {
        while self.out_pos < self.output.len() {
            let tcp = self.stream.tcp();
            std::future::poll_fn(|cx| tcp.poll_write_ready(cx)).await?;
            self.write_available()?;
        }
        Ok(())
    }

    fn queue(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), Error> {
        self.reserve_output(payload.len() + 10)?;
        frame::encode(&mut self.output, opcode, payload);
        Ok(())
    }

    fn reserve_output(&mut self, more: usize) -> Result<(), Error> {
        // One frame always fits an empty buffer, however large (a big room's snapshot):
        // the bound is on output that waits behind a client that does not read.
        let pending = self.output.len() - self.out_pos;
        if pending > 0 && pending + more > self.config.max_write_buffer {
            return Err(Error::WriteBufferFull);
        }
        if self.out_pos > 0 && self.out_pos == self.output.len() {
            self.output.clear();
            self.out_pos = 0;
        }
        Ok(())
    }

    /// Writes what the kernel takes now without waiting.
    fn write_available(&mut self) -> Result<(), Error> {
        while self.out_pos < self.output.len() {
            match self.stream.tcp().try_write(&self.output[self.out_pos..]) {
                Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(Error::Io(e)),
            }
        }
        self.output = Vec::new();
        self.out_pos = 0;
        Ok(())
    }

    /// Waits until the client sent something; meanwhile writes pending output (a pong, a
    /// close answer) whenever the kernel takes it.
    ///
    /// Readiness is polled through the stream's single reader and writer slots
    /// (`poll_read_ready`), not `readable()`'s waiter list: the slot still holds the waker
    /// of the HTTP connection task that read the handshake, and that waker keeps the
    /// finished task's memory (1.5 KiB) allocated until something replaces it.
    async fn wait_readable(&mut self) -> Result<(), Error> {
        loop {
            let tcp = self.stream.tcp();
            let pending_output = self.out_pos < self.output.len();
            let readable = std::future::poll_fn(|cx| {
                if let std::task::Poll::Ready(r) = tcp.poll_read_ready(cx) {
                    return std::task::Poll::Ready(r.map(|()| true));
                }
                if pending_output {
                    if let std::task::Poll::Ready(r) = tcp.poll_write_ready(cx) {
                        return std::task::Poll::Ready(r.map(|()| false));
                    }
                }
                std::task::Poll::Pending
            })
            .await?;
            if readable {
                return Ok(());
            }
            self.write_available()?;
        }
    }

    /// Reads what the kernel holds (at most `read_chunk`) into `input`.
    fn read_available(&mut self) -> io::Result<usize> {
        let chunk = self.config.read_chunk.max(256);
        let tcp = self.stream.tcp();
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            if scratch.len() < chunk {
                scratch.resize(chunk, 0);
            }
            let n = tcp.try_read(&mut scratch[..chunk])?;
            if self.in_pos > 0 {
                self.input.drain(..self.in_pos);
                self.in_pos = 0;
            }
            self.input.extend_from_slice(&scratch[..n]);
            Ok(n)
        })
    }

    /// The next message in `input`, skipping fragments of an unfinished one.
    fn decode_buffered(&mut self) -> Result<Option<Message>, Violation> {
        loop {
            let mut consumed = 0;
            let message = frame::decode(
                &self.input[self.in_pos..],
                &mut self.fragments,
                self.config.limits,
                &mut consumed,
            )?;
            self.in_pos += consumed;
            if self.in_pos == self.input.len() {
                // Nothing left: give the memory back (a fragment's bytes live in `fragments`).
                self.input = Vec::new();
                self.in_pos = 0;
            }
            if message.is_some() || consumed == 0 {
                return Ok(message);
            }
        }
    }

    /// Answers pings and closes as RFC 6455 asks, writing the answer if the kernel takes it
    /// now (the caller may drop the socket right after a close).
    fn answer(&mut self, message: Message) -> Result<Message, Error> {
        match &message {
            Message::Ping(p) => {
                self.queue(Opcode::Pong, p)?;
                self.write_available()?;
            }
            Message::Close(c) => {
                self.closed = true;
                let code = c.as_ref().map_or(1000, |c| c.code);
                self.reserve_output(4)?;
                frame::encode_close(&mut self.output, code, "");
                self.write_available()?;
            }
            _ => {}
        }
        Ok(message)
    }
}
