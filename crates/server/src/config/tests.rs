//! The settings' layers, defaults, derived values and validation.

use std::time::Duration;

use super::*;

#[test]
fn redis_cluster_reads_the_url_as_a_seed() {
    let mut s = Settings {
        redis_url: "redis://10.0.0.1:7000".into(),
        ..Settings::default()
    };
    assert_eq!(s.redis_client_url(), "redis://10.0.0.1:7000");
    s.redis_cluster = true;
    assert_eq!(s.redis_client_url(), "redis-cluster://10.0.0.1:7000");
    assert!(s.validate().is_ok());
    s.redis_url = "rediss://u:p@h:7000".into();
    assert_eq!(s.redis_client_url(), "rediss-cluster://u:p@h:7000");
    s.redis_url = "redis-cluster://h:7000?node=h:7001".into();
    assert_eq!(s.redis_client_url(), "redis-cluster://h:7000?node=h:7001");
    s.redis_url = "redis-sentinel://h:26379/mymaster".into();
    assert!(s.validate().is_err());
}

#[test]
fn layers_resolve_in_order() {
    let flags = SettingsLayer {
        port: Some(1),
        ..Default::default()
    };
    let file: SettingsLayer = toml::from_str("port = 2\npresence_ttl = 7\n").unwrap();
    let s = flags.over(file).resolve();
    assert_eq!(s.port, 1);
    assert_eq!(s.presence_ttl, 7);
    assert_eq!(s.max_frame_bytes, 65_536);
}

#[test]
fn ttl_ms_wins_and_lookback_defaults_to_ttl() {
    let mut s = Settings::default();
    assert_eq!(s.presence_ttl(), Duration::from_secs(30));
    assert_eq!(s.reaper_lookback(), Duration::from_secs(30));
    s.presence_ttl_ms = 1500;
    assert_eq!(s.presence_ttl(), Duration::from_millis(1500));
    // Never under three reaper ticks (1 s by default).
    assert_eq!(s.reaper_lookback(), Duration::from_millis(3000));
    s.presence_reaper_interval_ms = 100;
    assert_eq!(s.reaper_lookback(), Duration::from_millis(1500));
    s.presence_reaper_lookback_ms = 4000;
    assert_eq!(s.reaper_lookback(), Duration::from_millis(4000));
}

#[test]
fn unknown_file_keys_are_refused() {
    assert!(toml::from_str::<SettingsLayer>("prot = 1").is_err());
}

#[test]
fn origins() {
    let mut s = Settings::default();
    assert_eq!(s.origin_allowlist(), None);
    s.allowed_origins = "https://a.example, https://b.example/".into();
    assert_eq!(
        s.origin_allowlist(),
        Some(vec!["https://a.example".into(), "https://b.example".into()])
    );
    s.allowed_origins = "https://a.example,*".into();
    assert_eq!(s.origin_allowlist(), None);
}

#[test]
fn channel_limit_defaults_to_50_and_follows_max_room_users() {
    let mut s = Settings::default();
    assert_eq!(s.room_limit(), None);
    assert_eq!(s.channel_limit(), Some(50));
    s.max_room_users = 20;
    assert_eq!(s.room_limit(), Some(20));
    assert_eq!(s.channel_limit(), Some(20));
    s.channel_max_users = OptionalLimit(Some(0));
    assert_eq!(s.channel_limit(), None);
    s.channel_max_users = "7".parse().unwrap();
    assert_eq!(s.channel_limit(), Some(7));
    assert_eq!("".parse::<OptionalLimit>().unwrap(), OptionalLimit(None));
    let file: SettingsLayer = toml::from_str("channel_max_users = 3").unwrap();
    assert_eq!(file.resolve().channel_limit(), Some(3));
    assert_eq!(Settings::default().channel_max_users.to_string(), "");
}

#[test]
fn jwt_secret_is_masked() {
    let s = Settings {
        jwt_secret: "hunter2".into(),
        ..Settings::default()
    };
    let described = s.describe();
    let secret = described.iter().find(|(k, _)| *k == "JWT_SECRET").unwrap();
    assert_eq!(secret.1, "********");
}

#[test]
fn validation() {
    let mut s = Settings::default();
    assert!(s.validate().is_ok());
    s.log_format = "xml".into();
    assert!(s.validate().is_err());
    let mut s = Settings {
        channel_idle_timeout: 30,
        ..Settings::default()
    };
    assert!(
        s.validate().is_err(),
        "idle timeout must outlast the ping interval"
    );
    s.channel_ping_interval = 0;
    assert!(s.validate().is_ok());
    s.client_auth = "jwt".into();
    assert!(s.validate().is_err(), "jwt needs a key");
    s.jwt_secret = "k".into();
    assert!(s.validate().is_ok());
    s.client_auth = "on".into();
    assert!(s.validate().is_err());
    s.client_auth = "off".into();
    s.metadata_write = "anyone".into();
    assert!(s.validate().is_err());
}

#[test]
fn leave_grace_on_is_a_list_of_close_and_ttl() {
    let mut s = Settings::default();
    let on = s.leave_grace_on().unwrap();
    assert!(on.close && !on.ttl, "close by default");
    s.presence_leave_grace_on = " ttl , close".into();
    let on = s.leave_grace_on().unwrap();
    assert!(on.close && on.ttl);
    s.presence_leave_grace_on = String::new();
    assert!(s.validate().is_ok(), "empty: nothing waits");
    for refused in ["leave", "close,leave", "drop"] {
        s.presence_leave_grace_on = refused.into();
        assert!(s.validate().is_err(), "{refused}");
    }
}
