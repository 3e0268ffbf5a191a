//! The ActiveNow room and visitor socket messages (`{"type":"hb"}`, `updateSid`).
#![no_main]

use activenow::protocol::activenow::codec::{decode, ClientMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match decode(text) {
        Ok(ClientMessage::Heartbeat) => {}
        // A decoded id is a substring of the frame (JSON unescaping only shrinks text).
        Ok(ClientMessage::UpdateSid(id)) => assert!(id.len() <= text.len()),
        Err((code, _)) => assert!(!code.is_empty()),
    }
});
