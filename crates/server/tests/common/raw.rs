//! Raw WebSocket clients over a TcpStream, for attacks a real client library will not make:
//! crafted frames, and a client that never reads (a tiny SO_RCVBUF).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::WAIT;

/// A WebSocket opened by hand on a socket with a tiny receive buffer. The response headers
/// are read; whatever follows is left in the kernel.
pub async fn raw_ws(addr: SocketAddr, path: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(1024).expect("SO_RCVBUF");
    let mut stream = socket.connect(addr).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, stream.read(&mut byte))
            .await
            .expect("response in time")
            .expect("read");
        assert_eq!(n, 1, "closed during the handshake");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// A client frame: `first` is FIN/RSV/opcode, masked unless `mask` is false.
pub fn client_frame(first: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    assert!(payload.len() < 126);
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut f = vec![first, payload.len() as u8 | if mask { 0x80 } else { 0 }];
    if mask {
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// Reads server frames until a close frame and returns its code and reason; `None` when the
/// stream ends without one.
pub async fn close_frame(stream: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    loop {
        // Parse the frames received so far.
        let mut at = 0;
        while buf.len() >= at + 2 {
            let opcode = buf[at] & 0x0f;
            let (len, head) = match buf[at + 1] & 0x7f {
                126 if buf.len() >= at + 4 => {
                    (u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize, 4)
                }
                126 => break,
                127 => panic!("no test frame is that big"),
                n => (n as usize, 2),
            };
            if buf.len() < at + head + len {
                break;
            }
            let payload = &buf[at + head..at + head + len];
            if opcode == 0x8 {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return Some((code, String::from_utf8_lossy(&payload[2..]).into_owned()));
            }
            at += head + len;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("a frame or the end in time")
            .unwrap_or(0);
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads (and discards) until the server ends the TCP stream; panics if it stays open.
pub async fn until_eof(stream: &mut TcpStream) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server kept the TCP connection open"),
        }
    }
}

pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}
