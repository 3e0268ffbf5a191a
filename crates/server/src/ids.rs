//! Ids the server mints for clients that bring none (ActiveNow sockets, login sessions).

use activenow_engine::Identity;

/// A random session id for clients that bring none (UUID v4 text).
pub fn random_session_id() -> Identity {
    let b: [u8; 16] = rand::random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let id = format!(
        "{}-{}-4{}-{:x}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        (b[8] & 0x3) | 0x8,
        &hex[17..20],
        &hex[20..32]
    );
    Identity::new(&id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_look_like_uuids() {
        let id = random_session_id();
        let s = id.as_str();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert_ne!(random_session_id(), id);
    }
}
