//! The WebSocket frame decoder (`transport/websocket/frame/`): client bytes as they come off
//! the socket, decoded frame after frame with fragments carried over, as the socket does.
#![no_main]

use activenow::transport::websocket::fuzzing::{decode, Fragments};
use activenow::transport::websocket::{Limits, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_frame: 4096,
        max_message: 8192,
    };
    let mut fragments = Fragments::default();
    let mut at = 0;
    while at < data.len() {
        let mut consumed = 0;
        match decode(&data[at..], &mut fragments, limits, &mut consumed) {
            Err(_) => return,
            Ok(message) => {
                assert!(consumed <= data.len() - at);
                if let Some(Message::Text(t)) = &message {
                    assert!(t.as_str().len() <= limits.max_message);
                }
                if consumed == 0 {
                    assert!(message.is_none());
                    return;
                }
                at += consumed;
            }
        }
    }
});
