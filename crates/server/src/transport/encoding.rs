//! Percent-encoding of request targets: a path or query whose percent-decoding is not UTF-8
//! is refused with 400 `bad_encoding` before any handler sees it. The extractors would decode
//! it lossily, and `%FF` and `%FE` would both become U+FFFD: two ids one identity.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::close::code;
use crate::error::http_error;

/// Whether `text` percent-decodes to UTF-8 (`+` and malformed escapes are left as they are,
/// as the query parsers do).
pub fn decodes_to_utf8(text: &str) -> bool {
    if !text.contains('%') {
        return true;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(value as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&out).is_ok()
}

/// The middleware: 400 for a path or query that does not decode to UTF-8.
pub async fn refuse_lossy(req: Request, next: Next) -> Response {
    let uri = req.uri();
    if !decodes_to_utf8(uri.path()) || !uri.query().is_none_or(decodes_to_utf8) {
        return http_error(
            StatusCode::BAD_REQUEST,
            code::BAD_ENCODING,
            "the URL's percent-encoding does not decode to UTF-8",
        );
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_or_not() {
        assert!(decodes_to_utf8("room=a&socket_session_id=b"));
        assert!(decodes_to_utf8("id=%E4%B8%AD"));
        assert!(decodes_to_utf8("id=100%"));
        assert!(decodes_to_utf8("id=%zz"));
        assert!(!decodes_to_utf8("id=%FF"));
        assert!(!decodes_to_utf8("id=%FE"));
        assert!(!decodes_to_utf8("/v1/ws/qr/%C3"));
    }
}
