//! Token verification of the channels endpoint: which keys and algorithms verify a client's
//! JWT and which claims it must carry.
//!
//! Keys decide algorithms: JWT_SECRET verifies HS256 only, an RSA public key RS256 only, an
//! EC P-256 key ES256 only. The algorithm named in a token's header only picks among those
//! keys, so a token can never make the server verify an HMAC with a public key (the classic
//! algorithm confusion) nor skip verification with `none`. `exp` and `nbf` are checked here
//! rather than by the library, because the library silently skips a non-integer `exp`.

use activenow_engine::Identity;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::close::auth_code;
use crate::config::Settings;

/// The verified holder of a token.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    /// `sub`, or seed 2's `user_id`: the identity a subscription is present as and the
    /// `from` of every message this client publishes.
    pub user: Identity,
    pub user_type: Option<String>,
    pub room_id: Option<String>,
    /// `exp` + JWT_LEEWAY in wall-clock milliseconds: when an open socket of this holder is
    /// closed with 4001 `token_expired` (unless it refreshed). `None`: no `exp`.
    pub expires_at_ms: Option<u64>,
}

/// Why a token was refused; `code` is the `error` of the 401 body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct AuthError {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> AuthError {
    AuthError {
        code,
        message: message.into(),
    }
}

/// A key that cannot be used; the server refuses to start with it.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read JWT_PUBLIC_KEY_FILE {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("JWT_PUBLIC_KEY_FILE {path} is neither an RSA nor an EC P-256 public key in PEM")]
    Format { path: String },
}

/// Verifies client tokens with the configured keys.
pub struct Verifier {
    secret: Option<DecodingKey>,
    /// The public key and the one algorithm it verifies (RS256 or ES256).
    public: Option<(Algorithm, DecodingKey)>,
    leeway_secs: u64,
    require_exp: bool,
    max_user_bytes: usize,
}

