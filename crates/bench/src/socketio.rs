//! `activenow-bench socketio`: seed 1's load test (realtime-mesage's
//! `benchmark:presence`), spoken by this generator over Engine.IO v4 / Socket.IO v5
//! WebSocket frames, so the generator is no longer the bottleneck and the same run can
//! target any Socket.IO presence server: ActiveNow on either backend, or seed 1's own Node
//! server.
//!
//! `clients` sockets over `rooms` rooms; each joins (`presence:join`, ack timed), then sends
//! `presence:heartbeat {connId, epoch, patchState}` at `hb_rate` per second (ack timed) and
//! counts the `presence:event`s it receives. Figures cover the measured window after the
//! warm-up: heartbeats sent and acked per second, ack latency p50/p99, events per second.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{self, Sources};
use crate::report::percentile_ms;

#[derive(Args, Clone, Debug)]
pub struct SocketIoArgs {
    /// The server, e.g. http://127.0.0.1:8080 (ActiveNow, or seed 1's Node server).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Socket.IO clients [default: 1000].
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Rooms the clients are spread over (users per room = clients / rooms; seed 1's load
    /// test has 2 per room) [default: 500].
    #[arg(long, default_value_t = 500)]
    pub rooms: usize,
    /// Heartbeats per second per client, each with a state patch [default: 10].
    #[arg(long, default_value_t = 10)]
    pub hb_rate: u32,
    /// Seconds measured, after the warm-up [default: 20].
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds of load before measuring [default: 3].
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Connection attempts in flight while connecting [default: 100].
    #[arg(long, default_value_t = 100)]
    pub connect_concurrency: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// What every client adds to.
#[derive(Default)]
struct Totals {
    connected: AtomicU64,
    failed: AtomicU64,
    hb_sent: AtomicU64,
    hb_ok: AtomicU64,
    hb_refused: AtomicU64,
    events: AtomicU64,
    /// Set during the measured window.
    measuring: AtomicBool,
    join_us: Mutex<Vec<u32>>,
    hb_us: Mutex<Vec<u32>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn micros(since: Instant) -> u32 {
    since.elapsed().as_micros().min(u128::from(u32::MAX)) as u32
}

/// A Socket.IO event packet `42<id>[name, data]`.
fn event_packet(id: u64, name: &str, data: &Value) -> String {
    format!("42{id}{}", json!([name, data]))
}

/// `43<id>[...]` -> (id, first argument).
fn parse_ack(text: &str) -> Option<(u64, Value)> {
    let rest = text.strip_prefix("43")?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    let id = rest[..digits].parse().ok()?;
    let args: Value = serde_json::from_str(&rest[digits..]).ok()?;
    Some((id, args.get(0).cloned().unwrap_or(Value::Null)))
}

fn server_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let host = url
        .trim_start_matches("http://")
        .trim_start_matches("ws://")
        .trim_end_matches('/');
    let host = host.split('/').next().unwrap_or(host);
    use std::net::ToSocketAddrs;
    host.to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {host}"))
}

pub async fn main(args: SocketIoArgs) -> anyhow::Result<()> {
    conn::raise_fd_limit();
    let server = server_addr(&args.url)?;
    let totals = Arc::new(Totals::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let sources = Sources::for_worker(0, 10_000);
    let gate = Arc::new(tokio::sync::Semaphore::new(args.connect_concurrency.max(1)));
    let period = Duration::from_secs_f64(1.0 / f64::from(args.hb_rate.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.clients);
    for n in 0..args.clients {
        let (totals, stop, gate) = (totals.clone(), stop.clone(), gate.clone());
        let room = format!("bench-room-{}", n % args.rooms.max(1));
        let source = sources.addr(n);
        // Spread the heartbeats of all clients evenly over one period.
        let offset = period.mul_f64(n as f64 / args.clients.max(1) as f64);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = client(
                server, source, n, room, period, offset, &totals, &gate, stop,
            )
            .await
            {
                totals.failed.fetch_add(1, Ordering::Relaxed);
                tracing_less_log(n, &e);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let connected_at_start = totals.connected.load(Ordering::Relaxed);
    let base = snapshot(&totals);
    totals.measuring.store(true, Ordering::Relaxed);
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    totals.measuring.store(false, Ordering::Relaxed);
    let secs = window.elapsed().as_secs_f64();
    let end = snapshot(&totals);
    stop.cancel();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let mut join = lock(&totals.join_us).clone();
    let mut hb = lock(&totals.hb_us).clone();
    join.sort_unstable();
    hb.sort_unstable();
    let rate = |i: usize| (end[i] - base[i]) as f64 / secs;
    let figures = json!({
        "url": args.url,
        "clients": args.clients,
        "rooms": args.rooms,
        "hb_rate_per_client": args.hb_rate,
        "connected": connected_at_start,
        "failed": totals.failed.load(Ordering::Relaxed),
        "hb_sent_per_s": rate(0),
        "hb_acked_ok_per_s": rate(1),
        "hb_refused_per_s": rate(2),
        "events_per_s": rate(3),
        "hb_ack_p50_ms": percentile_ms(&hb, 0.50),
        "hb_ack_p99_ms": percentile_ms(&hb, 0.99),
        "join_ack_p50_ms": percentile_ms(&join, 0.50),
        "join_ack_p99_ms": percentile_ms(&join, 0.99),
        "seconds": secs,
        "setup_seconds": window.duration_since(started).as_secs_f64(),
    });
    println!(
        "socketio {} clients x {} hb/s over {} rooms against {}\n  connected {} (failed {})\n  heartbeats sent {:.0}/s, acked ok {:.0}/s, refused {:.0}/s\n  heartbeat ack p50 {:.2} ms, p99 {:.2} ms\n  join ack p50 {:.2} ms, p99 {:.2} ms\n  presence:event received {:.0}/s",
        args.clients,
        args.hb_rate,
        args.rooms,
        args.url,
        connected_at_start,
        figures["failed"],
        rate(0),
        rate(1),
        rate(2),
        percentile_ms(&hb, 0.50),
        percentile_ms(&hb, 0.99),
        percentile_ms(&join, 0.50),
        percentile_ms(&join, 0.99),
        rate(3),
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&figures)?)?;
    }
    Ok(())
}

fn tracing_less_log(n: usize, e: &anyhow::Error) {
    if n < 5 {
        eprintln!("client {n}: {e:#}");
    }
}

fn snapshot(t: &Totals) -> [u64; 4] {
    [
        t.hb_sent.load(Ordering::Relaxed),
        t.hb_ok.load(Ordering::Relaxed),
        t.hb_refused.load(Ordering::Relaxed),
        t.events.load(Ordering::Relaxed),
    ]
}

enum Pending {
    Join(Instant),
    Heartbeat(Instant),
}

#[allow(clippy::too_many_arguments)]
async fn client(
    server: SocketAddr,
    source: std::net::Ipv4Addr,
    n: usize,
    room: String,
    period: Duration,
    offset: Duration,
    totals: &Totals,
    gate: &tokio::sync::Semaphore,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let permit = gate.acquire().await?;
    const PATH: &str = "/socket.io/?EIO=4&transport=websocket";
    let mut ws = if server.ip().is_loopback() {
        // Spread over 127.0.0.x sources, as every scenario does.
        conn::connect(server, source, PATH).await?
    } else {
        let stream = tokio::net::TcpStream::connect(server).await?;
        stream.set_nodelay(true)?;
        let url = format!("ws://{server}{PATH}");
        tokio_tungstenite::client_async(url.as_str(), stream)
            .await?
            .0
    };
    // Engine.IO open ("0{...}"), then the Socket.IO CONNECT of the main namespace.
    let open = next_text(&mut ws).await?;
    anyhow::ensure!(
        open.starts_with('0'),
        "expected the Engine.IO open packet, got {open}"
    );
    ws.send(Message::text("40")).await?;
    loop {
        let text = next_text(&mut ws).await?;
        if text.starts_with("40") {
            break;
        }
        if text.starts_with("44") {
            anyhow::bail!("connect refused: {text}");
        }
        // engineioxide sends its first Engine.IO ping at once, often before the CONNECT
        // reply; one left unanswered closes the session after the ping timeout.
        if text == "2" {
            ws.send(Message::text("3")).await?;
        }
    }
    drop(permit);
    totals.connected.fetch_add(1, Ordering::Relaxed);
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut next_id = 0u64;
    let user = format!("user-{n}");
    let join = json!({"roomId": room, "userId": user, "state": {"seq": 0}});
    ws.send(Message::text(event_packet(next_id, "presence:join", &join)))
        .await?;
    pending.insert(next_id, Pending::Join(Instant::now()));
    next_id += 1;
    let mut me: Option<Value> = None;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                let _ = ws.close(None).await;
                return Ok(());
            }
            _ = tick.tick(), if me.is_some() => {
                let Some(epoch) = &me else { continue };
                seq += 1;
                // Seed 1's load test's heartbeat, as it sends it.
                let patch = json!({"seq": seq, "roomId": room, "userId": user, "ts": conn::now_us() / 1000});
                let hb = json!({"patchState": patch, "epoch": epoch});
                ws.send(Message::text(event_packet(next_id, "presence:heartbeat", &hb))).await?;
                pending.insert(next_id, Pending::Heartbeat(Instant::now()));
                next_id += 1;
                if totals.measuring.load(Ordering::Relaxed) {
                    totals.hb_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Ping(p))) => { ws.send(Message::Pong(p)).await?; continue; }
                    Some(Ok(Message::Close(_))) | None => anyhow::bail!("the server closed the socket"),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.into()),
                };
                let text = text.as_str();
                if text == "2" {
                    ws.send(Message::text("3")).await?;
                } else if text.starts_with("42") {
                    if totals.measuring.load(Ordering::Relaxed) {
                        totals.events.fetch_add(1, Ordering::Relaxed);
                    }
                } else if let Some((id, ack)) = parse_ack(text) {
                    let ok = ack.get("ok").and_then(Value::as_bool) == Some(true);
                    match pending.remove(&id) {
                        Some(Pending::Join(at)) => {
                            lock(&totals.join_us).push(micros(at));
                            anyhow::ensure!(ok, "join refused: {ack}");
                            me = Some(ack["self"]["epoch"].clone());
                        }
                        Some(Pending::Heartbeat(at)) if totals.measuring.load(Ordering::Relaxed) => {
                            lock(&totals.hb_us).push(micros(at));
                            let counter = if ok { &totals.hb_ok } else { &totals.hb_refused };
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Pending::Heartbeat(_)) | None => {}
                    }
                }
            }
        }
    }
}

async fn next_text(ws: &mut conn::Ws) -> anyhow::Result<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Ok(t.as_str().to_owned()),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => anyhow::bail!("closed during the handshake"),
            Err(_) => anyhow::bail!("no handshake within 30 s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets() {
        assert_eq!(
            event_packet(7, "presence:join", &json!({"a": 1})),
            r#"427["presence:join",{"a":1}]"#
        );
        assert_eq!(
            parse_ack(r#"4312[{"ok":true}]"#),
            Some((12, json!({"ok": true})))
        );
        assert_eq!(parse_ack(r#"42["x",{}]"#), None);
    }
}
