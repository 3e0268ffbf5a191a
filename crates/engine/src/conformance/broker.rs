//! Conformance check for the [`Broker`](crate::store::Broker)'s ordering: the messages of one
//! room that one node publishes arrive in publish order, whatever other rooms carry in
//! between.

use super::support::{engine_config, join, next, room, Seen};
use crate::engine::{Connection, Engine, Liveness};
use crate::model::{Publication, Room, RoomEvent};
use crate::store::Backend;

/// Publications per room: enough to interleave with the other room's on a remote broker.
const MESSAGES: u64 = 200;

pub async fn broker_keeps_each_rooms_order(backend: Backend) {
    let engine = Engine::start(engine_config(), backend);
    let rooms = [room("order-a"), room("order-b")];
    let mut subscribers = Vec::new();
    for (i, r) in rooms.iter().enumerate() {
        let c = engine.connect(Liveness::Socket);
        join(&c, r, &format!("s{i}")).await.unwrap();
        subscribers.push(c);
    }
    for n in 0..MESSAGES {
        for r in &rooms {
            engine.publish(r, numbered(r, n), None).await.unwrap();
        }
    }
    for (r, c) in rooms.iter().zip(&subscribers) {
        assert_eq!(
            received(c, r).await,
            (0..MESSAGES).collect::<Vec<_>>(),
            "{r}"
        );
    }
    for c in subscribers {
        c.disconnect().await;
    }
    engine.shutdown().await;
}

fn numbered(room: &Room, n: u64) -> Publication {
    Publication {
        event: room.as_str().to_owned(),
        data: serde_json::json!(n),
        from: None,
        ts_ms: n,
    }
}

/// The numbers of the next [`MESSAGES`] publications `conn` (a subscriber of `room`)
/// receives, in arrival order; each must be one of `room`'s.
async fn received(conn: &Connection, room: &Room) -> Vec<u64> {
    let mut out = Vec::new();
    while out.len() < MESSAGES as usize {
        match next(conn).await {
            Seen::Event(RoomEvent::Publication(p)) => {
                assert_eq!(p.event, room.as_str(), "another room's publication");
                out.push(p.data.as_u64().expect("a numbered publication"));
            }
            Seen::Closed => panic!("closed after {} publications", out.len()),
            _ => {}
        }
    }
    out
}
