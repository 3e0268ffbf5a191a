//! Disconnecting an identity everywhere: the node asked finds the identity's connections in
//! the store's identity index and publishes one kick per room through the broker, so every
//! node holding one of them hears it (it listens to the room); each closes those it holds.
//! A connection lingering in the leave grace is still a member and still listens (silently):
//! the node holding it leaves it at once (`registry.rs`).

use serde_json::json;

use super::handle::Engine;
use super::kick_notice::KICK_PUBLICATION;
use crate::clock;
use crate::error::EngineError;
use crate::model::{ConnId, Identity, Publication, Room};

impl Engine {
    /// Closes the connections of `identity` on every node: all of them, or those in `rooms`
    /// only. Returns the rooms and the connections named there. Each closes after the frames
    /// already queued for it, with [`crate::outbox::CloseCause::Kicked`]; protocols whose
    /// sockets the engine does not write (Socket.IO) close theirs when their renderer sees
    /// the publication (see [`kicked_conns`](super::kick_notice::kicked_conns)).
    pub async fn kick(
        &self,
        identity: &Identity,
        rooms: Option<&[Room]>,
    ) -> Result<Vec<(Room, Vec<ConnId>)>, EngineError> {
        let mut out = Vec::new();
        for (room, members) in self.identity_rooms(identity).await? {
            if rooms.is_some_and(|only| !only.contains(&room)) {
                continue;
            }
            let conns: Vec<ConnId> = members.into_iter().map(|m| m.conn).collect();
            let publication = Publication {
                event: KICK_PUBLICATION.into(),
                data: json!({ "conns": conns }),
                from: Some(identity.clone()),
                ts_ms: clock::now_ms(),
            };
            self.publish(&room, publication, None).await?;
            out.push((room, conns));
        }
        Ok(out)
    }
}
