use axum::http::{header, HeaderMap};

/// The `ALLOWED_ORIGINS` policy for browser sockets.
#[derive(Clone, Debug)]
pub struct OriginPolicy {
    /// `None`: any origin (and none) is accepted.
    allow: Option<Vec<String>>,
}

impl OriginPolicy {
    pub fn new(allow: Option<Vec<String>>) -> OriginPolicy {
        OriginPolicy { allow }
    }

    /// With an allowlist, the request's `Origin` must be on it; a missing Origin is refused.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(allow) = &self.allow else {
            return true;
        };
        let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
            return false;
        };
        let origin = origin.trim_end_matches('/');
        allow.iter().any(|a| a.eq_ignore_ascii_case(origin))
    }

    pub fn allowlist(&self) -> Option<&[String]> {
        self.allow.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_origin(o: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, o.parse().unwrap());
        h
    }

    #[test]
    fn allowlist() {
        let open = OriginPolicy::new(None);
        assert!(open.allows(&HeaderMap::new()));
        let closed = OriginPolicy::new(Some(vec!["https://a.example".into()]));
        assert!(closed.allows(&with_origin("https://a.example")));
        assert!(closed.allows(&with_origin("HTTPS://A.EXAMPLE/")));
        assert!(!closed.allows(&with_origin("https://evil.example")));
        assert!(!closed.allows(&HeaderMap::new()));
    }
}
