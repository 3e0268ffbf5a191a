//! The publishing half of the REST API: an event is checked whole (name, size, every
//! channel) before it reaches any room, and a batch before any of its events is sent.

use activenow_engine::{ConnId, Publication, Room};
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{authorize, text, Params, Refused};
use crate::protocol::pusher::attributes::{self, Wanted};
use crate::protocol::pusher::cache;
use crate::protocol::pusher::codec;
use crate::protocol::pusher::{now_ms, App, PusherState};

/// Channels one event may name (Pusher: 100).
pub const MAX_EVENT_CHANNELS: usize = 100;
/// Events one batch may hold (Pusher: 10).
pub const MAX_BATCH_EVENTS: usize = 10;

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
