//! Where a client's token comes from (query, `Authorization`, `Sec-WebSocket-Protocol`), and
//! minting tokens for `activenow token`.

use std::time::Duration;

use activenow_engine::clock;
use axum::http::{header, HeaderMap};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

/// Where the client put its token, and the subprotocol to answer with.
#[derive(Debug, PartialEq, Eq)]
pub struct Presented {
    pub token: String,
    /// Set when the token came in `Sec-WebSocket-Protocol`: browsers fail the handshake unless
    /// the server selects one of the offered protocols (RFC 6455 4.1).
    pub select_protocol: Option<String>,
}

/// The token of an upgrade request: `?token=` first, then `Authorization: Bearer`, then a
/// JWT-shaped entry of `Sec-WebSocket-Protocol`. For the latter the server selects the other
/// offered entry when there is one (`new WebSocket(url, ["jwt", token])`), else the token
/// itself (`new WebSocket(url, [token])`).
pub fn presented(query_token: Option<&str>, headers: &HeaderMap) -> Option<Presented> {
    if let Some(token) = query_token.filter(|t| !t.is_empty()) {
        return Some(Presented {
            token: token.to_owned(),
            select_protocol: None,
        });
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            let (scheme, rest) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty());
    if let Some(token) = bearer {
        return Some(Presented {
            token: token.to_owned(),
            select_protocol: None,
        });
    }
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let token = offered.iter().find(|p| p.split('.').count() == 3)?;
    let select = offered.iter().find(|p| *p != token).unwrap_or(token);
    Some(Presented {
        token: (*token).to_owned(),
        select_protocol: Some((*select).to_owned()),
    })
}

/// A `--ttl` such as `720h`, `30m`, `90s`, `7d` or plain seconds.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 720h, 30m, 90s, 7d"))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "invalid duration unit in {text:?}: use s, m, h or d"
            ))
        }
    };
    n.checked_mul(secs)
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration {text:?} must be positive and fit in 64 bits"))
}

/// An HS256 token for the channels endpoint: `sub` and seed 2's `user_id` both hold the user.
pub fn mint(
    secret: &str,
    user: &str,
    user_type: Option<&str>,
    room_id: Option<&str>,
    ttl: Duration,
    now_ms: u64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let iat = now_ms / 1000;
    let mut claims = json!({
        "sub": user,
        "user_id": user,
        "iat": iat,
        "exp": iat.saturating_add(ttl.as_secs()),
    });
    if let Some(t) = user_type {
        claims["user_type"] = json!(t);
    }
    if let Some(r) = room_id {
        claims["room_id"] = json!(r);
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// Wall-clock milliseconds now.
pub fn now_ms() -> u64 {
    clock::now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_sources() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(None, &h), None);
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, "a.b.c".parse().unwrap());
        assert_eq!(
            presented(None, &h),
            Some(Presented {
                token: "a.b.c".into(),
                select_protocol: Some("a.b.c".into())
            })
        );
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            "jwt, a.b.c".parse().unwrap(),
        );
        assert_eq!(
            presented(None, &h).unwrap().select_protocol.as_deref(),
            Some("jwt")
        );
        h.insert(header::AUTHORIZATION, "Bearer x.y.z".parse().unwrap());
        assert_eq!(presented(None, &h).unwrap().token, "x.y.z");
        assert_eq!(presented(Some("q.q.q"), &h).unwrap().token, "q.q.q");
        assert_eq!(presented(Some(""), &h).unwrap().token, "x.y.z");
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("720h"), Ok(Duration::from_secs(720 * 3600)));
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("0s").is_err());
    }
}
