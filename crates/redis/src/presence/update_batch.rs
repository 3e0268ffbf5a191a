//! Updates (heartbeats with a state patch) go to Redis many per script call: the updates
//! that arrive while earlier ones are on their way are sent together (group commit).
//!
//! Under load most of an update's cost is per command, not per update: fred's router and
//! the connection's writes and reads on this node, the script call in Redis. One
//! `update.lua` call for every update queued at that moment turns that into a cost per
//! batch. At low load nothing waits: a batch leaves as soon as fewer than
//! [`IN_FLIGHT`] batches are on their way, so an update waits at most for one round trip.
//!
//! A script's keys must share a Redis Cluster slot, so on a cluster a batch is split by
//! the slot of each room's hash tag (one call per slot); a single server takes them all in
//! one call. Each caller gets its own update's list of transitions, or the call's error.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use fred::clients::Client;
use fred::error::{Error, ErrorKind};
use fred::interfaces::ClientLike;
use fred::types::{Key, Value};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::scripts::Scripts;

/// Updates per script call at most (each takes 7 keys and 8 arguments).
const MAX_BATCH: usize = 128;
/// Batches on their way at once. More would send smaller batches; fewer would make an
/// update wait for more than one round trip when Redis is far.
const IN_FLIGHT: usize = 2;
/// Updates queued and not yet sent, at most: beyond this, `update` waits (backpressure on
/// the sockets sending heartbeats, instead of memory growing while Redis is slow).
const QUEUED: usize = 16_384;

/// One update: the room's seven keys, the script's eight arguments for it, and where its
/// transitions go.
pub(crate) struct QueuedUpdate {
    pub keys: Vec<String>,
    pub args: [String; 8],
    pub reply: oneshot::Sender<Result<Value, Error>>,
}

/// The sending side; the batching task ends when it is dropped.
pub(crate) struct UpdateBatcher {
    queue: mpsc::Sender<QueuedUpdate>,
}

impl UpdateBatcher {
    /// Starts the batching task (needs a Tokio runtime).
    pub fn start(client: Client, scripts: Arc<Scripts>) -> UpdateBatcher {
        let (queue, rx) = mpsc::channel(QUEUED);
        tokio::spawn(run(client, scripts, rx));
        UpdateBatcher { queue }
    }

    /// Queues one update and waits for its script reply.
    pub async fn update(&self, keys: Vec<String>, args: [String; 8]) -> Result<Value, Error> {
        let (reply, rx) = oneshot::channel();
        let stopped = || Error::new(ErrorKind::Canceled, "the update batcher stopped");
        self.queue
            .send(QueuedUpdate { keys, args, reply })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

async fn run(client: Client, scripts: Arc<Scripts>, mut rx: mpsc::Receiver<QueuedUpdate>) {
    let mut in_flight = FuturesUnordered::new();
    loop {
        if in_flight.len() >= IN_FLIGHT {
            in_flight.next().await;
            continue;
        }
        tokio::select! {
            first = rx.recv() => {
                let Some(first) = first else { break };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(u) => batch.push(u),
                        Err(_) => break,
                    }
                }
                // Its own task: whatever happens to one batch, the next ones still go.
                in_flight.push(tokio::spawn(send(client.clone(), scripts.clone(), batch)));
            }
            Some(_) = in_flight.next(), if !in_flight.is_empty() => {}
        }
    }
    while in_flight.next().await.is_some() {}
}

/// Sends one batch: one script call per cluster slot (one call on a single server).
async fn send(client: Client, scripts: Arc<Scripts>, batch: Vec<QueuedUpdate>) {
    let groups = by_slot(batch, client.is_clustered());
    futures_util::future::join_all(groups.into_iter().map(|g| call(&client, &scripts, g))).await;
}

fn by_slot(batch: Vec<QueuedUpdate>, clustered: bool) -> Vec<Vec<QueuedUpdate>> {
    if !clustered {
        return vec![batch];
    }
    let mut groups: Vec<(u16, Vec<QueuedUpdate>)> = Vec::new();
    for u in batch {
        let slot = u
            .keys
            .first()
            .map(|k| fred::util::redis_keyslot(k.as_bytes()))
            .unwrap_or(0);
        match groups.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, g)) => g.push(u),
            None => groups.push((slot, vec![u])),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

async fn call(client: &Client, scripts: &Scripts, group: Vec<QueuedUpdate>) {
    // Every key and argument is a slice of one buffer: fred clones them for a retry after
    // NOSCRIPT, which then costs a reference count each instead of an allocation.
    let count = group.len().to_string();
    let len = count.len()
        + group
            .iter()
            .map(|u| u.keys.iter().chain(&u.args).map(String::len).sum::<usize>())
            .sum::<usize>();
    let mut buf = BytesMut::with_capacity(len);
    let mut key_ends = Vec::with_capacity(group.len() * 7);
    let mut arg_ends = Vec::with_capacity(1 + group.len() * 8);
    buf.extend_from_slice(count.as_bytes());
    let mut replies = Vec::with_capacity(group.len());
    for u in &group {
        for k in &u.keys {
            buf.extend_from_slice(k.as_bytes());
            key_ends.push(buf.len());
        }
    }
    for u in group {
        for a in &u.args {
            buf.extend_from_slice(a.as_bytes());
            arg_ends.push(buf.len());
        }
        replies.push(u.reply);
    }
    let buf = buf.freeze();
    let slices = |ends: &[usize], mut start: usize| {
        ends.iter()
            .map(|&end| {
                let piece = buf.slice(start..end);
                start = end;
                piece
            })
            .collect::<Vec<Bytes>>()
    };
    let keys_start = count.len();
    let keys: Vec<Key> = slices(&key_ends, keys_start)
        .into_iter()
        .map(Key::from)
        .collect();
    let args_start = key_ends.last().copied().unwrap_or(keys_start);
    let mut args: Vec<Value> = vec![buf.slice(0..keys_start).into()];
    args.extend(slices(&arg_ends, args_start).into_iter().map(Value::from));
    let result: Result<Value, Error> = scripts.update.evalsha_with_reload(client, keys, args).await;
    match result {
        Ok(reply) => {
            let mut each = reply.into_array().into_iter();
            for r in replies {
                let one = each.next().ok_or_else(|| {
                    Error::new(ErrorKind::Protocol, "update script: a reply is missing")
                });
                let _ = r.send(one);
            }
        }
        Err(e) => {
            for r in replies {
                let _ = r.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(room: &str) -> (QueuedUpdate, oneshot::Receiver<Result<Value, Error>>) {
        let (reply, rx) = oneshot::channel();
        let keys = (0..7).map(|i| format!("{{r:{room}}}:{i}")).collect();
        let args = std::array::from_fn(|i| i.to_string());
        (QueuedUpdate { keys, args, reply }, rx)
    }

    #[test]
    fn a_cluster_batch_is_split_by_slot_in_arrival_order() {
        let rooms = ["a", "b", "a", "c", "b"];
        let batch: Vec<QueuedUpdate> = rooms.iter().map(|r| queued(r).0).collect();
        let groups = by_slot(batch, true);
        let names: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|u| &u.keys[0][3..4]).collect::<Vec<_>>())
            .collect();
        assert_eq!(names, vec![vec!["a", "a"], vec!["b", "b"], vec!["c"]]);
        let single = by_slot(rooms.iter().map(|r| queued(r).0).collect(), false);
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].len(), 5);
    }
}
