//! Tests of token verification against tokens a hostile or careless issuer could sign:
//! wrong keys and algorithms (`none` included), bad claim types, `crit`, expiry and leeway.

use super::*;
use crate::protocol::channels::token::mint;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use std::time::Duration;

const NOW: u64 = 1_800_000_000_000;

fn verifier(secret: &str) -> Verifier {
    let s = Settings {
        jwt_secret: secret.into(),
        ..Settings::default()
    };
    Verifier::from_settings(&s).unwrap()
}

fn sign(alg: Algorithm, claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[test]
fn minted_tokens_verify() {
    let t = mint(
        "s3cret",
        "u1",
        Some("desktop"),
        Some("r1"),
        Duration::from_secs(60),
        NOW,
    )
    .unwrap();
    let p = verifier("s3cret").verify(&t, NOW).unwrap();
    assert_eq!(p.user, Identity::new("u1"));
    assert_eq!(p.user_type.as_deref(), Some("desktop"));
    assert_eq!(p.room_id.as_deref(), Some("r1"));
}

#[test]
fn refusals_say_why() {
    let v = verifier("s3cret");
    let code = |t: &str| v.verify(t, NOW).unwrap_err().code;
    let exp = (NOW / 1000) as i64;
    assert_eq!(code("abc"), auth_code::INVALID);
    assert_eq!(
        code(&sign(Algorithm::HS256, json!({"sub":"u"}), "other")),
        auth_code::INVALID
    );
    assert_eq!(
        code(&sign(Algorithm::HS512, json!({"sub":"u"}), "s3cret")),
        auth_code::ALGORITHM
    );
    assert_eq!(
        code(&sign(
            Algorithm::HS256,
            json!({"sub":"u","exp":exp - 6}),
            "s3cret"
        )),
        auth_code::EXPIRED
    );
    assert!(
        v.verify(
            &sign(Algorithm::HS256, json!({"sub":"u","exp":exp - 4}), "s3cret"),
            NOW
        )
        .is_ok(),
        "within the leeway"
    );
    assert_eq!(
        code(&sign(
            Algorithm::HS256,
            json!({"sub":"u","exp":"soon"}),
            "s3cret"
        )),
        auth_code::INVALID
    );
    assert_eq!(
        code(&sign(
            Algorithm::HS256,
            json!({"sub":"u","nbf":exp + 60}),
            "s3cret"
        )),
        auth_code::EXPIRED
    );
    assert_eq!(
        code(&sign(Algorithm::HS256, json!({"user_type":"x"}), "s3cret")),
        auth_code::NO_SUBJECT
    );
    assert_eq!(
        code(&sign(Algorithm::HS256, json!({"sub":""}), "s3cret")),
        auth_code::NO_SUBJECT
    );
    // alg "none": header {"alg":"none"}, payload {"sub":"u"}, empty signature.
    assert_eq!(
        code("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0."),
        auth_code::ALGORITHM
    );
    // user_id (seed 2) and numeric ids are subjects too; sub wins.
    let p = v
        .verify(
            &sign(Algorithm::HS256, json!({"user_id":42}), "s3cret"),
            NOW,
        )
        .unwrap();
    assert_eq!(p.user, Identity::new("42"));
    let p = v
        .verify(
            &sign(Algorithm::HS256, json!({"user_id":"a","sub":"b"}), "s3cret"),
            NOW,
        )
        .unwrap();
    assert_eq!(p.user, Identity::new("b"));
}

#[test]
fn crit_headers_are_refused_and_expiry_is_reported() {
    let v = verifier("s3cret");
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let signed = format!(
        "{}.{}",
        b64(json!({"alg":"HS256","typ":"JWT","crit":["http://example.com/x"]})),
        b64(json!({"sub":"u"}))
    );
    let sig = jsonwebtoken::crypto::sign(
        signed.as_bytes(),
        &EncodingKey::from_secret(b"s3cret"),
        Algorithm::HS256,
    )
    .unwrap();
    let t = format!("{signed}.{sig}");
    assert_eq!(v.verify(&t, NOW).unwrap_err().code, auth_code::INVALID);
    let exp = NOW / 1000 + 60;
    let t = sign(Algorithm::HS256, json!({"sub":"u","exp":exp}), "s3cret");
    assert_eq!(
        v.verify(&t, NOW).unwrap().expires_at_ms,
        Some((exp + 5) * 1000)
    );
    let t = sign(Algorithm::HS256, json!({"sub":"u"}), "s3cret");
    assert_eq!(v.verify(&t, NOW).unwrap().expires_at_ms, None);
}

#[test]
fn no_key_refuses_everything() {
    let v = Verifier::from_settings(&Settings::default()).unwrap();
    let t = mint("", "u1", None, None, Duration::from_secs(60), NOW).unwrap();
    assert_eq!(
        v.verify(&t, NOW).unwrap_err().code,
        auth_code::NOT_CONFIGURED
    );
}

#[test]
fn unusable_key_files_are_errors() {
    let with_key = |path: &str| Settings {
        jwt_public_key_file: path.into(),
        ..Settings::default()
    };
    assert!(matches!(
        Verifier::from_settings(&with_key("/nonexistent/key.pem")),
        Err(KeyError::Read { .. })
    ));
    let not_a_key = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    assert!(matches!(
        Verifier::from_settings(&with_key(not_a_key)),
        Err(KeyError::Format { .. })
    ));
}

#[test]
fn require_exp() {
    let s = Settings {
        jwt_secret: "k".into(),
        jwt_require_exp: true,
        ..Settings::default()
    };
    let v = Verifier::from_settings(&s).unwrap();
    let t = sign(Algorithm::HS256, json!({"sub":"u"}), "k");
    assert_eq!(v.verify(&t, NOW).unwrap_err().code, auth_code::EXPIRED);
}
