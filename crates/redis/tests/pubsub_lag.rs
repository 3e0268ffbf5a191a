//! A node that reads its pub/sub stream too slowly loses messages: they are counted, and the
//! store reports lost state, so the engine re-asserts and its sockets get the rooms' counts
//! again. Against a real `redis-server` on a free port: the broker's sink is held while more
//! messages arrive than its buffer takes.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use activenow_engine::store::MessageSink;
use activenow_engine::{Publication, Room, RoomEvent, RoomMessage};
use activenow_redis::{connect, RedisOptions};
use activenow_testkit::RedisServer;

fn redis() -> Option<&'static RedisServer> {
    static REDIS: OnceLock<Option<RedisServer>> = OnceLock::new();
    REDIS.get_or_init(RedisServer::start).as_ref()
}

/// Blocks in its first delivery until released.
struct HeldSink {
    release: Mutex<Option<std_mpsc::Receiver<()>>>,
}

impl MessageSink for HeldSink {
    fn deliver(&self, _msg: &RoomMessage) {
        let held = self.release.lock().unwrap().take();
        if let Some(rx) = held {
            let _ = rx.recv_timeout(Duration::from_secs(60));
        }
    }
}

/// Every pub/sub client's output buffer in Redis is empty: what was published has left
/// Redis for the subscriber.
fn pubsub_output_drained(redis: &RedisServer) -> bool {
    let list = redis.command(&["CLIENT", "LIST", "TYPE", "pubsub"]);
    list.lines()
        .filter(|l| l.contains("id="))
        .all(|l| l.contains(" omem=0 "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_counts_its_losses_and_reports_lost_state() {
    let Some(redis) = redis() else { return };
    let mut options = RedisOptions::new(&redis.url(), "lag", Duration::from_secs(60));
    options.prefix = "lag:".into();
    options.pubsub_buffer = 64;
    let backend = connect(&options).await.expect("connect");
    let (release, held) = std_mpsc::channel();
    backend.broker.attach(Arc::new(HeldSink {
        release: Mutex::new(Some(held)),
    }));
    let room = Room::parse("lagging").unwrap();
    backend.broker.subscribe(&room).await.unwrap();
    assert!(!backend.presence.take_lost_state());

    // 2,000 messages of 4 KiB: the sink holds the first; fred reads the rest into a buffer
    // of 64, far more than the socket buffers could keep back.
    let data = serde_json::Value::String("x".repeat(4096));
    for chunk in 0..20 {
        let sends = (0..100).map(|i| {
            let msg = RoomMessage {
                room: room.clone(),
                event: RoomEvent::Publication(Publication {
                    event: format!("flood-{chunk}-{i}"),
                    data: data.clone(),
                    from: None,
                    ts_ms: 0,
                }),
                exclude: None,
            };
            let broker = backend.broker.clone();
            async move { broker.publish(&msg).await }
        });
        for r in futures_util::future::join_all(sends).await {
            r.expect("publish");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pubsub_output_drained(redis) {
        assert!(
            Instant::now() < deadline,
            "Redis never sent the flood: {}",
            redis.command(&["CLIENT", "LIST", "TYPE", "pubsub"])
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        backend.broker.lost_messages(),
        0,
        "nothing is lost before the sink reads"
    );
    release.send(()).unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    while backend.broker.lost_messages() == 0 {
        assert!(Instant::now() < deadline, "the lag was never noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        backend.presence.take_lost_state(),
        "dropped messages are lost state: the engine must re-assert"
    );
    backend.broker.close().await;
}
