//! Pusher's HTTP API under `/apps/{app_id}/`, every call signed (see [`super::auth`]).
//! Errors are what Pusher answers: a status with a plain-text body (400 bad request, 401 bad
//! signature or stale timestamp, 404 unknown app, 413 payload too large).

use std::collections::BTreeMap;

use activenow_engine::{ConnId, Publication, Room};
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::attributes::{self, Wanted};
use super::cache;
use super::codec::{self, ChannelKind};
use super::presence::presence_object;
use super::{auth, now_ms, App};
use crate::protocol::pusher::PusherState;

/// Channels one event may name (Pusher: 100).
pub const MAX_EVENT_CHANNELS: usize = 100;
/// Events one batch may hold (Pusher: 10).
pub const MAX_BATCH_EVENTS: usize = 10;

pub(super) type Params = Query<Vec<(String, String)>>;

/// A refused call: its status and plain-text body.
pub(super) type Refused = (StatusCode, String);

pub(super) fn text(status: StatusCode, body: impl Into<String>) -> Refused {
    (status, body.into())
}

/// The app named in the path, once the request's signature checks out.
pub(super) fn authorize(
    app: &PusherState,
    app_id: &str,
    method: &Method,
    uri: &Uri,
    params: Vec<(String, String)>,
    body: &[u8],
) -> Result<(App, BTreeMap<String, String>), Refused> {
    let Some(pusher_app) = app.pusher.app_by_id(app_id).cloned() else {
        return Err(text(
            StatusCode::NOT_FOUND,
            format!("Unknown app {app_id:?}\n"),
        ));
    };
    let params: BTreeMap<String, String> = params
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let now = now_ms() / 1000;
    match auth::verify_request(&pusher_app, method.as_str(), uri.path(), &params, body, now) {
        Ok(()) => Ok((pusher_app, params)),
        Err(e) => {
            app.metrics.errors.inc();
            Err(text(StatusCode::UNAUTHORIZED, format!("{e}\n")))
        }
    }
}

#[derive(Deserialize)]
pub struct EventBody {
    name: String,
    data: Value,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    socket_id: Option<String>,
    /// `user_count,subscription_count`: answer those attributes of the event's channels.
    #[serde(default)]
    info: Option<String>,
}

/// The rooms of an event's channels, or the 400/413 Pusher gives.
fn check_event(
    app: &PusherState,
    pusher_app: &App,
    event: &EventBody,
) -> Result<Vec<Room>, Refused> {
    let bad = |m: String| Err(text(StatusCode::BAD_REQUEST, m + "\n"));
    if event.name.is_empty() || event.name.len() > codec::MAX_EVENT_NAME_BYTES {
        return bad(format!(
            "name must be 1-{} characters",
            codec::MAX_EVENT_NAME_BYTES
        ));
    }
    let size = match &event.data {
        Value::String(s) => s.len(),
        other => other.to_string().len(),
    };
    let max = app.settings.pusher_max_event_bytes;
    if size > max {
        return Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Payload too large: data is larger than {max} bytes (PUSHER_MAX_EVENT_BYTES)\n"
            ),
        ));
    }
    let channels: Vec<&String> = event
        .channels
        .iter()
        .flatten()
        .chain(event.channel.iter())
        .collect();
    if channels.is_empty() || channels.len() > MAX_EVENT_CHANNELS {
        return bad(format!(
            "an event names 1-{MAX_EVENT_CHANNELS} channels (channels or channel)"
        ));
    }
    channels
        .into_iter()
        .map(|c| {
            match (codec::valid_channel(c) || codec::server_to_user(c).is_some())
                .then(|| pusher_app.room(c))
            {
                Some(Some(room)) => Ok(room),
                _ => Err(text(
                    StatusCode::BAD_REQUEST,
                    format!("invalid channel name {c:?}\n"),
                )),
            }
        })
        .collect()
}

