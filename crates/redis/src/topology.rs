//! Following a Redis Cluster's topology with the sharded subscriptions.
//!
//! A sharded subscription lives on the master that owns its channel's slot. When the slot
//! changes hands (a failover, a resharding), the old owner drops the subscription with a
//! `SUNSUBSCRIBE` push that fred ignores, and the connection stays up, so no reconnection
//! re-subscribes it: without this, the node would silently stop hearing those rooms.
//!
//! A client seeded with one node must not depend on it: [`every_node`] lists the whole
//! cluster at start-up, and the clients are built with all of it as their seeds, so that
//! after the seed dies their reconnections find the cluster through the others.
//!
//! The subscriber re-reads the slot map (`CLUSTER SLOTS`) when a command client saw the
//! topology change (they follow `MOVED` redirections at once) and every [`SYNC_INTERVAL`]
//! anyway (a node may publish nothing on a moved slot), and re-subscribes every channel when
//! the map differs from the one its subscriptions were made on. It then reports lost state,
//! as after a reconnection: the engine re-asserts, and its sockets learn the counts of what
//! they may have missed while nobody listened.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, ClusterInterface, EventInterface};
use fred::types::config::Server;
use tokio::sync::{watch, Notify};

use crate::broker;

/// How often the subscriber checks the slot map when nothing told it to.
pub(crate) const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Which master owns each slot range, as this client last read it.
fn slot_map(client: &impl ClusterInterface) -> Vec<(u16, u16, String)> {
    client
        .cached_cluster_state()
        .map(|state| {
            state
                .slots()
                .iter()
                .map(|r| (r.start, r.end, r.primary.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts following the topology (clustered deployments only); stops once `closed` is set.
pub(crate) fn follow(
    commands: &[&Client],
    subscriber: &SubscriberClient,
    listening: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    mut closed: watch::Receiver<bool>,
) {
    if !subscriber.is_clustered() {
        return;
    }
    let changed = Arc::new(Notify::new());
    for client in commands {
        let changed = changed.clone();
        client.on_cluster_change(move |_| {
            changed.notify_one();
            async { Ok(()) }
        });
    }
    let subscriber = subscriber.clone();
    tokio::spawn(async move {
        let mut subscribed_on = slot_map(&subscriber);
        let mut tick = tokio::time::interval(SYNC_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = closed.changed() => return,
                _ = changed.notified() => {}
                _ = tick.tick() => {}
            }
            if *closed.borrow() {
                return;
            }
            if let Err(e) = subscriber.sync_cluster().await {
                tracing::debug!(error = %e, "reading the cluster's slot map failed");
                continue;
            }
            let now = slot_map(&subscriber);
            if now.is_empty() || now == subscribed_on {
                continue;
            }
            tracing::warn!("the cluster's slots moved: re-subscribing this node's rooms");
            listening.store(false, Ordering::Relaxed);
            match broker::resubscribe(&subscriber, true).await {
                Ok(()) => {
                    subscribed_on = now;
                    listening.store(true, Ordering::Relaxed);
                    lost.store(true, Ordering::Relaxed);
                }
                // The next check tries again.
                Err(e) => tracing::warn!(error = %e, "re-subscribing after a slot move failed"),
            }
        }
    });
}

/// Every node `CLUSTER NODES` lists that has an address and is not failed, masters and
/// replicas, as client seeds.
pub(crate) async fn every_node(probe: &Client) -> Result<Vec<Server>, fred::error::Error> {
    let nodes: String = probe.cluster_nodes().await?;
    Ok(parse_nodes(&nodes))
}

fn parse_nodes(nodes: &str) -> Vec<Server> {
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let flags = fields.get(2)?;
            if flags
                .split(',')
                .any(|f| f == "fail" || f == "noaddr" || f == "handshake")
            {
                return None;
            }
            let addr = fields.get(1)?.split(['@', ',']).next()?;
            let (host, port) = addr.rsplit_once(':')?;
            let port: u16 = port.parse().ok()?;
            (!host.is_empty()).then(|| Server::new(host, port))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_become_seeds() {
        let nodes = "07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected\n\
                     67ed 127.0.0.1:30002@40002,host-b master - 0 1426238316232 2 connected 5461-10922\n\
                     292f 127.0.0.1:30003@40003 master,fail - 0 1426238318243 3 connected 10923-16383\n\
                     6ec2 :0@0 master,noaddr - 0 0 0 disconnected\n";
        let seeds: Vec<String> = parse_nodes(nodes).iter().map(|s| s.to_string()).collect();
        assert_eq!(seeds, ["127.0.0.1:30004", "127.0.0.1:30002"]);
    }
}
