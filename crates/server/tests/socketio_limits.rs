//! Issue 12 (part A) on Socket.IO / Engine.IO: memory per connection is bounded and a client
//! that stops reading is dropped, through raw Engine.IO WebSockets (a real Socket.IO client
//! library always reads). The server runs in this process, so its memory is this process's
//! RSS; this file holds one RSS test only, so no other test allocates meanwhile.

mod common;

use common::raw::{client_frame, raw_ws, until_eof};
use common::{settings, spawn, WAIT};
use tokio::io::AsyncWriteExt;

const ENGINE_IO_WS: &str = "/socket.io/?EIO=4&transport=websocket";

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

#[tokio::test]
async fn pings_from_a_client_that_never_reads_do_not_grow_server_memory() {
    let mut s = settings();
    // The rate limit would close this flood early; the buffer bound is what is tested here.
    s.max_messages_per_second = 10_000_000;
    let server = spawn(s).await;
    let mut ws = raw_ws(server.addr, ENGINE_IO_WS).await;
    let ping = client_frame(0x89, &[b'p'; 125], true);
    let mut batch = Vec::with_capacity(ping.len() * 1000);
    for _ in 0..1000 {
        batch.extend_from_slice(&ping);
    }
    // 100 MB of pings: unbounded, the server would buffer ~98 MB of pongs.
    let mut before = None;
    for round in 0..800 {
        tokio::time::timeout(WAIT, ws.write_all(&batch))
            .await
            .expect("the server keeps reading")
            .expect("write");
        // Measured once the kernel buffers of both sides are full.
        if round == 100 {
            before = Some(rss_bytes());
        }
    }
    let grown = rss_bytes().saturating_sub(before.expect("measured"));
    assert!(
        grown < 24 * 1024 * 1024,
        "server memory grew by {} MiB",
        grown / (1024 * 1024)
    );
    drop(ws);
    server.stop().await;
}

#[tokio::test]
async fn a_ping_flood_closes_the_engine_io_session() {
    let server = spawn(settings()).await;
    let mut ws = raw_ws(server.addr, ENGINE_IO_WS).await;
    let ping = client_frame(0x89, b"p", true);
    for _ in 0..500 {
        if ws.write_all(&ping).await.is_err() {
            break;
        }
    }
    until_eof(&mut ws).await;
    server.stop().await;
}
