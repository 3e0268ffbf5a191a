//! The online-status request bodies (`{playerId, ip?, name?}`) and player ids.
#![no_main]

use activenow::services::online::http::{check_player_id, optional_text, player_id};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const MAX: usize = 128;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = check_player_id(text, MAX) {
            assert!(!id.as_str().is_empty() && id.as_str().len() <= MAX);
        }
    }
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(id) = player_id(v.get("playerId"), MAX) {
        assert!(!id.as_str().is_empty() && id.as_str().len() <= MAX);
    }
    for field in ["ip", "name"] {
        if let Ok(Some(s)) = optional_text(v.get(field), field, 256) {
            assert!(s.len() <= 256);
        }
    }
});
