//! The HTTP timeouts and body limits, from the settings: read by the accept loop
//! (`serve/`), the body reader (`body.rs`) and the router's body limit.

use std::time::Duration;

/// The three timeouts and the body limits of every HTTP connection.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    pub header: Duration,
    pub idle: Duration,
    pub body: Duration,
    /// `HTTP_MAX_BODY_BYTES`: every request body but the two below.
    pub max_body: usize,
    /// Engine.IO polling bodies carry messages of up to `SOCKETIO_MAX_PAYLOAD_BYTES`.
    pub max_polling_body: usize,
    /// A metadata write carries one value of up to `METADATA_MAX_VALUE_BYTES` and the rest
    /// of the request within `HTTP_MAX_BODY_BYTES`.
    pub max_metadata_body: usize,
}

impl HttpLimits {
    pub fn from_settings(s: &crate::config::Settings) -> HttpLimits {
        HttpLimits {
            header: Duration::from_millis(s.http_header_timeout_ms),
            idle: Duration::from_millis(s.http_idle_timeout_ms),
            body: Duration::from_millis(s.http_body_timeout_ms),
            max_body: s.http_max_body_bytes,
            max_polling_body: s.http_max_body_bytes.max(s.socketio_max_payload_bytes),
            max_metadata_body: s.http_max_body_bytes + s.metadata_max_value_bytes,
        }
    }

    /// The body limit of a request to `path`.
    pub fn max_body_for(&self, path: &str) -> usize {
        if path.starts_with("/socket.io") {
            self.max_polling_body
        } else if path.starts_with("/v1/channels/") && path.ends_with("/metadata") {
            self.max_metadata_body
        } else {
            self.max_body
        }
    }

    /// The largest body any route accepts (the handlers' own extractor limit).
    pub fn largest_body(&self) -> usize {
        self.max_body
            .max(self.max_polling_body)
            .max(self.max_metadata_body)
    }
}
