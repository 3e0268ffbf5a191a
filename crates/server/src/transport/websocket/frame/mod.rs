//! RFC 6455 framing, server side: decoding client frames out of a byte buffer and encoding
//! server frames into one. No I/O and no allocation beyond the message it returns, so the
//! socket can read into a buffer shared by every socket of the thread and keep bytes of its
//! own only while a frame is incomplete.

use bytes::Bytes;

/// The client broke the protocol; the socket closes with the matching code (1002, 1007,
/// 1009).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    ReservedBits,
    Unmasked,
    UnknownOpcode,
    /// A fragmented control frame or one with more than 125 bytes.
    BadControlFrame,
    /// A continuation without a message, or a new message inside a fragmented one.
    BadFragmentation,
    /// A frame or message over the size limit.
    TooBig,
    /// A text message (or close reason) that is not UTF-8.
    InvalidUtf8,
    /// A close frame with one byte, or a code no endpoint may send.
    BadClose,
}

/// One complete message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Checked UTF-8.
    Text(Text),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    Close(Option<CloseFrame>),
}

/// A close frame's code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    pub code: u16,
    pub reason: Text,
}

/// Bytes known to be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(Bytes);

impl Text {
    pub fn as_str(&self) -> &str {
        // Only `Text::new` and `from_static` build one, and both check (or start from) a str.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn new(bytes: Bytes) -> Result<Text, Violation> {
        match std::str::from_utf8(&bytes) {
            Ok(_) => Ok(Text(bytes)),
            Err(_) => Err(Violation::InvalidUtf8),
        }
    }

    pub const fn from_static(s: &'static str) -> Text {
        Text(Bytes::from_static(s.as_bytes()))
    }
}

/// Sizes a client may not exceed.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_frame: usize,
    pub max_message: usize,
}

const FIN: u8 = 0x80;
const RSV: u8 = 0x70;
const MASK: u8 = 0x80;

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// A text or binary message whose first frames have arrived.
#[derive(Debug, Default)]
pub struct Fragments {
    /// The opcode of the first frame; `None` when no message is open.
    opcode: Option<u8>,
    payload: Vec<u8>,
}

/// Decodes the first complete frame at the front of `buf`, setting `*consumed` to its length,
/// and returns the message it completes, if any (a fragment completes none). `Ok(None)` with
/// `*consumed == 0`: the frame is not complete, more bytes are needed.
pub fn decode(
    buf: &[u8],
    fragments: &mut Fragments,
    limits: Limits,
    consumed: &mut usize,
) -> Result<Option<Message>, Violation> {
    *consumed = 0;
    let Some(header) = Header::parse(buf, limits)? else {
        return Ok(None);
    };
    let end = header.len + header.payload;
    if buf.len() < end {
        return Ok(None);
    }
    *consumed = end;
    let mut payload = buf[header.len..end].to_vec();
    unmask(&mut payload, header.mask);
    let fin = header.first & FIN != 0;
    match header.first & 0x0F {
        op @ (TEXT | BINARY) => {
            if fragments.opcode.is_some() {
                return Err(Violation::BadFragmentation);
            }
            if fin {
                return finish(op, payload);
            }
            fragments.opcode = Some(op);
            fragments.payload = payload;
            Ok(None)
        }
        CONTINUATION => {
            let Some(op) = fragments.opcode else {
                return Err(Violation::BadFragmentation);
            };
            if fragments.payload.len() + payload.len() > limits.max_message {
                return Err(Violation::TooBig);
            }
            fragments.payload.extend_from_slice(&payload);
            if !fin {
                return Ok(None);
            }
            fragments.opcode = None;
            finish(op, std::mem::take(&mut fragments.payload))
        }
        PING => Ok(Some(Message::Ping(payload.into()))),
        PONG => Ok(Some(Message::Pong(payload.into()))),
        CLOSE => close_frame(payload).map(|c| Some(Message::Close(c))),
        _ => Err(Violation::UnknownOpcode),
    }
}

fn finish(opcode: u8, payload: Vec<u8>) -> Result<Option<Message>, Violation> {
    Ok(Some(if opcode == TEXT {
        Message::Text(Text::new(payload.into())?)
    } else {
        Message::Binary(payload.into())
    }))
}

fn close_frame(payload: Vec<u8>) -> Result<Option<CloseFrame>, Violation> {
    match payload.len() {
        0 => return Ok(None),
        1 => return Err(Violation::BadClose),
        _ => {}
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    // RFC 6455 7.4: codes an endpoint may send (1004-1006 and 1015 are reserved).
    let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    if !valid {
        return Err(Violation::BadClose);
    }
    let reason = Text::new(Bytes::from(payload).slice(2..))?;
    Ok(Some(CloseFrame { code, reason }))
}

struct Header {
    first: u8,
    /// Bytes of the header, mask included.
    len: usize,
    payload: usize,
    mask: [u8; 4],
}

impl Header {
    /// `Ok(None)`: the header is not complete yet.
    fn parse(buf: &[u8], limits: Limits) -> Result<Option<Header>, Violation> {
        let (Some(&first), Some(&second)) = (buf.first(), buf.get(1)) else {
            return Ok(None);
        };
        // Checked as soon as the first two bytes are in: a bad frame is refused before its
        // payload is waited for.
        if first & RSV != 0 {
            return Err(Violation::ReservedBits);
        }
        let opcode = first & 0x0F;
        if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
            return Err(Violation::UnknownOpcode);
        }
        if second & MASK == 0 {
            return Err(Violation::Unmasked);
        }
        let short = (second & 0x7F) as usize;
        let control = opcode >= CLOSE;
        if control && (first & FIN == 0 || short > 125) {
            return Err(Violation::BadControlFrame);
        }
        let (payload, at) = match short {
            126 => match buf.get(2..4) {
                Some(b) => (u16::from_be_bytes([b[0], b[1]]) as u64, 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(b);
                    (u64::from_be_bytes(n), 10)
                }
                None => return Ok(None),
            },
            n => (n as u64, 2),
        };
        if payload > limits.max_frame.min(limits.max_message) as u64 {
            return Err(Violation::TooBig);
        }
        let Some(m) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        Ok(Some(Header {
            first,
            len: at + 4,
            payload: payload as usize,
            mask: [m[0], m[1], m[2], m[3]],
        }))
    }
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = payload.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

/// Appends one unmasked server frame.
pub fn encode(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    out.reserve(payload.len() + 10);
    out.push(FIN | opcode as u8);
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// Appends a close frame (the reason is cut to fit a control frame's 125 bytes).
pub fn encode_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let reason = crate::close::clip(reason, 120);
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    payload.truncate(125);
    encode(out, Opcode::Close, &payload);
}

#[derive(Debug, Clone, Copy)]
#[repr(u8)]
pub enum Opcode {
    Text = TEXT,
    Binary = BINARY,
    Close = CLOSE,
    Ping = PING,
    Pong = PONG,
}

#[cfg(test)]
mod tests;
