//! One task per long-lived client socket: it heartbeats on its schedule and reads what the
//! server sends, timing the events its scenario measures. Fan-out members read raw frames
//! (see [`RawWs`]); the others use tokio-tungstenite.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use super::{churn, fanout, Ctx, Kind};
use crate::cli::LoadArgs;
use crate::conn::{now_us, RawWs, Ws, OP_CLOSE, OP_TEXT};

/// A connected long-lived client.
pub(super) enum Client {
    Ws(Box<Ws>),
    Raw(RawWs),
}

const HB: &str = r#"{"type":"hb"}"#;

/// What a socket does with a text frame.
#[derive(Clone, Copy)]
enum Watch {
    Nothing,
    /// Time `ACTIVITY_JOIN_PRESENCE` of churning sessions.
    Joins,
}

pub(super) fn spawn(
    kind: Kind,
    load: &LoadArgs,
    i: usize,
    client: Client,
    ctx: Arc<Ctx>,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    // Spread the ticks of the sockets evenly instead of all at once.
    let phase = |period_ms: u64| Duration::from_millis((i as u64 * 7919) % period_ms.max(1));
    let hb_ms = load.hb_secs.max(1) * 1000;
    let ws = match client {
        Client::Ws(ws) => *ws,
        Client::Raw(raw) => {
            let every = (u64::from(load.updates) * load.duration / 200).max(1);
            tasks.spawn(raw_member(
                raw,
                ctx,
                Duration::from_millis(hb_ms),
                phase(hb_ms),
                every,
            ));
            return;
        }
    };
    match kind {
        Kind::Heartbeat => {
            let tick = load.tick_ms.max(1);
            let per_tick = (u64::from(load.per_conn_rate) * tick / 1000).max(1);
            tasks.spawn(socket(
                ws,
                ctx,
                Duration::from_millis(tick),
                phase(tick),
                per_tick,
                Watch::Nothing,
            ));
        }
        _ => {
            let watch = match kind {
                Kind::Churn => Watch::Joins,
                _ => Watch::Nothing,
            };
            tasks.spawn(socket(
                ws,
                ctx,
                Duration::from_millis(hb_ms),
                phase(hb_ms),
                1,
                watch,
            ));
        }
    }
}

async fn socket(ws: Ws, ctx: Arc<Ctx>, every: Duration, phase: Duration, batch: u64, watch: Watch) {
    let (mut tx, mut rx) = ws.split();
    let mut tick = tokio::time::interval_at(Instant::now() + phase, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut samples = Vec::new();
    loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => break,
            _ = tick.tick() => {
                let mut ok = true;
                for _ in 0..batch {
                    if tx.feed(Message::text(HB)).await.is_err() {
                        ok = false;
                        break;
                    }
                }
                if !ok || tx.flush().await.is_err() {
                    Ctx::add(&ctx.closed, 1);
                    break;
                }
                if ctx.recording() {
                    Ctx::add(&ctx.hb_sent, batch);
                }
            }
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if !ctx.recording() {
                        continue;
                    }
                    Ctx::add(&ctx.frames_in, 1);
                    match watch {
                        Watch::Nothing => {}
                        Watch::Joins => {
                            if let Some(t0) = churn::join_started_us(text.as_str()) {
                                samples.push(now_us().saturating_sub(t0).min(u32::MAX as u64) as u32);
                            }
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    Ctx::add(&ctx.closed, 1);
                    break;
                }
            },
        }
    }
    ctx.keep_samples(samples);
    let _ = tx.send(Message::Close(None)).await;
}

/// A fan-out member on a raw socket: counts the update events in every read (many frames per
/// read under load) and times one in `every`.
async fn raw_member(mut raw: RawWs, ctx: Arc<Ctx>, hb: Duration, phase: Duration, every: u64) {
    use bytes::Buf;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let heartbeat = RawWs::text_frame(HB);
    let mut tick = tokio::time::interval_at(Instant::now() + phase, hb);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut samples = Vec::new();
    let mut seen = 0u64;
    let mut closed = false;
    loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => break,
            _ = tick.tick() => {
                if raw.stream.write_all(&heartbeat).await.is_err() {
                    closed = true;
                    break;
                }
            }
            read = raw.stream.read_buf(&mut raw.buf) => {
                if !matches!(read, Ok(n) if n > 0) {
                    closed = true;
                    break;
                }
                let (mut frames, mut updates) = (0u64, 0u64);
                while let Some(f) = RawWs::frame(&raw.buf) {
                    if f.opcode == OP_CLOSE {
                        closed = true;
                    }
                    let payload = &raw.buf[f.payload.clone()];
                    if f.opcode == OP_TEXT {
                        frames += 1;
                        if payload.starts_with(fanout::UPDATE_PREFIX.as_bytes()) {
                            updates += 1;
                            seen += 1;
                            if seen.is_multiple_of(every) && ctx.recording() {
                                let sent = std::str::from_utf8(payload).ok().and_then(fanout::update_sent_us);
                                if let Some(t0) = sent {
                                    samples.push(now_us().saturating_sub(t0).min(u32::MAX as u64) as u32);
                                }
                            }
                        }
                    }
                    raw.buf.advance(f.len);
                }
                if closed {
                    break;
                }
                if ctx.recording() {
                    Ctx::add(&ctx.frames_in, frames);
                    Ctx::add(&ctx.deliveries, updates);
                }
            }
        }
    }
    if closed {
        Ctx::add(&ctx.closed, 1);
    }
    ctx.keep_samples(samples);
    let _ = raw.stream.write_all(&[0x88, 0x80, 0, 0, 0, 0]).await;
}
