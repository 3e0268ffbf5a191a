//! The session-push request bodies (`{session_id, web_token?, status?, ...}`) and ids.
#![no_main]

use activenow::services::session::http::{required_id, session_id, text_field};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(id) = session_id(text) {
            assert!(!id.is_empty() && id.len() <= 128);
        }
    }
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = required_id(&v);
    for field in ["web_token", "status", "kind", "client_info"] {
        if let Ok(Some(s)) = text_field(&v, field, 4096) {
            assert!(!s.is_empty() && s.len() <= 4096);
        }
    }
});
