//! A limit that may be left unset, so that another setting or a default decides.

/// Subscribers per channel when neither CHANNEL_MAX_USERS nor MAX_ROOM_USERS says otherwise
/// (seed 2's `max_room_users: 50`).
pub const DEFAULT_CHANNEL_MAX_USERS: u64 = 50;

/// A limit that can be left unset (so that another setting or a default decides); `0` means
/// no limit. Prints as an empty string when unset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(from = "u64")]
pub struct OptionalLimit(pub Option<u64>);

impl From<u64> for OptionalLimit {
    fn from(n: u64) -> Self {
        OptionalLimit(Some(n))
    }
}

impl std::str::FromStr for OptionalLimit {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(OptionalLimit(None));
        }
        s.parse().map(|n| OptionalLimit(Some(n)))
    }
}

impl std::fmt::Display for OptionalLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => Ok(()),
        }
    }
}
