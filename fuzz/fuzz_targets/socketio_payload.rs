//! The payloads of the Socket.IO events this server decodes itself: channel metadata
//! requests (`{channelName, channelType, data, options}`) and coerced integers (epochs,
//! revisions). Packet framing is socketioxide's.
#![no_main]

use activenow::protocol::socketio::coerce_int;
use activenow::protocol::socketio::metadata::{channel, write_request};
use activenow_engine::metadata::MetadataOp;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = coerce_int(&v);
    let _ = channel(
        v.get("channelName").and_then(Value::as_str),
        v.get("channelType").and_then(Value::as_str),
    );
    for op in [MetadataOp::Set, MetadataOp::Update, MetadataOp::Remove] {
        if let Ok(w) = write_request(op, &v, Some("u1".into())) {
            let items = v.get("data").and_then(Value::as_array).map_or(0, Vec::len);
            assert_eq!(w.items.len(), items);
        }
    }
    if let Some(epoch) = v.get("epoch") {
        let _ = coerce_int(epoch);
    }
});
