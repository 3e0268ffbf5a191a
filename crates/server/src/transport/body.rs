//! Request bodies are read whole, within `HTTP_BODY_TIMEOUT_MS` and `HTTP_MAX_BODY_BYTES`,
//! before any handler runs (see [`crate::transport::serve`]).

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};

use crate::error::http_error;
use crate::transport::http_limits::HttpLimits;

/// Buffers a request body within `HTTP_BODY_TIMEOUT_MS` and `HTTP_MAX_BODY_BYTES` (the
/// handlers read whole bodies anyway), so a slow or endless body gets 408 or 413 and the
/// connection closes, instead of holding a handler.
pub async fn read_body(
    req: Request<Body>,
    limits: &HttpLimits,
) -> Result<Request<Body>, Response<Body>> {
    let max_body = limits.max_body_for(req.uri().path());
    let headers = req.headers();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    if length.unwrap_or(0) == 0 && !chunked {
        return Ok(req);
    }
    let too_large = || {
        closing(http_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            crate::close::code::BODY_TOO_LARGE,
            "the request body is larger than HTTP_MAX_BODY_BYTES",
        ))
    };
    if length.is_some_and(|n| n > max_body as u64) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(limits.body, axum::body::to_bytes(body, max_body)).await {
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Ok(Err(e)) => {
            let limit = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if limit {
                Err(too_large())
            } else {
                Err(closing(http_error(
                    StatusCode::BAD_REQUEST,
                    crate::close::code::BAD_BODY,
                    "the request body could not be read",
                )))
            }
        }
        Err(_) => Err(closing(http_error(
            StatusCode::REQUEST_TIMEOUT,
            crate::close::code::BODY_TIMEOUT,
            "the request body did not arrive within HTTP_BODY_TIMEOUT_MS",
        ))),
    }
}

/// The rest of a refused body is not read: the connection closes after the answer.
fn closing(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}
