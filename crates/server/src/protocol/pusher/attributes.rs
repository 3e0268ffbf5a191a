//! Channel attributes of the HTTP API's `info` parameter: `user_count` (distinct users of a
//! presence channel) and `subscription_count` (sockets subscribed, every tab counted), as the
//! events response and `GET /channels[/{name}]` report them.

use activenow_engine::{EngineError, Member, Room};
use serde_json::{json, Map, Value};

use super::codec::ChannelKind;
use super::presence::presence_object;
use crate::host::Host;

/// The attributes an `info=user_count,subscription_count` list asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Wanted {
    pub user_count: bool,
    pub subscription_count: bool,
}

impl Wanted {
    pub fn parse(info: Option<&str>) -> Wanted {
        let has = |a: &str| info.is_some_and(|i| i.split(',').any(|x| x.trim() == a));
        Wanted {
            user_count: has("user_count"),
            subscription_count: has("subscription_count"),
        }
    }

    pub fn any(self) -> bool {
        self.user_count || self.subscription_count
    }
}

/// The attributes of members already read; `user_count` on presence channels only.
pub(super) fn of_members(channel: &str, members: &[Member], wanted: Wanted) -> Map<String, Value> {
    let mut out = Map::new();
    if wanted.user_count && ChannelKind::of(channel) == ChannelKind::Presence {
        out.insert(
            "user_count".into(),
            presence_object(members)["presence"]["count"].clone(),
        );
    }
    if wanted.subscription_count {
        out.insert("subscription_count".into(), json!(members.len()));
    }
    out
}

/// Reads a channel's members and answers its attributes.
pub(super) async fn of_room(
    app: &Host,
    room: &Room,
    channel: &str,
    wanted: Wanted,
) -> Result<Map<String, Value>, EngineError> {
    let members = app.engine.members(room).await?;
    Ok(of_members(channel, &members, wanted))
}
