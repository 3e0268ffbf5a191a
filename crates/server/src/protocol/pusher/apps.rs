//! The Pusher apps a server serves: the single app of `PUSHER_APP_ID` / `PUSHER_APP_KEY` /
//! `PUSHER_APP_SECRET`, and the `[[pusher.apps]]` list of the TOML config file, each with its
//! own limits. Ids and keys are checked at startup ([`check`]) so a bad list stops the
//! server instead of silently disabling an app.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::Deserialize;

use super::codec;
use crate::config::Settings;

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
    /// Sockets of this app on one node (0 = only MAX_CONNECTIONS); more are closed with 4004
    /// [default: 0].
    #[serde(default)]
    pub max_connections: Option<usize>,
}

/// The `[pusher]` table of the config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSection {
    #[serde(default)]
    pub apps: Vec<AppConfig>,
}

/// One Pusher app: its id (in HTTP paths), key (public, in the WebSocket URL), secret and
/// limits. Clones share the connection counter.
#[derive(Clone, Debug)]
pub struct App {
    pub id: String,
    pub key: String,
    pub secret: String,
    pub max_presence_members: u64,
    pub client_events: bool,
    /// 0 = no per-app cap.
    pub max_connections: usize,
    connections: Arc<AtomicUsize>,
}

/// Holds one of an app's connection slots while its socket lives.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl App {
    /// The app of `c`, its unset limits from `settings`.
    pub fn new(c: &AppConfig, settings: &Settings) -> App {
        App {
            id: c.id.trim().to_owned(),
            key: c.key.trim().to_owned(),
            secret: c.secret.clone(),
            max_presence_members: c
                .max_presence_members
                .unwrap_or(settings.pusher_max_presence_members),
            client_events: c.client_events.unwrap_or(settings.pusher_client_events),
            max_connections: c.max_connections.unwrap_or(0),
            connections: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A connection slot, or `None` when the app holds `max_connections` sockets here.
    pub fn take_slot(&self) -> Option<Slot> {
        let held = self.connections.fetch_add(1, Ordering::Relaxed);
        let slot = Slot(self.connections.clone());
        (self.max_connections == 0 || held < self.max_connections).then_some(slot)
    }
}

/// The single app of the environment, when all three settings are set.
fn env_app(settings: &Settings) -> Option<AppConfig> {
    let (id, key, secret) = (
        settings.pusher_app_id.trim(),
        settings.pusher_app_key.trim(),
        settings.pusher_app_secret.as_str(),
    );
    (!id.is_empty() && !key.is_empty() && !secret.is_empty()).then(|| AppConfig {
        id: id.to_owned(),
        key: key.to_owned(),
        secret: secret.to_owned(),
        max_presence_members: None,
        client_events: None,
        max_connections: None,
    })
}

fn configs(settings: &Settings) -> Vec<AppConfig> {
    env_app(settings)
        .into_iter()
        .chain(settings.pusher_apps.iter().cloned())
        .collect()
}

/// Every app, the environment's first.
pub fn load(settings: &Settings) -> Vec<App> {
    let apps: Vec<App> = configs(settings)
        .iter()
        .map(|c| App::new(c, settings))
        .collect();
    if apps.is_empty() {
        tracing::info!(
            "Pusher protocol (/app/{{key}}) disabled: set PUSHER_APP_ID, PUSHER_APP_KEY and PUSHER_APP_SECRET, or [[pusher.apps]] in the config file"
        );
    }
    apps
}

/// Refuses ids or keys outside `[A-Za-z0-9_-]` (ids at most 64 bytes), empty secrets, and
/// an id or key used twice.
pub fn check(settings: &Settings) -> Result<(), String> {
    let apps = configs(settings);
    for (i, a) in apps.iter().enumerate() {
        if !valid_app_id(a.id.trim()) || !codec::valid_key(a.key.trim()) {
            return Err(format!(
                "app {:?}: id (1-{MAX_APP_ID_BYTES}) and key must be of [A-Za-z0-9_-]",
                a.id
            ));
        }
        if a.secret.is_empty() {
            return Err(format!("app {:?}: empty secret", a.id));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SettingsLayer;

    fn from_toml(text: &str) -> Result<SettingsLayer, crate::config::ConfigError> {
        let path = std::env::temp_dir().join(format!(
            "activenow-pusher-apps-{}-{}.toml",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::write(&path, text).unwrap();
        let layer = SettingsLayer::from_file(&path);
        let _ = std::fs::remove_file(&path);
        layer
    }

    #[test]
    fn apps_list_beside_settings() {
        let layer = from_toml(
            "port = 9000\npusher_max_presence_members = 7\n\n[[pusher.apps]]\nid = \"a\"\nkey = \"ka\"\nsecret = \"sa\"\nclient_events = false\nmax_connections = 2\n\n[[pusher.apps]]\nid = \"b\"\nkey = \"kb\"\nsecret = \"sb\"\nmax_presence_members = 3\n",
        )
        .unwrap();
        let settings = SettingsLayer {
            pusher_app_id: Some("env".into()),
            pusher_app_key: Some("kenv".into()),
            pusher_app_secret: Some("senv".into()),
            ..SettingsLayer::default()
        }
        .over(layer)
        .resolve();
        assert_eq!(settings.port, 9000);
        settings.validate().unwrap();
        let apps = load(&settings);
        let ids: Vec<_> = apps.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["env", "a", "b"]);
        assert!(!apps[1].client_events && apps[2].client_events);
        assert_eq!(
            (apps[1].max_presence_members, apps[2].max_presence_members),
            (7, 3)
        );
        let first = apps[1].take_slot();
        let second = apps[1].take_slot();
        assert!(first.is_some() && second.is_some());
        assert!(apps[1].take_slot().is_none());
        drop(first);
        assert!(apps[1].take_slot().is_some());
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(from_toml(
            "[[pusher.apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\nwebhooks = 1\n"
        )
        .is_err());
        assert!(from_toml("[pusher]\nother = 1\n").is_err());
        assert!(
            from_toml("prot = 1\n[[pusher.apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n")
                .is_err()
        );
        for list in [
            "[[pusher.apps]]\nid = \"a:b\"\nkey = \"k\"\nsecret = \"s\"\n",
            "[[pusher.apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"\"\n",
            "[[pusher.apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n[[pusher.apps]]\nid = \"b\"\nkey = \"k\"\nsecret = \"s\"\n",
        ] {
            let settings = from_toml(list).unwrap().resolve();
            assert!(settings.validate().is_err(), "{list}");
        }
    }
}
