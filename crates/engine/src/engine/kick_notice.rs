//! The kick publication: how a kick travels to every node (an engine `Publication` in the
//! kicked room, naming the connections), and how a node reads one. A leaf, so the registry
//! (which closes the named connections it holds) and the kick operation both use it.

use crate::model::{ConnId, Publication};

/// The event name of a kick publication (the leading control character keeps it out of
/// every protocol's rendering). Its data: `{"conns": [connection ids]}`.
pub const KICK_PUBLICATION: &str = "\u{1}kick";

/// The connections a kick publication names; empty for any other publication.
pub fn kicked_conns(p: &Publication) -> Vec<ConnId> {
    if p.event != KICK_PUBLICATION {
        return Vec::new();
    }
    p.data["conns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(ConnId::new))
        .collect()
}
