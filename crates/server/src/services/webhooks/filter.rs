//! `WEBHOOK_EVENTS` and `WEBHOOK_ROOMS`: which event types are sent, and for which rooms.

/// Every event type a webhook can carry.
pub const EVENT_TYPES: &[&str] = &[
    "user.online",
    "user.offline",
    "room.occupied",
    "room.vacated",
    "member.joined",
    "member.left",
    "member.updated",
];

/// The parsed filters.
#[derive(Clone, Debug)]
pub struct Filter {
    /// `None`: every type (`*`).
    types: Option<Vec<&'static str>>,
    /// Glob patterns (`*` matches any run of characters, including none).
    rooms: Vec<String>,
}

impl Filter {
    /// Parses `events` (a comma list of [`EVENT_TYPES`] or `*`) and `rooms` (a comma list
    /// of glob patterns). Each must name at least one entry.
    pub fn parse(events: &str, rooms: &str) -> Result<Filter, (&'static str, String)> {
        let mut types: Option<Vec<&'static str>> = Some(Vec::new());
        let mut any = false;
        for t in events.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            any = true;
            if t == "*" {
                types = None;
                continue;
            }
            let Some(known) = EVENT_TYPES.iter().find(|k| **k == t) else {
                return Err((
                    "WEBHOOK_EVENTS",
                    format!(
                        "unknown event type {t:?} (known: *, {})",
                        EVENT_TYPES.join(", ")
                    ),
                ));
            };
            if let Some(list) = types.as_mut() {
                list.push(*known);
            }
        }
        if !any {
            return Err(("WEBHOOK_EVENTS", "must name at least one type, or *".into()));
        }
        let mut patterns = Vec::new();
        for p in rooms.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if p.chars().any(char::is_control) {
                return Err((
                    "WEBHOOK_ROOMS",
                    format!("pattern {p:?} has a control character"),
                ));
            }
            patterns.push(p.to_owned());
        }
        if patterns.is_empty() {
            return Err((
                "WEBHOOK_ROOMS",
                "must name at least one pattern, or *".into(),
            ));
        }
        Ok(Filter {
            types,
            rooms: patterns,
        })
    }

    pub fn wants(&self, kind: &str) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(&kind))
    }

    /// Whether any room event type passes (else the room observer is not registered).
    pub fn wants_room_events(&self) -> bool {
        EVENT_TYPES[2..].iter().any(|k| self.wants(k))
    }

    pub fn wants_room(&self, room: &str) -> bool {
        self.rooms.iter().any(|p| glob(p, room))
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("*", "anything"));
        assert!(glob("lobby", "lobby"));
        assert!(!glob("lobby", "lobby2"));
        assert!(glob("game-*", "game-1"));
        assert!(!glob("game-*", "xgame-1"));
        assert!(glob("*-eu", "room-eu"));
        assert!(!glob("*-eu", "room-us"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(glob("a*b*c", "abc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("pusher:*:presence-*", "pusher:1:presence-x"));
    }

    #[test]
    fn filters_parse_and_refuse() {
        let f = Filter::parse("user.online,user.offline", "*").unwrap();
        assert!(f.wants("user.online") && !f.wants("member.joined"));
        assert!(!f.wants_room_events());
        let f = Filter::parse(" * ", "game-*, lobby").unwrap();
        assert!(f.wants("member.left") && f.wants_room_events());
        assert!(f.wants_room("lobby") && f.wants_room("game-7") && !f.wants_room("chat"));
        assert_eq!(
            Filter::parse("member.join", "*").unwrap_err().0,
            "WEBHOOK_EVENTS"
        );
        assert_eq!(Filter::parse(" , ", "*").unwrap_err().0, "WEBHOOK_EVENTS");
        assert_eq!(Filter::parse("*", "").unwrap_err().0, "WEBHOOK_ROOMS");
    }
}
