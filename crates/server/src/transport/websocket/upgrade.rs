//! The HTTP/1.1 upgrade to a WebSocket (RFC 6455 section 4.2): the request's checks, the 101
//! answer, and the hand-over of the accepted TCP stream to [`WebSocket`] once hyper lets go
//! of it.

use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};

use super::frame::Limits;
use super::socket::{Config, WebSocket};
use crate::transport::serve::Stream;

/// An upgrade request that passed the checks; [`on_upgrade`](Self::on_upgrade) answers it.
pub struct WebSocketUpgrade {
    accept: HeaderValue,
    offered: Option<HeaderValue>,
    selected: Option<HeaderValue>,
    on_upgrade: hyper::upgrade::OnUpgrade,
    config: Config,
}

/// Why a request is not a WebSocket upgrade (the same statuses and texts as axum's).
#[derive(Debug)]
pub enum WebSocketUpgradeRejection {
    MethodNotGet,
    InvalidConnectionHeader,
    InvalidUpgradeHeader,
    InvalidWebSocketVersionHeader,
    WebSocketKeyHeaderMissing,
    ConnectionNotUpgradable,
}

impl IntoResponse for WebSocketUpgradeRejection {
    fn into_response(self) -> Response {
        use WebSocketUpgradeRejection::*;
        let (status, text) = match self {
            MethodNotGet => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Request method must be `GET`",
            ),
            InvalidConnectionHeader => (
                StatusCode::BAD_REQUEST,
                "Connection header did not include 'upgrade'",
            ),
            InvalidUpgradeHeader => (
                StatusCode::BAD_REQUEST,
                "`Upgrade` header did not include 'websocket'",
            ),
            InvalidWebSocketVersionHeader => (
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Version` header did not include '13'",
            ),
            WebSocketKeyHeaderMissing => (
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Key` header missing",
            ),
            ConnectionNotUpgradable => (
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ),
        };
        (status, text).into_response()
    }
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + the RFC's GUID)).
fn accept_key(key: &[u8]) -> HeaderValue {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let encoded = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    // Base64 is always a valid header value.
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = WebSocketUpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        use WebSocketUpgradeRejection::*;
        if parts.method != Method::GET {
            return Err(MethodNotGet);
        }
        let h = &parts.headers;
        if !has_token(h, header::CONNECTION, "upgrade") {
            return Err(InvalidConnectionHeader);
        }
        if !has_token(h, header::UPGRADE, "websocket") {
            return Err(InvalidUpgradeHeader);
        }
        if h.get(header::SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            return Err(InvalidWebSocketVersionHeader);
        }
        let accept = match h.get(header::SEC_WEBSOCKET_KEY) {
            Some(key) => accept_key(key.as_bytes()),
            None => return Err(WebSocketKeyHeaderMissing),
        };
        let offered = h.get(header::SEC_WEBSOCKET_PROTOCOL).cloned();
        let on_upgrade = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or(ConnectionNotUpgradable)?;
        Ok(WebSocketUpgrade {
            accept,
            offered,
            selected: None,
            on_upgrade,
            config: Config {
                read_chunk: 4096,
                write_buffer: 4096,
                max_write_buffer: 1 << 20,
                limits: Limits {
                    max_frame: 1 << 16,
                    max_message: 1 << 16,
                },
            },
        })
    }
}

impl WebSocketUpgrade {
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Answers with the first protocol the client offered that is in `known`, if any.
    pub fn protocols<I: IntoIterator<Item = String>>(mut self, known: I) -> Self {
        let known: Vec<String> = known.into_iter().collect();
        self.selected = self
            .offered
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|offered| {
                offered
                    .split(',')
                    .map(str::trim)
                    .find(|p| known.iter().any(|k| k == p))
                    .and_then(|p| HeaderValue::from_str(p).ok())
            });
        self
    }

    /// Answers 101 and runs `callback` with the socket once hyper hands the stream over.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let WebSocketUpgrade {
            accept,
            selected,
            on_upgrade,
            config,
            ..
        } = self;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(error = %e, "WebSocket upgrade failed");
                    return;
                }
            };
            match upgraded.downcast::<TokioIo<Stream>>() {
                Ok(parts) => {
                    let socket = WebSocket::new(parts.io.into_inner(), parts.read_buf, config);
                    callback(socket).await;
                }
                // Every connection comes from our accept loop (`serve`), so this is a bug.
                Err(_) => tracing::error!("WebSocket upgrade of a stream not accepted by serve()"),
            }
        });
        let mut response = (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::CONNECTION, HeaderValue::from_static("upgrade")),
                (header::UPGRADE, HeaderValue::from_static("websocket")),
            ],
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        if let Some(p) = selected {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_the_rfcs_example() {
        // RFC 6455 section 1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
