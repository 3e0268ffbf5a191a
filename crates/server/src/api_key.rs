//! The `Authorization: Bearer <API_KEY>` check of server-side endpoints (session push, channel
//! metadata writes, locks). One rule everywhere: with no `API_KEY` configured those endpoints
//! are disabled (503 `api_key_not_set`: no credential can fix it); a missing or wrong key is
//! 401 `unauthorized`.

use axum::http::{header, HeaderMap, StatusCode};

use crate::close::code;

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    NotSet,
    Wrong,
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NotSet => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Wrong => StatusCode::UNAUTHORIZED,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotSet => code::API_KEY_NOT_SET,
            Refusal::Wrong => code::UNAUTHORIZED,
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Refusal::NotSet => {
                "API_KEY is not set on this server, so server-side calls are disabled"
            }
            Refusal::Wrong => "send Authorization: Bearer <API_KEY>",
        }
    }
}

pub fn check(key: &str, headers: &HeaderMap) -> Result<(), Refusal> {
    if key.is_empty() {
        return Err(Refusal::NotSet);
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    if same(given.as_bytes(), key.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::Wrong)
    }
}

/// Compares every byte whatever the first mismatch, so timing does not leak the key.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn rules() {
        assert_eq!(check("", &bearer("Bearer k")), Err(Refusal::NotSet));
        assert_eq!(check("k", &HeaderMap::new()), Err(Refusal::Wrong));
        assert_eq!(check("k", &bearer("Bearer x")), Err(Refusal::Wrong));
        assert_eq!(check("k", &bearer("k")), Err(Refusal::Wrong));
        assert_eq!(check("k", &bearer("Bearer k")), Ok(()));
    }
}
