//! The HTTP timeouts and body limit, from the settings: read by the accept loop
//! (`serve.rs`), the body reader (`body.rs`) and the router's body limit.

use std::time::Duration;

/// The three timeouts and the body limit of every HTTP connection.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    pub header: Duration,
    pub idle: Duration,
    pub body: Duration,
    pub max_body: usize,
}

impl HttpLimits {
    pub fn from_settings(s: &crate::config::Settings) -> HttpLimits {
        HttpLimits {
            header: Duration::from_millis(s.http_header_timeout_ms),
            idle: Duration::from_millis(s.http_idle_timeout_ms),
            body: Duration::from_millis(s.http_body_timeout_ms),
            // Socket.IO polling bodies are sized by MAX_FRAME_BYTES (its max payload).
            max_body: s.http_max_body_bytes.max(s.max_frame_bytes),
        }
    }
}
