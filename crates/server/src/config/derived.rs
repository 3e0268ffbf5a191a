//! What the settings mean for the code that reads them: durations from their units,
//! limits where 0 means none, lists from their comma-separated text.

use std::time::Duration;

use super::limit::DEFAULT_CHANNEL_MAX_USERS;
use super::Settings;

impl Settings {
    /// The URL the Redis client connects with: `REDIS_URL`, read as a cluster seed when
    /// `REDIS_CLUSTER` is set.
    pub fn redis_client_url(&self) -> String {
        if !self.redis_cluster {
            return self.redis_url.clone();
        }
        for (plain, cluster) in [
            ("redis://", "redis-cluster://"),
            ("rediss://", "rediss-cluster://"),
        ] {
            if let Some(rest) = self.redis_url.strip_prefix(plain) {
                return format!("{cluster}{rest}");
            }
        }
        self.redis_url.clone()
    }

    /// CLIENT_AUTH=jwt: identities come from verified tokens.
    pub fn client_auth_jwt(&self) -> bool {
        self.client_auth == "jwt"
    }

    /// METADATA_WRITE=server: Socket.IO sockets cannot write channel metadata.
    pub fn metadata_write_server_only(&self) -> bool {
        self.metadata_write == "server"
    }

    pub fn presence_ttl(&self) -> Duration {
        if self.presence_ttl_ms > 0 {
            Duration::from_millis(self.presence_ttl_ms)
        } else {
            Duration::from_secs(self.presence_ttl)
        }
    }

    /// Which departures wait for the leave grace (`PRESENCE_LEAVE_GRACE_ON`); `Err` says why
    /// the list is refused.
    pub fn leave_grace_on(&self) -> Result<activenow_engine::GraceOn, String> {
        activenow_engine::GraceOn::parse(&self.presence_leave_grace_on)
    }

    pub fn reaper_interval(&self) -> Duration {
        Duration::from_millis(self.presence_reaper_interval_ms)
    }

    pub fn reaper_lookback(&self) -> Duration {
        if self.presence_reaper_lookback_ms > 0 {
            Duration::from_millis(self.presence_reaper_lookback_ms)
        } else {
            // At least three reaper ticks: a busy node whose tick comes a little late must
            // not look dead to the others (it would be swept, then re-assert its members).
            self.presence_ttl().max(self.reaper_interval() * 3)
        }
    }

    /// Origins allowed for browser WebSockets; `None` = any.
    pub fn origin_allowlist(&self) -> Option<Vec<String>> {
        let origins: Vec<String> = self
            .allowed_origins
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        if origins.is_empty() || origins.iter().any(|o| o == "*") {
            None
        } else {
            Some(origins)
        }
    }

    /// The metadata limits the engine enforces.
    pub fn metadata_limits(&self) -> activenow_engine::MetadataLimits {
        activenow_engine::MetadataLimits {
            max_items: self.metadata_max_items,
            max_key_bytes: self.metadata_max_key_bytes,
            max_value_bytes: self.metadata_max_value_bytes,
        }
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    /// How long a full queue or a blocked socket write is tolerated.
    pub fn slow_consumer_timeout(&self) -> Duration {
        Duration::from_millis(self.slow_consumer_timeout_ms)
    }

    pub fn online_ttl(&self) -> Duration {
        if self.online_ttl_ms > 0 {
            Duration::from_millis(self.online_ttl_ms)
        } else {
            Duration::from_secs(self.online_ttl)
        }
    }

    pub fn room_limit(&self) -> Option<u64> {
        (self.max_room_users > 0).then_some(self.max_room_users)
    }

    /// Subscribers per channel: CHANNEL_MAX_USERS when set (0 = no limit), else
    /// MAX_ROOM_USERS when non-zero, else 50. So rooms default to no limit and channels to
    /// 50, and seed 2's users who set MAX_ROOM_USERS get that limit on channels too.
    pub fn channel_limit(&self) -> Option<u64> {
        match self.channel_max_users.0 {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(self.room_limit().unwrap_or(DEFAULT_CHANNEL_MAX_USERS)),
        }
    }

    /// Server ping period of channel sockets; `None` = no pings.
    pub fn channel_ping_interval(&self) -> Option<Duration> {
        (self.channel_ping_interval > 0).then(|| Duration::from_secs(self.channel_ping_interval))
    }

    /// How long a channel socket may stay silent; `None` = forever.
    pub fn channel_idle_timeout(&self) -> Option<Duration> {
        (self.channel_idle_timeout > 0).then(|| Duration::from_secs(self.channel_idle_timeout))
    }
}
