//! The reading half of the REST API: occupied channels, one channel's attributes and a
//! presence channel's users, answered from the engine's rooms (so from every node).

use std::collections::BTreeMap;

use activenow_engine::Room;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::{authorize, text, Params, Refused};
use crate::protocol::pusher::attributes::{self, Wanted};
use crate::protocol::pusher::codec::{self, ChannelKind};
use crate::protocol::pusher::presence::presence_object;
use crate::protocol::pusher::{App, PusherState};

fn wanted(params: &BTreeMap<String, String>) -> Wanted {
    Wanted::parse(params.get("info").map(String::as_str))
}

fn unavailable(e: activenow_engine::EngineError) -> Response {
    tracing::warn!(error = %e, "pusher API read failed");
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "backend unavailable; retry\n",
    )
    .into_response()
}

/// `GET /apps/{id}/channels[?filter_by_prefix=&info=user_count,subscription_count]` ->
/// `{channels: {name: {...}}}` of the occupied channels.
pub async fn channels(
    AxumState(app): AxumState<PusherState>,
    Path(app_id): Path<String>,
    method: Method,
    uri: Uri,
    Query(params): Params,
) -> Response {
    let (pusher_app, params) = match authorize(&app, &app_id, &method, &uri, params, &[]) {
        Ok(ok) => ok,
        Err(r) => return r.into_response(),
    };
    let prefix = params.get("filter_by_prefix").map_or("", String::as_str);
    let wanted = wanted(&params);
    if wanted.user_count && !prefix.starts_with("presence-") {
        return text(
            StatusCode::BAD_REQUEST,
            "info=user_count is only available with filter_by_prefix=presence-\n",
        )
        .into_response();
    }
    let counts = match app.engine.room_counts().await {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    let room_prefix = pusher_app.room_prefix();
    let mut out = Map::new();
    for (room, count) in counts {
        let Some(channel) = room.as_str().strip_prefix(room_prefix.as_str()) else {
            continue;
        };
        // `#server-to-user-*` and `#user-*` are per-user rooms, not channels Pusher lists.
        if count == 0 || !channel.starts_with(prefix) || channel.starts_with('#') {
            continue;
        }
        let mut info = Map::new();
        if wanted.user_count {
            info.insert("user_count".into(), json!(count));
        }
        if wanted.subscription_count {
            // Elsewhere the count is of socket ids, so it is the subscription count already;
            // a presence channel counts users, so its sockets are read.
            let subscriptions = if ChannelKind::of(channel) == ChannelKind::Presence {
                match app.engine.members(&room).await {
                    Ok(m) => m.len() as u64,
                    Err(e) => return unavailable(e),
                }
            } else {
                count
            };
            info.insert("subscription_count".into(), json!(subscriptions));
        }
        out.insert(channel.to_owned(), Value::Object(info));
    }
    Json(json!({"channels": out})).into_response()
}

fn channel_room(pusher_app: &App, channel: &str) -> Result<Room, Refused> {
    codec::valid_channel(channel)
        .then(|| pusher_app.room(channel))
        .flatten()
        .ok_or_else(|| {
            text(
                StatusCode::BAD_REQUEST,
                format!("invalid channel name {channel:?}\n"),
            )
        })
}

/// `GET /apps/{id}/channels/{name}[?info=user_count,subscription_count]` ->
/// `{occupied, user_count?, subscription_count?}`.
pub async fn channel(
    AxumState(app): AxumState<PusherState>,
    Path((app_id, channel)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    Query(params): Params,
) -> Response {
    let (pusher_app, params) = match authorize(&app, &app_id, &method, &uri, params, &[]) {
        Ok(ok) => ok,
        Err(r) => return r.into_response(),
    };
    let room = match channel_room(&pusher_app, &channel) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let presence = ChannelKind::of(&channel) == ChannelKind::Presence;
    let wanted = wanted(&params);
    if wanted.user_count && !presence {
        return text(
            StatusCode::BAD_REQUEST,
            "info=user_count is only available for presence channels\n",
        )
        .into_response();
    }
    let members = match app.engine.members(&room).await {
        Ok(m) => m,
        Err(e) => return unavailable(e),
    };
    let mut out = Map::new();
    out.insert("occupied".into(), Value::Bool(!members.is_empty()));
    out.extend(attributes::of_members(&channel, &members, wanted));
    Json(Value::Object(out)).into_response()
}

/// `GET /apps/{id}/channels/{presence-name}/users` -> `{users: [{id}]}`.
pub async fn users(
    AxumState(app): AxumState<PusherState>,
    Path((app_id, channel)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    Query(params): Params,
) -> Response {
    let (pusher_app, _) = match authorize(&app, &app_id, &method, &uri, params, &[]) {
        Ok(ok) => ok,
        Err(r) => return r.into_response(),
    };
    if ChannelKind::of(&channel) != ChannelKind::Presence {
        return text(
            StatusCode::BAD_REQUEST,
            "users are only available for presence channels\n",
        )
        .into_response();
    }
    let room = match channel_room(&pusher_app, &channel) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let members = match app.engine.members(&room).await {
        Ok(m) => m,
        Err(e) => return unavailable(e),
    };
    let presence = presence_object(&members);
    let users: Vec<Value> = presence["presence"]["ids"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|id| json!({"id": id}))
        .collect();
    Json(json!({"users": users})).into_response()
}
