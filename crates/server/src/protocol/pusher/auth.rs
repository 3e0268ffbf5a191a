//! Pusher's signatures: the channel authorization a client presents in `pusher:subscribe`
//! (`key:hex(HMAC-SHA256(secret, "socket_id:channel[:channel_data]"))`) and the signed query
//! of every HTTP API call (`auth_key`, `auth_timestamp`, `auth_version`, `body_md5`,
//! `auth_signature`). Every comparison of a signature is constant-time (`Mac::verify_slice`).

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::App;

type HmacSha256 = Hmac<Sha256>;

/// How far `auth_timestamp` may be from the server's clock, seconds (Pusher: 600).
pub const MAX_TIMESTAMP_SKEW_SECS: u64 = 600;

fn mac(secret: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this never fails.
    HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!())
}

/// `hex(HMAC-SHA256(secret, message))`.
pub fn sign(secret: &str, message: &str) -> String {
    let mut m = mac(secret);
    m.update(message.as_bytes());
    data_encoding::HEXLOWER.encode(&m.finalize().into_bytes())
}

/// Whether `signature_hex` is the HMAC of `message`, compared in constant time.
fn verify(secret: &str, message: &str, signature_hex: &str) -> bool {
    let Ok(sig) = data_encoding::HEXLOWER_PERMISSIVE.decode(signature_hex.as_bytes()) else {
        return false;
    };
    let mut m = mac(secret);
    m.update(message.as_bytes());
    m.verify_slice(&sig).is_ok()
}

/// Checks a subscription's `auth` (`key:signature`) for `socket_id` and `channel`, with the
/// presence `channel_data` string exactly as the client sent it.
pub fn verify_channel(
    app: &App,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
    auth: &str,
) -> bool {
    let Some((key, signature)) = auth.split_once(':') else {
        return false;
    };
    if key != app.key {
        return false;
    }
    let message = match channel_data {
        Some(data) => format!("{socket_id}:{channel}:{data}"),
        None => format!("{socket_id}:{channel}"),
    };
    verify(&app.secret, &message, signature)
}

/// Checks a `pusher:signin`'s `auth` (`key:signature` over `"socket_id::user::user_data"`).
pub fn verify_signin(app: &App, socket_id: &str, user_data: &str, auth: &str) -> bool {
    let Some((key, signature)) = auth.split_once(':') else {
        return false;
    };
    key == app.key
        && verify(
            &app.secret,
            &format!("{socket_id}::user::{user_data}"),
            signature,
        )
}

/// Why a signed HTTP request was refused (401 with this text, as Pusher answers).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestAuthError {
    #[error("Unknown auth_key")]
    UnknownKey,
    #[error("auth_key, auth_timestamp, auth_version and auth_signature are required")]
    Missing,
    #[error("Only auth_version=1.0 is supported")]
    Version,
    #[error("Timestamp expired: given {given}, current {now}, allowed skew 600 seconds")]
    Expired { given: String, now: u64 },
    #[error("body_md5 does not match the body")]
    BodyMd5,
    #[error("Invalid signature: you should have sent HmacSHA256Hex(\"{expected}\", your_secret)")]
    Signature { expected: String },
}

/// Verifies a signed API request: `params` are the decoded query parameters, `path` the
/// request path without the query, `body` the raw body.
pub fn verify_request(
    app: &App,
    method: &str,
    path: &str,
    params: &BTreeMap<String, String>,
    body: &[u8],
    now_secs: u64,
) -> Result<(), RequestAuthError> {
    let get = |k: &str| params.get(k).map(String::as_str);
    let (Some(key), Some(ts), Some(version), Some(signature)) = (
        get("auth_key"),
        get("auth_timestamp"),
        get("auth_version"),
        get("auth_signature"),
    ) else {
        return Err(RequestAuthError::Missing);
    };
    if key != app.key {
        return Err(RequestAuthError::UnknownKey);
    }
    if version != "1.0" {
        return Err(RequestAuthError::Version);
    }
    let fresh = ts
        .parse::<u64>()
        .is_ok_and(|t| t.abs_diff(now_secs) <= MAX_TIMESTAMP_SKEW_SECS);
    if !fresh {
        return Err(RequestAuthError::Expired {
            given: ts.chars().take(20).collect(),
            now: now_secs,
        });
    }
    if !body.is_empty() || get("body_md5").is_some() {
        let digest = data_encoding::HEXLOWER.encode(&md5(body));
        if get("body_md5") != Some(digest.as_str()) {
            return Err(RequestAuthError::BodyMd5);
        }
    }
    let query = params
        .iter()
        .filter(|(k, _)| k.as_str() != "auth_signature")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let expected = format!("{method}\n{path}\n{query}");
    if verify(&app.secret, &expected, signature) {
        Ok(())
    } else {
        Err(RequestAuthError::Signature {
            expected: expected.replace('\n', "\\n"),
        })
    }
}

