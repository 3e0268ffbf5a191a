//! Where a token comes from (`?token=`, `Authorization`, `Sec-WebSocket-Protocol`), token
//! lifetimes (`--ttl 720h`) and JWT verification.
//! Input: `query \n authorization \n protocol \n protocol ...`.
#![no_main]

use activenow::protocol::channels::token::{parse_ttl, presented};
use activenow::protocol::channels::Verifier;
use activenow::SettingsLayer;
use axum::http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == b'\n');
    let query = parts.next().and_then(|q| std::str::from_utf8(q).ok());
    let mut headers = HeaderMap::new();
    if let Some(Ok(v)) = parts.next().map(HeaderValue::from_bytes) {
        headers.insert(header::AUTHORIZATION, v);
    }
    for p in parts {
        if let Ok(v) = HeaderValue::from_bytes(p) {
            headers.append(header::SEC_WEBSOCKET_PROTOCOL, v);
        }
    }
    if let Some(p) = presented(query, &headers) {
        assert!(!p.token.is_empty());
        let settings = SettingsLayer {
            jwt_secret: Some("fuzz-secret".into()),
            ..SettingsLayer::default()
        }
        .resolve();
        if let Ok(verifier) = Verifier::from_settings(&settings) {
            let _ = verifier.verify(&p.token, 1_700_000_000_000);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_ttl(text);
    }
});
