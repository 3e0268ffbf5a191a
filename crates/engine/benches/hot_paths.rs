//! Criterion benches for the engine's hot paths on the memory backend: join + leave,
//! heartbeat, and a broadcast (render once, queue to every subscriber's outbox).
//!
//! `cargo bench -p activenow-engine --bench hot_paths`
//!
//! The renderer below is a stand-in with the shape of seed 0's events (the engine knows no
//! wire format; the real one lives in the server's protocol adapter).

use std::sync::Arc;
use std::time::{Duration, Instant};

use activenow_engine::{
    Backend, Connection, Engine, EngineConfig, EventKind, Identity, Liveness, Outgoing, Renderer,
    Room, RoomEvent, State,
};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde::Serialize;

#[derive(Serialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    identity: &'a str,
    room_name: &'a str,
    at: u64,
}

struct JsonRenderer;

impl Renderer for JsonRenderer {
    fn render(&self, room: &Room, event: &RoomEvent) -> Option<Bytes> {
        let RoomEvent::Presence(e) = event else {
            return None;
        };
        let kind = match e.kind {
            EventKind::Join => "ACTIVITY_JOIN_PRESENCE",
            EventKind::Update => "ACTIVITY_UPDATE_PRESENCE",
            EventKind::Leave => "ACTIVITY_LEAVE_PRESENCE",
        };
        let frame = Frame {
            kind,
            identity: e.member.identity.as_str(),
            room_name: room.as_str(),
            at: e.ts_ms,
        };
        serde_json::to_vec(&frame).ok().map(Bytes::from)
    }

    fn render_count(&self, _room: &Room, count: u64) -> Option<Bytes> {
        Some(Bytes::from(format!(r#"{{"type":"sync","count":{count}}}"#)))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn engine() -> Engine {
    let config = EngineConfig {
        // No reaper pass during a measurement.
        reaper_interval: Duration::from_secs(3600),
        send_queue_capacity: 1 << 20,
        ..EngineConfig::default()
    };
    Engine::start(config, Backend::memory())
}

fn drain(conns: &[Connection]) {
    for c in conns {
        while let Some(Outgoing::Frame(_)) = c.outbox().try_next() {}
    }
}

async fn members(engine: &Engine, room: &Room, n: usize) -> Vec<Connection> {
    let renderer: Arc<dyn Renderer> = Arc::new(JsonRenderer);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let c = engine.connect(Liveness::Socket);
        c.join(
            room.clone(),
            Identity::new(&format!("member-{i}")),
            State::new(),
            renderer.clone(),
            None,
        )
        .await
        .unwrap();
        out.push(c);
        // Keep the queues short, as the socket tasks would: a queue that once held
        // thousands of joins keeps its capacity and would spread every later push over
        // cold memory.
        if i % 32 == 31 {
            drain(&out);
        }
    }
    drain(&out);
    out
}

fn join_leave(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("join_leave");
    for size in [1usize, 100] {
        let (engine, room, others) = rt.block_on(async {
            let engine = engine();
            let room = Room::parse("bench").unwrap();
            let others = members(&engine, &room, size - 1).await;
            (engine, room, others)
        });
        let renderer: Arc<dyn Renderer> = Arc::new(JsonRenderer);
        group.bench_function(BenchmarkId::new("room_of", size), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut spent = Duration::ZERO;
                    for i in 0..iters {
                        let started = Instant::now();
                        let conn = engine.connect(Liveness::Socket);
                        conn.join(
                            room.clone(),
                            Identity::new(&format!("j{i}")),
                            State::new(),
                            renderer.clone(),
                            None,
                        )
                        .await
                        .unwrap();
                        conn.disconnect().await;
                        spent += started.elapsed();
                        drain(&others);
                    }
                    spent
                })
            })
        });
    }
    group.finish();
}

fn heartbeat(c: &mut Criterion) {
    let rt = runtime();
    let (_engine, conn) = rt.block_on(async {
        let engine = engine();
        let conn = engine.connect(Liveness::Heartbeat {
            ttl: Duration::from_secs(30),
        });
        conn.join(
            Room::parse("hb").unwrap(),
            Identity::new("me"),
            State::new(),
            Arc::new(JsonRenderer),
            None,
        )
        .await
        .unwrap();
        (engine, conn)
    });
    c.bench_function("heartbeat", |b| {
        b.to_async(&rt)
            .iter(|| async { conn.heartbeat().await.unwrap() })
    });
}

fn broadcast(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("broadcast_update");
    for size in [100usize, 1_000, 10_000] {
        let (engine, room, conns) = rt.block_on(async {
            let engine = engine();
            let room = Room::parse("fan").unwrap();
            let conns = members(&engine, &room, size).await;
            (engine, room, conns)
        });
        let identity = Identity::new("member-0");
        let mut patch = State::new();
        patch.insert("position".into(), 1.into());
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(BenchmarkId::new("members", size), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        engine
                            .update_identity(&room, &identity, &patch)
                            .await
                            .unwrap();
                        spent += started.elapsed();
                        drain(&conns);
                    }
                    spent
                })
            })
        });
    }
    group.finish();
}

fn render(c: &mut Criterion) {
    let rt = runtime();
    let room = Room::parse("render").unwrap();
    let event = rt.block_on(async {
        let engine = engine();
        let conn = engine.connect(Liveness::Socket);
        conn.join(
            room.clone(),
            Identity::new("3f6c2a9e-5d1b-4c7a-9e2f-1a2b3c4d5e6f"),
            State::new(),
            Arc::new(JsonRenderer),
            None,
        )
        .await
        .unwrap()
    });
    let event = RoomEvent::Presence(event);
    c.bench_function("render_join_event", |b| {
        b.iter(|| JsonRenderer.render(&room, &event))
    });
}

criterion_group!(benches, join_leave, heartbeat, broadcast, render);
criterion_main!(benches);