impl Verifier {
    /// Loads the keys the settings name; no key at all is allowed (everything is refused).
    pub fn from_settings(s: &Settings) -> Result<Verifier, KeyError> {
        let secret =
            (!s.jwt_secret.is_empty()).then(|| DecodingKey::from_secret(s.jwt_secret.as_bytes()));
        let public = if s.jwt_public_key_file.is_empty() {
            None
        } else {
            let path = s.jwt_public_key_file.clone();
            let pem = std::fs::read(&path).map_err(|source| KeyError::Read {
                path: path.clone(),
                source,
            })?;
            if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                Some((Algorithm::RS256, key))
            } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
                Some((Algorithm::ES256, key))
            } else {
                return Err(KeyError::Format { path });
            }
        };
        Ok(Verifier {
            secret,
            public,
            leeway_secs: s.jwt_leeway,
            require_exp: s.jwt_require_exp,
            max_user_bytes: s.max_session_id_bytes,
        })
    }

    /// A verifier that refuses everything (used when the configured key cannot be loaded).
    pub fn refusing(s: &Settings) -> Verifier {
        Verifier {
            secret: None,
            public: None,
            leeway_secs: s.jwt_leeway,
            require_exp: s.jwt_require_exp,
            max_user_bytes: s.max_session_id_bytes,
        }
    }

    pub fn is_configured(&self) -> bool {
        self.secret.is_some() || self.public.is_some()
    }

    fn accepted(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.secret.is_some() {
            out.push("HS256");
        }
        match &self.public {
            Some((Algorithm::RS256, _)) => out.push("RS256"),
            Some(_) => out.push("ES256"),
            None => {}
        }
        out
    }

    /// Verifies `token` at `now_ms` (wall clock) and returns its holder.
    pub fn verify(&self, token: &str, now_ms: u64) -> Result<Principal, AuthError> {
        if !self.is_configured() {
            return Err(refuse(
                auth_code::NOT_CONFIGURED,
                "channels are disabled: the server has no JWT_SECRET or JWT_PUBLIC_KEY_FILE",
            ));
        }
        let alg = header_alg(token)?;
        let (algorithm, key) = match (alg.as_str(), &self.secret, &self.public) {
            ("HS256", Some(secret), _) => (Algorithm::HS256, secret),
            ("RS256", _, Some((Algorithm::RS256, key))) => (Algorithm::RS256, key),
            ("ES256", _, Some((Algorithm::ES256, key))) => (Algorithm::ES256, key),
            _ => {
                return Err(refuse(
                    auth_code::ALGORITHM,
                    format!(
                        "token is signed with {alg:?}; this server accepts {}",
                        self.accepted().join(", ")
                    ),
                ))
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidAlgorithm => refuse(auth_code::ALGORITHM, "unexpected algorithm"),
                ErrorKind::Json(_) => refuse(
                    auth_code::INVALID,
                    "token claims are not a JSON object of the expected types",
                ),
                _ => refuse(auth_code::INVALID, "token signature does not verify"),
            })?
            .claims;
        let expires_at_ms = self.check_times(&claims, now_ms)?;
        let user = subject(claims.sub.as_ref())
            .or_else(|| subject(claims.user_id.as_ref()))
            .ok_or_else(|| refuse(auth_code::NO_SUBJECT, "token has no sub or user_id claim"))?;
        let user = Identity::parse(&user, self.max_user_bytes).map_err(|_| {
            refuse(
                auth_code::NO_SUBJECT,
                format!(
                    "the user id must be 1-{} bytes without control characters",
                    self.max_user_bytes
                ),
            )
        })?;
        Ok(Principal {
            user,
            user_type: subject(claims.user_type.as_ref()),
            room_id: subject(claims.room_id.as_ref()),
            expires_at_ms,
        })
    }

    /// Checks `exp` and `nbf`; returns `exp` + leeway in milliseconds.
    fn check_times(&self, claims: &Claims, now_ms: u64) -> Result<Option<u64>, AuthError> {
        let now = now_ms as f64 / 1000.0;
        let leeway = self.leeway_secs as f64;
        let exp = numeric_date(claims.exp.as_ref())?;
        match exp {
            Some(exp) if exp + leeway <= now => {
                return Err(refuse(auth_code::EXPIRED, "token has expired"));
            }
            None if self.require_exp => {
                return Err(refuse(
                    auth_code::EXPIRED,
                    "token has no exp claim (JWT_REQUIRE_EXP)",
                ));
            }
            _ => {}
        }
        if let Some(nbf) = numeric_date(claims.nbf.as_ref())? {
            if nbf - leeway > now {
                return Err(refuse(auth_code::EXPIRED, "token is not valid yet (nbf)"));
            }
        }
        // Saturating float-to-int: an absurd `exp` means "never" rather than a wrap-around.
        Ok(exp.map(|exp| ((exp + leeway) * 1000.0) as u64))
    }
}

/// The claims read; others are ignored.
#[derive(Deserialize)]
struct Claims {
    sub: Option<Value>,
    user_id: Option<Value>,
    user_type: Option<Value>,
    room_id: Option<Value>,
    exp: Option<Value>,
    nbf: Option<Value>,
}

/// A user id claim: a non-empty string, or a number (some issuers use numeric user ids).
fn subject(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A NumericDate: seconds since the epoch, possibly fractional.
fn numeric_date(v: Option<&Value>) -> Result<Option<f64>, AuthError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(refuse(auth_code::INVALID, "exp and nbf must be numbers")),
    }
}

/// The `alg` of a token's header, read by hand so that algorithms the library does not know
/// (`none`) are reported as the wrong algorithm rather than as garbage. A header with `crit`
/// is refused: it lists extensions the verifier must understand (RFC 7515 4.1.11), and this
/// one understands none.
fn header_alg(token: &str) -> Result<String, AuthError> {
    let not_jwt = || refuse(auth_code::INVALID, "not a JWT (header.payload.signature)");
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_jwt());
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head.trim_end_matches('='))
        .map_err(|_| not_jwt())?;
    let header: Value = serde_json::from_slice(&bytes).map_err(|_| not_jwt())?;
    if header.get("crit").is_some() {
        return Err(refuse(
            auth_code::INVALID,
            "token header has crit extensions this server does not understand",
        ));
    }
    match header.get("alg") {
        Some(Value::String(alg)) => Ok(alg.clone()),
        _ => Err(refuse(auth_code::ALGORITHM, "token header has no alg")),
    }
}

#[cfg(test)]
mod tests;
