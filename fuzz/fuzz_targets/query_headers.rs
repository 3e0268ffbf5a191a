//! Query strings and headers of the upgrade and HTTP requests: room names, session ids
//! (`?socket_session_id=` vs `x-socket-session-id`). Input: `path?query \n header value`.
#![no_main]

use std::collections::HashMap;

use activenow::protocol::activenow::{session_id, SESSION_HEADER};
use activenow_engine::model::MAX_ROOM_BYTES;
use activenow_engine::Room;
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (line, header) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let mut headers = HeaderMap::new();
    if let Some(Ok(v)) = header.map(HeaderValue::from_bytes) {
        headers.insert(SESSION_HEADER, v);
    }
    let query: HashMap<String, String> = std::str::from_utf8(line)
        .ok()
        .and_then(|l| l.parse::<Uri>().ok())
        .and_then(|uri| Query::<HashMap<String, String>>::try_from_uri(&uri).ok())
        .map(|q| q.0)
        .unwrap_or_default();
    if let Some(name) = query.get("room").or(query.get("room_name")) {
        if let Ok(room) = Room::parse(name) {
            let s = room.as_str();
            assert!(!s.is_empty() && s.len() <= MAX_ROOM_BYTES);
            assert!(!s.chars().any(char::is_control) && !room.is_internal());
        }
    }
    if let Ok(Some(id)) = session_id(
        &headers,
        query.get("socket_session_id").map(String::as_str),
        128,
    ) {
        let s = id.as_str();
        assert!(!s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_control));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Room::parse(text);
    }
});
