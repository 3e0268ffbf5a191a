//! `fanout`: one room of M members; generator 0 sends K presence updates per second over
//! keep-alive HTTP (`POST /v1/activity/presence/update` as member `fan-0-0`), each carrying
//! its send time in microseconds as `position`, so every member times its delivery.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use super::{Ctx, Share};
use crate::cli::LoadArgs;
use crate::conn::now_us;
use crate::http::Http;

pub(super) const ROOM: &str = "fanout";
pub(super) const UPDATE_PREFIX: &str = r#"{"type":"ACTIVITY_UPDATE_PRESENCE""#;
const POSITION: &str = r#""position":"#;

/// The send time carried by an update event.
pub(super) fn update_sent_us(text: &str) -> Option<u64> {
    if !text.starts_with(UPDATE_PREFIX) {
        return None;
    }
    let at = text.rfind(POSITION)? + POSITION.len();
    let digits = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Sends the updates until the run stops, over `--http-conns` connections.
pub(super) async fn drive(load: LoadArgs, server: SocketAddr, _share: Share, ctx: Arc<Ctx>) {
    let conns = load.http_conns.max(1);
    let mut senders = tokio::task::JoinSet::new();
    for c in 0..conns {
        let per_conn = f64::from(load.updates.max(1)) / conns as f64;
        let ctx = ctx.clone();
        senders.spawn(async move {
            let Ok(mut http) = Http::connect(server).await else {
                Ctx::add(&ctx.errors, 1);
                return;
            };
            let period = Duration::from_secs_f64(1.0 / per_conn);
            let start = tokio::time::Instant::now() + period.mul_f64(c as f64 / conns as f64);
            let mut tick = tokio::time::interval_at(start, period);
            tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
            loop {
                tokio::select! {
                    _ = ctx.stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let body = format!(r#"{{"room_name":"{ROOM}","position":{}}}"#, now_us());
                let headers = [
                    ("content-type", "application/json"),
                    ("x-socket-session-id", "fan-0-0"),
                ];
                let ok = matches!(
                    http.request(
                        "POST",
                        "/v1/activity/presence/update",
                        &headers,
                        body.as_bytes()
                    )
                    .await,
                    Ok((200, _))
                );
                if ctx.recording() {
                    Ctx::add(if ok { &ctx.updates } else { &ctx.errors }, 1);
                }
                if !ok {
                    match Http::connect(server).await {
                        Ok(h) => http = h,
                        Err(_) => return,
                    }
                }
            }
        });
    }
    while senders.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_send_time_of_updates() {
        let e = r#"{"type":"ACTIVITY_UPDATE_PRESENCE","data":{"identity":"fan-0-0","roomName":"fanout","updatedAt":1,"position":1700000000123456}}"#;
        assert_eq!(update_sent_us(e), Some(1_700_000_000_123_456));
        assert_eq!(update_sent_us(r#"{"type":"sync","count":3}"#), None);
    }
}