/// MD5 (RFC 1321), only for Pusher's `body_md5`: a checksum the protocol requires, not a
/// security boundary (the HMAC over the query that carries it is).
pub fn md5(input: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: [u32; 64] =
        std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32);
    let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut msg = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    for chunk in msg.chunks_exact(64) {
        let m: [u32; 16] = std::array::from_fn(|i| {
            u32::from_le_bytes([
                chunk[4 * i],
                chunk[4 * i + 1],
                chunk[4 * i + 2],
                chunk[4 * i + 3],
            ])
        });
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(k[i])
                .wrapping_add(m[g])
                .rotate_left(S[i]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(rotated);
        }
        state[0] = state[0].wrapping_add(a);
        state[1] = state[1].wrapping_add(b);
        state[2] = state[2].wrapping_add(c);
        state[3] = state[3].wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, word) in state.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        let config = super::super::AppConfig {
            id: "1".into(),
            key: "278d425bdf160c739803".into(),
            secret: "7ad3773142a6692b25b8".into(),
            max_presence_members: None,
            client_events: None,
            subscription_count_events: None,
            max_connections: None,
            webhook_url: None,
        };
        App::new(&config, &crate::config::Settings::default())
    }

    #[test]
    fn md5_vectors() {
        let hex = |s: &str| data_encoding::HEXLOWER.encode(&md5(s.as_bytes()));
        assert_eq!(hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex("12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    /// The example of Pusher's authentication docs.
    #[test]
    fn channel_signature_matches_pushers_docs() {
        let app = app();
        let sig = sign(&app.secret, "1234.1234:private-foobar");
        assert_eq!(
            sig,
            "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
        let auth = format!("{}:{sig}", app.key);
        assert!(verify_channel(
            &app,
            "1234.1234",
            "private-foobar",
            None,
            &auth
        ));
        assert!(!verify_channel(
            &app,
            "1234.1235",
            "private-foobar",
            None,
            &auth
        ));
        assert!(!verify_channel(
            &app,
            "1234.1234",
            "private-foobar",
            None,
            &format!("otherkey:{sig}")
        ));
        assert!(!verify_channel(
            &app,
            "1234.1234",
            "private-foobar",
            None,
            "nonsense"
        ));
    }

    #[test]
    fn request_signature() {
        let app = app();
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        let mut params = BTreeMap::new();
        params.insert("auth_key".to_owned(), app.key.clone());
        params.insert("auth_timestamp".to_owned(), "1353088179".to_owned());
        params.insert("auth_version".to_owned(), "1.0".to_owned());
        params.insert(
            "body_md5".to_owned(),
            data_encoding::HEXLOWER.encode(&md5(body)),
        );
        let query = params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let sig = sign(&app.secret, &format!("POST\n/apps/1/events\n{query}"));
        params.insert("auth_signature".to_owned(), sig);
        let now = 1_353_088_179;
        let ok = verify_request(&app, "POST", "/apps/1/events", &params, body, now);
        assert_eq!(ok, Ok(()));
        let late = verify_request(&app, "POST", "/apps/1/events", &params, body, now + 601);
        assert!(matches!(late, Err(RequestAuthError::Expired { .. })));
        let tampered = verify_request(&app, "POST", "/apps/1/events", &params, b"{}", now);
        assert_eq!(tampered, Err(RequestAuthError::BodyMd5));
        let other_path = verify_request(&app, "POST", "/apps/2/events", &params, body, now);
        assert!(matches!(
            other_path,
            Err(RequestAuthError::Signature { .. })
        ));
    }
}
