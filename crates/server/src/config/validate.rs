//! The values refused at start-up: `activenow serve` does not start with one of them.

use std::time::Duration;

use super::error::ConfigError;
use super::Settings;

impl Settings {
    /// Rejects values that would make the server misbehave.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name, reason: &str| {
            Err(ConfigError::Invalid {
                name,
                reason: reason.into(),
            })
        };
        if self.presence_ttl() < Duration::from_millis(100) {
            return invalid("PRESENCE_TTL", "must be at least 100 ms");
        }
        if self.presence_reaper_interval_ms == 0 {
            return invalid("PRESENCE_REAPER_INTERVAL_MS", "must be positive");
        }
        if let Err(reason) = self.leave_grace_on() {
            return invalid("PRESENCE_LEAVE_GRACE_ON", &reason);
        }
        if self.max_frame_bytes < 128 {
            return invalid("MAX_FRAME_BYTES", "must be at least 128");
        }
        if self.send_queue_capacity == 0 {
            return invalid("SEND_QUEUE_CAPACITY", "must be positive");
        }
        if self.send_queue_max_frames < self.send_queue_capacity {
            return invalid(
                "SEND_QUEUE_MAX_FRAMES",
                "must be at least SEND_QUEUE_CAPACITY",
            );
        }
        if self.slow_consumer_timeout_ms == 0 {
            return invalid("SLOW_CONSUMER_TIMEOUT_MS", "must be positive");
        }
        if self.max_messages_per_second == 0 {
            return invalid("MAX_MESSAGES_PER_SECOND", "must be positive");
        }
        if self.max_session_id_bytes == 0 {
            return invalid("MAX_SESSION_ID_BYTES", "must be positive");
        }
        if self.metadata_max_items == 0
            || self.metadata_max_key_bytes == 0
            || self.metadata_max_value_bytes == 0
        {
            return invalid("METADATA_MAX_*", "must be positive");
        }
        if self.members_page_default == 0 || self.members_page_max == 0 {
            return invalid("MEMBERS_PAGE_*", "must be positive");
        }
        if self.lock_max_ttl_ms == 0 {
            return invalid("LOCK_MAX_TTL_MS", "must be positive");
        }
        if self.socketio_max_payload_bytes < 128 {
            return invalid("SOCKETIO_MAX_PAYLOAD_BYTES", "must be at least 128");
        }
        if self.socketio_relay_rate == 0 || self.socketio_relay_max_bytes == 0 {
            return invalid("SOCKETIO_RELAY_*", "must be positive");
        }
        if let Err(reason) =
            crate::protocol::socketio::relay_events::RelayEvents::parse(&self.socketio_relay_events)
        {
            return invalid("SOCKETIO_RELAY_EVENTS", &reason);
        }
        if self.stats_sample_interval_ms < 100 || self.stats_push_interval_ms < 100 {
            return invalid("STATS_*_INTERVAL_MS", "must be at least 100");
        }
        if self.stats_history_samples == 0 || self.stats_history_samples > 10_000 {
            return invalid("STATS_HISTORY_SAMPLES", "must be 1-10000");
        }
        if self.socketio_max_buffer == 0 {
            return invalid("SOCKETIO_MAX_BUFFER", "must be positive");
        }
        if self.socketio_ping_interval_ms == 0 || self.socketio_ping_timeout_ms == 0 {
            return invalid("SOCKETIO_PING_*", "must be positive");
        }
        if self.socketio_connect_timeout_ms == 0 {
            return invalid("SOCKETIO_CONNECT_TIMEOUT_MS", "must be positive");
        }
        if self.channel_publish_rate == 0 {
            return invalid("CHANNEL_PUBLISH_RATE", "must be positive");
        }
        if self.channel_max_subscriptions == 0 {
            return invalid("CHANNEL_MAX_SUBSCRIPTIONS", "must be positive");
        }
        if self.channel_ping_interval > 0
            && self.channel_idle_timeout > 0
            && self.channel_idle_timeout <= self.channel_ping_interval
        {
            return invalid(
                "CHANNEL_IDLE_TIMEOUT",
                "must be longer than CHANNEL_PING_INTERVAL (a healthy client only answers pings)",
            );
        }
        if self.pusher_client_event_rate == 0 || self.pusher_max_channels_per_socket == 0 {
            return invalid(
                "PUSHER_CLIENT_EVENT_RATE",
                "and PUSHER_MAX_CHANNELS_PER_SOCKET must be positive",
            );
        }
        let env_app = crate::protocol::pusher::app_config::env_app(
            &self.pusher_app_id,
            &self.pusher_app_key,
            &self.pusher_app_secret,
        );
        let apps: Vec<_> = env_app
            .map(|mut app| {
                app.webhook_url = Some(self.pusher_app_webhook_url.clone());
                app
            })
            .into_iter()
            .chain(self.pusher_apps.iter().cloned())
            .collect();
        if let Err(reason) = crate::protocol::pusher::app_config::check(&apps) {
            return invalid("PUSHER_APP_* / [[pusher.apps]]", &reason);
        }
        if self.redis_cluster
            && !(self.redis_url.starts_with("redis://")
                || self.redis_url.starts_with("rediss://")
                || self.redis_url.starts_with("redis-cluster://")
                || self.redis_url.starts_with("rediss-cluster://"))
        {
            return invalid(
                "REDIS_CLUSTER",
                "needs REDIS_URL to be a redis://, rediss:// or redis-cluster:// URL",
            );
        }
        if self.pusher_activity_timeout == 0 {
            return invalid("PUSHER_ACTIVITY_TIMEOUT", "must be positive");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return invalid("LOG_FORMAT", "must be text or json");
        }
        if self.redis_timeout_ms == 0 {
            return invalid("REDIS_TIMEOUT_MS", "must be positive");
        }
        if self.online_ttl() < Duration::from_millis(100) {
            return invalid("ONLINE_TTL", "must be at least 100 ms");
        }
        if self.online_ping_timeout_ms == 0 {
            return invalid("ONLINE_PING_TIMEOUT_MS", "must be positive");
        }
        if self.online_page_default == 0 || self.online_page_max < self.online_page_default {
            return invalid(
                "ONLINE_PAGE_MAX",
                "must be at least ONLINE_PAGE_DEFAULT (> 0)",
            );
        }
        if self.online_event_queue == 0 || self.webhook_queue_capacity == 0 {
            return invalid("WEBHOOK_QUEUE_CAPACITY", "queues must be positive");
        }
        if self.webhook_max_attempts == 0 {
            return invalid("WEBHOOK_MAX_ATTEMPTS", "must be at least 1");
        }
        if self.webhook_batch_max == 0 {
            return invalid("WEBHOOK_BATCH_MAX", "must be at least 1");
        }
        if let Err((name, reason)) = crate::services::webhooks::filter::Filter::parse(
            &self.webhook_events,
            &self.webhook_rooms,
        ) {
            return invalid(name, &reason);
        }
        let url = &self.webhook_url;
        if !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
            return invalid("WEBHOOK_URL", "must be an http:// or https:// URL");
        }
        if self.session_expiry_check_ms == 0 || self.session_expiry_check_ms > 5000 {
            return invalid("SESSION_EXPIRY_CHECK_MS", "must be 1-5000");
        }
        if self.session_ttl == 0 || self.session_max_ttl < self.session_ttl {
            return invalid("SESSION_MAX_TTL", "must be at least SESSION_TTL (> 0)");
        }
        if !matches!(self.client_auth.as_str(), "off" | "jwt") {
            return invalid("CLIENT_AUTH", "must be off or jwt");
        }
        if self.client_auth_jwt()
            && self.jwt_secret.is_empty()
            && self.jwt_public_key_file.is_empty()
        {
            return invalid(
                "CLIENT_AUTH",
                "jwt needs JWT_SECRET or JWT_PUBLIC_KEY_FILE to verify tokens",
            );
        }
        if !matches!(self.metadata_write.as_str(), "members" | "server") {
            return invalid("METADATA_WRITE", "must be members or server");
        }
        if self.http_header_timeout_ms == 0
            || self.http_idle_timeout_ms == 0
            || self.http_body_timeout_ms == 0
        {
            return invalid("HTTP_*_TIMEOUT_MS", "must be positive");
        }
        if self.http_max_body_bytes == 0 {
            return invalid("HTTP_MAX_BODY_BYTES", "must be positive");
        }
        if let Err(e) = crate::transport::client_ip::TrustedProxies::parse(&self.trusted_proxies) {
            return invalid("TRUSTED_PROXIES", &e);
        }
        if self.node_id.is_empty() || self.node_id.chars().any(|c| c.is_control()) {
            return invalid("NODE_ID", "must be non-empty text");
        }
        Ok(())
    }
}
