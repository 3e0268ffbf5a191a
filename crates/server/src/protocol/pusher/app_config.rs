//! What configures a Pusher app (an `[[pusher.apps]]` entry of the TOML config file, or the
//! `PUSHER_APP_*` settings) and the startup check of the list. A leaf: the settings read
//! and check it without importing the protocol.

use serde::Deserialize;

/// Longest app id: the room prefix must leave room for a 164-character channel name.
const MAX_APP_ID_BYTES: usize = 64;

/// One `[[pusher.apps]]` entry of the config file; unset limits take the `PUSHER_*` settings.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub id: String,
    pub key: String,
    pub secret: String,
    /// Distinct users per presence channel (0 = no limit) [default: PUSHER_MAX_PRESENCE_MEMBERS].
    #[serde(default)]
    pub max_presence_members: Option<u64>,
    /// Pusher's "Enable client events" switch [default: PUSHER_CLIENT_EVENTS].
    #[serde(default)]
    pub client_events: Option<bool>,
    /// Pusher's "Enable subscription counting" switch: `pusher_internal:subscription_count` to
    /// subscribers of public and private channels [default: PUSHER_SUBSCRIPTION_COUNT_EVENTS].
    #[serde(default)]
    pub subscription_count_events: Option<bool>,
    /// Sockets of this app on one node (0 = only MAX_CONNECTIONS); more are closed with 4004
    /// [default: 0].
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Where this app's Pusher-style webhooks (`channel_occupied`, `channel_vacated`,
    /// `member_added`, `member_removed`, `client_event`) are POSTed; unset = none [default: unset; the
    /// environment's app: PUSHER_APP_WEBHOOK_URL].
    #[serde(default)]
    pub webhook_url: Option<String>,
}

/// The `[pusher]` table of the config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSection {
    #[serde(default)]
    pub apps: Vec<AppConfig>,
}

/// The single app of the environment, when all three settings are set.
pub fn env_app(id: &str, key: &str, secret: &str) -> Option<AppConfig> {
    let (id, key) = (id.trim(), key.trim());
    (!id.is_empty() && !key.is_empty() && !secret.is_empty()).then(|| AppConfig {
        id: id.to_owned(),
        key: key.to_owned(),
        secret: secret.to_owned(),
        max_presence_members: None,
        client_events: None,
        subscription_count_events: None,
        max_connections: None,
        webhook_url: None,
    })
}

/// Refuses ids or keys outside `[A-Za-z0-9_-]` (ids at most 64 bytes), empty secrets, and
/// an id or key used twice.
pub fn check(apps: &[AppConfig]) -> Result<(), String> {
    for (i, a) in apps.iter().enumerate() {
        if !valid_app_id(a.id.trim()) || !valid_key(a.key.trim()) {
            return Err(format!(
                "app {:?}: id (1-{MAX_APP_ID_BYTES}) and key must be of [A-Za-z0-9_-]",
                a.id
            ));
        }
        if a.secret.is_empty() {
            return Err(format!("app {:?}: empty secret", a.id));
        }
        if let Some(url) = a.webhook_url.as_deref().filter(|u| !u.is_empty()) {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(format!(
                    "app {:?}: webhook_url must be an http:// or https:// URL",
                    a.id
                ));
            }
        }
        if apps[..i]
            .iter()
            .any(|b| b.id.trim() == a.id.trim() || b.key.trim() == a.key.trim())
        {
            return Err(format!(
                "app {:?}: another app has the same id or key",
                a.id
            ));
        }
    }
    Ok(())
}

/// `[A-Za-z0-9_-]{1,64}`: the id appears in room names and URL paths.
pub fn valid_app_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_APP_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An app key: `[A-Za-z0-9_-]{1,128}` (it is a URL path segment).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
