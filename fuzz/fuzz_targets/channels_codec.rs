//! The channels (JWT pub/sub) client messages, channel names and publish data.
#![no_main]

use activenow::protocol::channels::codec::{data_object, decode, valid_channel, Command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = valid_channel(text);
    if let Ok(Command::Publish { channel, data, .. }) = decode(text) {
        let _ = valid_channel(&channel);
        let _ = data_object(data);
    }
});
