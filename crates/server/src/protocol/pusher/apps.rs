//! The Pusher apps a server serves: the single app of `PUSHER_APP_ID` / `PUSHER_APP_KEY` /
//! `PUSHER_APP_SECRET`, and the `[[pusher.apps]]` list of the TOML config file, each with its
//! own limits. Ids and keys are checked at startup (`app_config::check`) so a bad list stops
//! the server instead of silently disabling an app.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::app_config::{env_app, AppConfig};
use crate::config::Settings;

/// One Pusher app: its id (in HTTP paths), key (public, in the WebSocket URL), secret and
/// limits. Clones share the connection counter.
#[derive(Clone, Debug)]
pub struct App {
    pub id: String,
    pub key: String,
    pub secret: String,
    pub max_presence_members: u64,
    pub client_events: bool,
    /// `pusher_internal:subscription_count` on public and private channels.
    pub subscription_count_events: bool,
    /// 0 = no per-app cap.
    pub max_connections: usize,
    /// Pusher-style webhooks go there; empty = none.
    pub webhook_url: String,
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
            subscription_count_events: c
                .subscription_count_events
                .unwrap_or(settings.pusher_subscription_count_events),
            max_connections: c.max_connections.unwrap_or(0),
            webhook_url: c.webhook_url.clone().unwrap_or_default(),
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

fn configs(settings: &Settings) -> Vec<AppConfig> {
    env_app(
        &settings.pusher_app_id,
        &settings.pusher_app_key,
        &settings.pusher_app_secret,
    )
    .map(|mut app| {
        app.webhook_url = Some(settings.pusher_app_webhook_url.clone());
        app
    })
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
