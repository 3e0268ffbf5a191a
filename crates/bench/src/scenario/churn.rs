//! `churn`: sessions join a room and leave it again at a steady rate while the long-lived
//! watchers time the `ACTIVITY_JOIN_PRESENCE` they see. A churning session's id carries the
//! microsecond it started connecting (`ch-<t0>-<generator>-<n>`), so any watcher in any
//! generator process measures join-to-event latency without coordination.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use super::{Ctx, Share};
use crate::cli::LoadArgs;
use crate::conn::{self, now_us, Sources};

const JOIN_PREFIX: &str = r#"{"type":"ACTIVITY_JOIN_PRESENCE""#;
const CHURN_ID: &str = r#""identity":"ch-"#;

/// The start time encoded in a churning session's join event.
pub(super) fn join_started_us(text: &str) -> Option<u64> {
    if !text.starts_with(JOIN_PREFIX) {
        return None;
    }
    let at = text.find(CHURN_ID)? + CHURN_ID.len();
    let digits = &text[at..];
    let end = digits.find('-')?;
    digits[..end].parse().ok()
}

/// Starts `rate / generators` sessions per second until the run stops.
pub(super) async fn drive(
    load: LoadArgs,
    servers: Vec<SocketAddr>,
    share: Share,
    sources: Sources,
    long_lived: usize,
    ctx: Arc<Ctx>,
) {
    let rate = share.of(load.rate as usize).max(1) as f64;
    let rooms = super::Kind::Churn.rooms(&load);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut sessions = tokio::task::JoinSet::new();
    let mut n = 0usize;
    // Churning sockets use source addresses past the long-lived ones: a closed socket's port
    // stays in TIME_WAIT for a minute.
    let first_port_slot = long_lived.div_ceil(sources.per_source) * sources.per_source;
    loop {
        tokio::select! {
            _ = ctx.stop.cancelled() => break,
            _ = tick.tick() => {
                let room = format!("room-{}", (n * 7 + share.index) % rooms);
                // Sessions and watchers spread over the nodes alike, so most events cross
                // from one node to another.
                let server = servers[(n + share.index) % servers.len()];
                let source = sources.addr(first_port_slot + n % (4 * sources.per_source));
                let hold = Duration::from_millis(load.hold_ms);
                let (index, ctx) = (share.index, ctx.clone());
                sessions.spawn(async move {
                    if let Err(e) = session(server, source, &room, index, n, hold, &ctx).await {
                        if ctx.recording() {
                            let before = ctx.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if before < 3 {
                                eprintln!("churn session failed: {e:#}");
                            }
                        }
                    }
                });
                n += 1;
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    // Sessions still holding leave now; their counts fall outside the window.
    while sessions.join_next().await.is_some() {}
}

async fn session(
    server: SocketAddr,
    source: std::net::Ipv4Addr,
    room: &str,
    generator: usize,
    n: usize,
    hold: Duration,
    ctx: &Ctx,
) -> anyhow::Result<()> {
    let t0 = now_us();
    let sid = format!("ch-{t0}-{generator}-{n}");
    let mut ws = conn::connect(server, source, &conn::room_path(room, &sid)).await?;
    conn::first_text(&mut ws, Duration::from_secs(10)).await?;
    if ctx.recording() {
        Ctx::add(&ctx.joins, 1);
    }
    tokio::select! {
        _ = tokio::time::sleep(hold) => {}
        _ = ctx.stop.cancelled() => {}
    }
    ws.close(None).await?;
    if ctx.recording() {
        Ctx::add(&ctx.leaves, 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_start_time_of_churning_joins_only() {
        let join = r#"{"type":"ACTIVITY_JOIN_PRESENCE","data":{"identity":"ch-1700000000123456-0-7","roomName":"room-1","joinedAt":1}}"#;
        assert_eq!(join_started_us(join), Some(1_700_000_000_123_456));
        let watcher =
            r#"{"type":"ACTIVITY_JOIN_PRESENCE","data":{"identity":"s-0-1","roomName":"r"}}"#;
        assert_eq!(join_started_us(watcher), None);
        assert_eq!(join_started_us(r#"{"type":"sync","count":3}"#), None);
    }
}
