//! `SOCKETIO_RELAY_EVENTS`: which custom events are relayed. Apart from the relay itself so
//! the settings can validate the list without importing the Socket.IO adapter.

use std::collections::HashSet;

/// The event names and prefixes that are relayed.
#[derive(Debug, Default)]
pub struct RelayEvents {
    names: HashSet<String>,
    prefixes: Vec<String>,
}

impl RelayEvents {
    /// Parses `SOCKETIO_RELAY_EVENTS`: comma-separated names or prefixes ending in `*`.
    pub fn parse(list: &str) -> Result<RelayEvents, String> {
        let mut out = RelayEvents::default();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, prefix) = match item.strip_suffix('*') {
                Some(p) => (p, true),
                None => (item, false),
            };
            if name.contains('*') || name.chars().any(char::is_control) {
                return Err(format!(
                    "\"{item}\": a name, or a prefix with one trailing `*`, without control characters"
                ));
            }
            if prefix {
                out.prefixes.push(name.to_owned());
            } else {
                out.names.insert(name.to_owned());
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.prefixes.is_empty()
    }

    /// Whether `event` is relayed. The server's own events are matched before this, so a
    /// prefix like `*` never takes `presence:join` away from its handler.
    pub fn matches(&self, event: &str) -> bool {
        self.names.contains(event) || self.prefixes.iter().any(|p| event.starts_with(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes() {
        let r = RelayEvents::parse(" chat:* , cursor ,").unwrap();
        assert!(r.matches("chat:message"));
        assert!(r.matches("chat:"));
        assert!(r.matches("cursor"));
        assert!(!r.matches("cursor:move"));
        assert!(!r.matches("presenceEvent"));
        assert!(RelayEvents::parse("").unwrap().is_empty());
        assert!(RelayEvents::parse("*").unwrap().matches("anything"));
        assert!(RelayEvents::parse("a*b").is_err());
        assert!(RelayEvents::parse("a\u{1}").is_err());
    }
}