/// Publishes `event` to `rooms`; answers the attributes its `info` asks for, per channel.
async fn publish(
    app: &PusherState,
    pusher_app: &App,
    rooms: &[Room],
    event: EventBody,
) -> Result<Map<String, Value>, Refused> {
    let wanted = Wanted::parse(event.info.as_deref());
    let exclude = event.socket_id.as_deref().map(ConnId::new);
    let publication = Publication {
        event: event.name,
        data: event.data,
        from: None,
        ts_ms: now_ms(),
    };
    for room in rooms {
        if let Err(e) = app
            .engine
            .publish(room, publication.clone(), exclude.clone())
            .await
        {
            tracing::warn!(error = %e, "pusher API publish failed");
            return Err(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "backend unavailable; retry\n",
            ));
        }
        if let Some(channel) = codec::channel_of(room).filter(|c| cache::is_cache(c)) {
            cache::keep(app, pusher_app, channel, &publication).await;
        }
    }
    let mut channels = Map::new();
    if !wanted.any() {
        return Ok(channels);
    }
    for room in rooms {
        let Some(channel) = codec::channel_of(room) else {
            continue;
        };
        let attributes = attributes::of_room(app, room, channel, wanted)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "pusher API info failed");
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "backend unavailable; retry\n",
                )
            })?;
        channels.insert(channel.to_owned(), Value::Object(attributes));
    }
    Ok(channels)
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refused> {
    serde_json::from_slice(body)
        .map_err(|e| text(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}\n")))
}

/// `POST /apps/{id}/events` `{name, data, channels | channel, socket_id?, info?}` -> `{}`, or
/// with `info` `{"channels": {name: {user_count?, subscription_count?}}}` as Pusher answers.
pub async fn events(
    AxumState(app): AxumState<PusherState>,
    Path(app_id): Path<String>,
    method: Method,
    uri: Uri,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let result = async {
        let (pusher_app, _) = authorize(&app, &app_id, &method, &uri, params, &body)?;
        let event: EventBody = parse_json(&body)?;
        let rooms = check_event(&app, &pusher_app, &event)?;
        let info = event.info.is_some();
        let channels = publish(&app, &pusher_app, &rooms, event).await?;
        let body = if info {
            json!({ "channels": channels })
        } else {
            json!({})
        };
        Ok::<_, Refused>(Json(body).into_response())
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Deserialize)]
pub struct BatchBody {
    batch: Vec<EventBody>,
}

/// `POST /apps/{id}/batch_events` `{batch: [{channel, name, data, socket_id?, info?}]}` ->
/// `{}`, or when an event has `info` `{"batch": [{user_count?, subscription_count?}, ...]}`.
pub async fn batch_events(
    AxumState(app): AxumState<PusherState>,
    Path(app_id): Path<String>,
    method: Method,
    uri: Uri,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let result = async {
        let (pusher_app, _) = authorize(&app, &app_id, &method, &uri, params, &body)?;
        let batch: BatchBody = parse_json(&body)?;
        if batch.batch.len() > MAX_BATCH_EVENTS {
            return Err(text(
                StatusCode::BAD_REQUEST,
                format!("a batch holds at most {MAX_BATCH_EVENTS} events\n"),
            ));
        }
        // Every event is checked before any is sent: a bad batch sends nothing.
        let mut checked = Vec::with_capacity(batch.batch.len());
        for event in batch.batch {
            let rooms = check_event(&app, &pusher_app, &event)?;
            checked.push((rooms, event));
        }
        let info = checked.iter().any(|(_, e)| e.info.is_some());
        let mut answers = Vec::with_capacity(checked.len());
        for (rooms, event) in checked {
            let channels = publish(&app, &pusher_app, &rooms, event).await?;
            // One channel per batch event: its attributes, unwrapped.
            answers.push(channels.into_iter().next().map_or(json!({}), |(_, a)| a));
        }
        let body = if info {
            json!({ "batch": answers })
        } else {
            json!({})
        };
        Ok::<_, Refused>(Json(body).into_response())
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

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
