//! How a server API publication is marked: the engine's `Publication` with
//! [`SERVER_EVENT_PREFIX`] before the event name. The leading control character keeps it out
//! of protocols that do not know it; each renderer that does strips it with
//! [`server_event`]. A leaf, so every codec can read it.

use activenow_engine::Publication;

/// Marks a server API publication.
pub const SERVER_EVENT_PREFIX: &str = "\u{1}server:";

/// The event name of a server API publication; `None` for any other publication.
pub fn server_event(p: &Publication) -> Option<&str> {
    p.event.strip_prefix(SERVER_EVENT_PREFIX)
}
