//! The chart's data: one [`Sample`] per slot, this node's [`Ring`] of the last ones, and the
//! [`merge`] of every node's samples read from a shared backend (Redis).

use std::collections::{BTreeMap, VecDeque};

use activenow_engine::StatsSample;
use serde::Serialize;

/// One point of the chart.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// Wall-clock milliseconds of the sample.
    pub ts: u64,
    pub visitors: u64,
    /// Room members (identities), summed over rooms.
    pub members: u64,
    pub rooms: u64,
    /// Open sockets on this node, all protocols.
    pub connections: u64,
}

/// The last `capacity` samples, oldest first.
#[derive(Debug)]
pub struct Ring {
    samples: VecDeque<Sample>,
    capacity: usize,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring {
            samples: VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    pub fn record(&mut self, s: Sample) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples.iter().copied().collect()
    }
}

/// One point per slot from every node's samples: sockets are summed (each node counts its
/// own), the other figures are the cluster's on every node, so the largest is kept (a node
/// that sampled just before a change and one just after agree on the later one). A node that
/// wrote one slot twice counts once.
pub fn merge(shared: Vec<(String, StatsSample)>) -> Vec<Sample> {
    let mut per_node: BTreeMap<(u64, String), StatsSample> = BTreeMap::new();
    for (node, s) in shared {
        let e = per_node.entry((s.slot_ms, node)).or_insert(s);
        e.connections = e.connections.max(s.connections);
        e.visitors = e.visitors.max(s.visitors);
        e.members = e.members.max(s.members);
        e.rooms = e.rooms.max(s.rooms);
    }
    let mut out: BTreeMap<u64, Sample> = BTreeMap::new();
    for ((slot, _), s) in per_node {
        let p = out.entry(slot).or_insert(Sample {
            ts: slot,
            visitors: 0,
            members: 0,
            rooms: 0,
            connections: 0,
        });
        p.connections += s.connections;
        p.visitors = p.visitors.max(s.visitors);
        p.members = p.members.max(s.members);
        p.rooms = p.rooms.max(s.rooms);
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ts: u64) -> Sample {
        Sample {
            ts,
            visitors: ts,
            members: 0,
            rooms: 0,
            connections: 0,
        }
    }

    #[test]
    fn merge_sums_sockets_per_slot_and_keeps_the_cluster_figures() {
        let n = |slot, visitors, connections| StatsSample {
            slot_ms: slot,
            visitors,
            members: visitors,
            rooms: 1,
            connections,
        };
        let merged = merge(vec![
            ("a".into(), n(60_000, 4, 10)),
            ("b".into(), n(60_000, 5, 7)),
            ("b".into(), n(60_000, 5, 7)), // written twice by one node
            ("a".into(), n(0, 1, 2)),
        ]);
        let got: Vec<(u64, u64, u64)> = merged
            .iter()
            .map(|s| (s.ts, s.visitors, s.connections))
            .collect();
        assert_eq!(got, vec![(0, 1, 2), (60_000, 5, 17)]);
    }

    #[test]
    fn ring_keeps_the_last_samples_oldest_first() {
        let mut r = Ring::new(3);
        for ts in 1..=5 {
            r.record(s(ts));
        }
        let ts: Vec<u64> = r.samples().iter().map(|x| x.ts).collect();
        assert_eq!(ts, vec![3, 4, 5]);
    }
}
