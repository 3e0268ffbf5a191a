//! The `--config FILE` TOML and everything the settings derive from it.
#![no_main]

use activenow::SettingsLayer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(layer) = toml::from_str::<SettingsLayer>(text) else {
        return;
    };
    let settings = layer.resolve();
    if settings.validate().is_ok() {
        // What the server derives at start-up must not panic on any valid configuration.
        let _ = settings.presence_ttl();
        let _ = settings.reaper_interval();
        let _ = settings.reaper_lookback();
        let _ = settings.origin_allowlist();
        let _ = settings.metadata_limits();
        let _ = settings.redis_timeout();
        let _ = settings.online_ttl();
        let _ = settings.room_limit();
        let _ = settings.channel_limit();
        let _ = settings.channel_ping_interval();
        let _ = settings.channel_idle_timeout();
        let _ = settings.describe();
    }
});
