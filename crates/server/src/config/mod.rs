//! Settings: flags > environment > TOML file (`--config FILE`) > defaults.
//!
//! Every setting is declared once in the `settings!` table below: its type, default,
//! environment variable and meaning. The table generates the layer that clap and the TOML
//! file fill in (every field optional), the resolved [`Settings`], and the listing that
//! `activenow config` prints with secrets masked. Every limit the server enforces is here.
//!
//! # Layout
//! - this file: the table (`scripts/check-docs` reads the variables from it).
//! - `generate`: the `settings!` macro, what the table becomes.
//! - [`limit`]: [`OptionalLimit`], a limit that may be left unset, and the channels' default.
//! - `file`: the TOML file's layer.
//! - `validate`: [`Settings::validate`], the values refused at start-up.
//! - `derived`: what the settings mean (durations, limits, lists) for the code that reads them.
//! - `error`: [`ConfigError`], why settings are refused.

#[macro_use]
mod generate;
mod derived;
pub mod error;
mod file;
pub mod limit;
#[cfg(test)]
mod tests;
mod validate;

pub use error::ConfigError;
pub use limit::{OptionalLimit, DEFAULT_CHANNEL_MAX_USERS};

settings! {
    /// Listen port [default: 8080].
    port: u16 = 8080, "PORT";
    /// Listen address [default: 0.0.0.0].
    bind: String = "0.0.0.0".into(), "BIND";
    /// Seconds a room session lives without a heartbeat [default: 30].
    presence_ttl: u64 = 30, "PRESENCE_TTL";
    /// The same TTL in milliseconds (seed 1's spelling); wins over PRESENCE_TTL when set
    /// [default: 0 = use PRESENCE_TTL].
    presence_ttl_ms: u64 = 0, "PRESENCE_TTL_MS";
    /// Milliseconds between reaper passes that remove expired sessions [default: 1000].
    presence_reaper_interval_ms: u64 = 1000, "PRESENCE_REAPER_INTERVAL_MS";
    /// Shared backends: milliseconds a dead node's connections may linger before any node
    /// reaps them; with the default a dead node's members are gone within TTL + reaper
    /// interval (SPEC §9) [default: 0 = the presence TTL, at least 3 reaper intervals].
    presence_reaper_lookback_ms: u64 = 0, "PRESENCE_REAPER_LOOKBACK_MS";
    /// Milliseconds a dropped connection's memberships stay present before it leaves, so a
    /// page reload (the new connection joins in time, on any node) shows no leave and no join
    /// for its identity; 5000 is recommended [default: 0 = leave at once].
    presence_leave_grace_ms: u64 = 0, "PRESENCE_LEAVE_GRACE_MS";
    /// Which departures wait for PRESENCE_LEAVE_GRACE_MS: a comma list among `close` (the
    /// socket dropped) and `ttl` (a silent connection leaves at TTL + grace); an explicit
    /// leave is never delayed [default: close].
    presence_leave_grace_on: String = "close".into(), "PRESENCE_LEAVE_GRACE_ON";
    /// Dropped connections that may linger in the leave grace on this node at once; a drop
    /// beyond it leaves at once (`leave_grace_overflows_total`) [default: 10000].
    presence_leave_grace_max_pending: usize = 10_000, "PRESENCE_LEAVE_GRACE_MAX_PENDING";
    /// Seconds between server WebSocket pings; 0 = off [default: 0].
    ping_interval: u64 = 0, "PING_INTERVAL";
    /// Comma-separated Origin allowlist for WebSockets and CORS; empty = any; `*` = any
    /// [default: empty].
    allowed_origins: String = String::new(), "ALLOWED_ORIGINS";
    /// Largest inbound WebSocket message (and Socket.IO payload), in bytes; larger frames
    /// close the socket with 1009 [default: 65536].
    max_frame_bytes: usize = 65_536, "MAX_FRAME_BYTES";
    /// Identities per room; 0 = no limit [default: 0].
    max_room_users: u64 = 0, "MAX_ROOM_USERS";
    /// Frames waiting per connection at which its slow-consumer clock starts: a queue that
    /// stays this long for SLOW_CONSUMER_TIMEOUT_MS is closed (1008) [default: 256].
    send_queue_capacity: usize = 256, "SEND_QUEUE_CAPACITY";
    /// Frames waiting per connection at most (a burst may pass SEND_QUEUE_CAPACITY up to
    /// here); reaching it closes the connection as a slow consumer at once [default: 4096].
    send_queue_max_frames: usize = 4096, "SEND_QUEUE_MAX_FRAMES";
    /// Milliseconds a connection's queue may stay at SEND_QUEUE_CAPACITY, and a socket write
    /// may make no progress, before the connection is closed as a slow consumer and its TCP
    /// stream dropped [default: 5000].
    slow_consumer_timeout_ms: u64 = 5000, "SLOW_CONSUMER_TIMEOUT_MS";
    /// Most bytes one WebSocket read takes from the kernel, into a buffer each worker thread
    /// shares; a socket keeps bytes only of an incomplete frame [default: 4096].
    ws_read_buffer_bytes: usize = 4096, "WS_READ_BUFFER_BYTES";
    /// Output a WebSocket queues before writing it (written out when reached or on flush);
    /// the buffer exists only while it holds unwritten bytes [default: 4096].
    ws_write_buffer_bytes: usize = 4096, "WS_WRITE_BUFFER_BYTES";
    /// Concurrent WebSockets this node accepts; beyond it upgrades get 503 [default: 200000].
    max_connections: u64 = 200_000, "MAX_CONNECTIONS";
    /// Messages per second one connection may send (burst: twice as many); excess messages
    /// are dropped with a `rate_limited` error [default: 20].
    max_messages_per_second: u32 = 20, "MAX_MESSAGES_PER_SECOND";
    /// Longest session id (identity), bytes [default: 256].
    max_session_id_bytes: usize = 256, "MAX_SESSION_ID_BYTES";
    /// Largest Socket.IO presence state (`state`, merged `patchState`) as JSON, bytes
    /// (seed 1 sets no limit; 64 KiB covers what its apps send) [default: 65536].
    presence_max_state_bytes: usize = 65_536, "PRESENCE_MAX_STATE_BYTES";
    /// Items per metadata channel (and per write) [default: 1000].
    metadata_max_items: usize = 1000, "METADATA_MAX_ITEMS";
    /// Longest metadata item key, bytes (seed 1 sets no limit; its apps' keys of a few hundred
    /// bytes fit) [default: 1024].
    metadata_max_key_bytes: usize = 1024, "METADATA_MAX_KEY_BYTES";
    /// Longest metadata item value, bytes [default: 65536].
    metadata_max_value_bytes: usize = 65_536, "METADATA_MAX_VALUE_BYTES";
    /// Identities per `GET /v1/rooms/{room}/members` page when `limit` is not given (lowered
    /// to MEMBERS_PAGE_MAX) [default: 100].
    members_page_default: usize = 100, "MEMBERS_PAGE_DEFAULT";
    /// Most identities per members page; a larger `limit` is lowered to it [default: 1000].
    members_page_max: usize = 1000, "MEMBERS_PAGE_MAX";
    /// Longest lock TTL a client may ask for, milliseconds [default: 3600000].
    lock_max_ttl_ms: u64 = 3_600_000, "LOCK_MAX_TTL_MS";
    /// Socket.IO packets waiting per socket in its Engine.IO channel; beyond it, up to
    /// SEND_QUEUE_MAX_FRAMES wait in the socket's overflow, for at most
    /// SLOW_CONSUMER_TIMEOUT_MS (then the socket is closed as a slow consumer) [default: 64].
    socketio_max_buffer: usize = 64, "SOCKETIO_MAX_BUFFER";
    /// Largest Engine.IO message (a WebSocket message or a polling request body), bytes;
    /// larger ones close the session. Seed 1's Node server allows 1,000,000 (Socket.IO's
    /// `maxHttpBufferSize` default) [default: 1000000].
    socketio_max_payload_bytes: usize = 1_000_000, "SOCKETIO_MAX_PAYLOAD_BYTES";
    /// WebSocket read buffer per Socket.IO socket, bytes; grows for larger frames
    /// [default: 1024].
    socketio_ws_read_buffer_bytes: usize = 1024, "SOCKETIO_WS_READ_BUFFER_BYTES";
    /// Custom Socket.IO events relayed from a joined socket to the other members of its room
    /// on every node: comma-separated names, or prefixes ending in `*` (`chat:*`); empty =
    /// none [default: empty].
    socketio_relay_events: String = String::new(), "SOCKETIO_RELAY_EVENTS";
    /// Relayed events per second one socket may send (bursts of twice as many); excess ones
    /// are not relayed and an ack, if asked, says `rate_limited` (Pusher's client-event
    /// limit) [default: 10].
    socketio_relay_rate: u32 = 10, "SOCKETIO_RELAY_RATE";
    /// Largest payload of a relayed event, bytes of JSON; larger ones are not relayed and
    /// an ack, if asked, says `too_large` (Pusher's client-event limit) [default: 10240].
    socketio_relay_max_bytes: usize = 10_240, "SOCKETIO_RELAY_MAX_BYTES";
    /// Milliseconds between Engine.IO pings [default: 25000].
    socketio_ping_interval_ms: u64 = 25_000, "SOCKETIO_PING_INTERVAL_MS";
    /// Milliseconds to wait for an Engine.IO pong before closing [default: 20000].
    socketio_ping_timeout_ms: u64 = 20_000, "SOCKETIO_PING_TIMEOUT_MS";
    /// Milliseconds an Engine.IO session may stay open without a Socket.IO CONNECT; it
    /// holds a MAX_CONNECTIONS place meanwhile [default: 10000].
    socketio_connect_timeout_ms: u64 = 10_000, "SOCKETIO_CONNECT_TIMEOUT_MS";
    /// Pending connections the kernel queues for accept (capped by net.core.somaxconn); the
    /// usual 1024 overflows under connection bursts [default: 4096].
    listen_backlog: u32 = 4096, "LISTEN_BACKLOG";
    /// Milliseconds a client has to send a request's headers, counted from the accept (or
    /// from the first byte after an idle keep-alive wait); slower connections (slowloris, a
    /// WebSocket handshake that does not complete) are dropped [default: 10000].
    http_header_timeout_ms: u64 = 10_000, "HTTP_HEADER_TIMEOUT_MS";
    /// Milliseconds a keep-alive HTTP connection may wait for its next request before it is
    /// closed [default: 60000].
    http_idle_timeout_ms: u64 = 60_000, "HTTP_IDLE_TIMEOUT_MS";
    /// Milliseconds a request body may take to arrive once its headers are in; slower bodies
    /// get 408 and the connection closes [default: 30000].
    http_body_timeout_ms: u64 = 30_000, "HTTP_BODY_TIMEOUT_MS";
    /// Largest HTTP request body, bytes (Socket.IO polling bodies may also reach
    /// MAX_FRAME_BYTES); larger ones get 413 [default: 65536].
    http_max_body_bytes: usize = 65_536, "HTTP_MAX_BODY_BYTES";
    /// TCP connections (HTTP and WebSocket) one client IP (IPv6: one /64) may hold open; the
    /// next one gets 429 and is closed. Behind TRUSTED_PROXIES it counts the WebSockets of
    /// each forwarded client instead. 0 = no limit [default: 0].
    max_connections_per_ip: u64 = 0, "MAX_CONNECTIONS_PER_IP";
    /// WebSocket and Engine.IO handshakes one client IP may start per second (bursts of twice
    /// as many); beyond it 429. 0 = no limit [default: 0].
    max_handshakes_per_ip_per_second: u32 = 0, "MAX_HANDSHAKES_PER_IP_PER_SECOND";
    /// Comma-separated addresses and CIDR ranges of reverse proxies whose X-Forwarded-For is
    /// believed (for per-IP limits and the online API's `ip`); empty = nobody's: the peer
    /// address is the client [default: empty].
    trusted_proxies: String = String::new(), "TRUSTED_PROXIES";
    /// Threads that run connections; 0 = one per CPU core. Several nodes sharing a few cores
    /// (tests, benchmarks) wait less on each other with 1 [default: 0].
    worker_threads: usize = 0, "WORKER_THREADS";
    /// Seconds to wait for sockets to close on SIGINT/SIGTERM [default: 10].
    shutdown_grace: u64 = 10, "SHUTDOWN_GRACE";
    /// `text` or `json` logs [default: text].
    log_format: String = "text".into(), "LOG_FORMAT";
    /// This node's id, the prefix of its connection ids [default: a random id].
    node_id: String = random_node_id(), "NODE_ID";
    /// Redis URL (`redis://[user:password@]host:port[/db]`, `redis-cluster://host:port`,
    /// `redis-sentinel://...`); set = the Redis backend, for
    /// several nodes; unreachable at start-up = exit non-zero [default: unset = memory].
    redis_url: String = String::new(), "REDIS_URL", secret;
    /// `REDIS_URL` names a Redis Cluster node (a `redis://` or `rediss://` URL is then read
    /// as `redis-cluster://` / `rediss-cluster://`; the other nodes are discovered)
    /// [default: false].
    redis_cluster: bool = false, "REDIS_CLUSTER";
    /// Longest wait for Redis, in ms: the first connection, and each command while Redis is
    /// unreachable (then `/readyz` answers 503) [default: 2000].
    redis_timeout_ms: u64 = 2000, "REDIS_TIMEOUT_MS";
    /// Bearer key for server-side endpoints (session scan/confirm/reject/notify/delete,
    /// channel metadata writes, locks); unset = those endpoints refuse every call
    /// [default: unset].
    api_key: String = String::new(), "API_KEY", secret;
    /// Seconds an HTTP online-status player stays online without a heartbeat [default: 15].
    online_ttl: u64 = 15, "ONLINE_TTL";
    /// The same in milliseconds; wins when set [default: 0 = use ONLINE_TTL].
    online_ttl_ms: u64 = 0, "ONLINE_TTL_MS";
    /// Milliseconds without a `ping` after which the ping socket logs its player out and
    /// closes [default: 10000].
    online_ping_timeout_ms: u64 = 10_000, "ONLINE_PING_TIMEOUT_MS";
    /// Seconds an offline player's record (status offline, logoutTime) is kept [default: 3600].
    online_record_retention: u64 = 3600, "ONLINE_RECORD_RETENTION";
    /// Offline records kept at most (all nodes together on Redis); one more going offline
    /// removes the oldest, retention or not. 0 = no limit [default: 100000].
    online_max_offline_records: u64 = 100_000, "ONLINE_MAX_OFFLINE_RECORDS";
    /// Players per page of `GET /api/online/players` without `limit` [default: 100].
    online_page_default: usize = 100, "ONLINE_PAGE_DEFAULT";
    /// Largest `limit` of `GET /api/online/players` [default: 1000].
    online_page_max: usize = 1000, "ONLINE_PAGE_MAX";
    /// Online/offline transitions waiting for their record update and webhook; beyond it they
    /// are dropped with a log and a metric [default: 65536].
    online_event_queue: usize = 65_536, "ONLINE_EVENT_QUEUE";
    /// HTTP online-status players online at once (all nodes together on Redis); a login of
    /// one more gets 503. They are not sockets: MAX_CONNECTIONS does not count them
    /// [default: 100000].
    online_max_players: u64 = 100_000, "ONLINE_MAX_PLAYERS";
    /// Online logins one client IP may make per second (bursts of twice as many); beyond it
    /// 429. Calls with the API_KEY bearer (a game back end) are exempt. 0 = no limit
    /// [default: 10].
    online_logins_per_ip_per_second: u32 = 10, "ONLINE_LOGINS_PER_IP_PER_SECOND";
    /// Where webhooks (`user.online` / `user.offline`, room events) are POSTed (http:// or
    /// https://); unset = no webhooks [default: unset].
    webhook_url: String = String::new(), "WEBHOOK_URL";
    /// HMAC-SHA256 key of the `X-ActiveNow-Signature` header [default: unset = unsigned].
    webhook_secret: String = String::new(), "WEBHOOK_SECRET", secret;
    /// Attempts per webhook event (the first one included) [default: 5].
    webhook_max_attempts: u32 = 5, "WEBHOOK_MAX_ATTEMPTS";
    /// Milliseconds before the first retry; doubled on each further retry [default: 500].
    webhook_backoff_ms: u64 = 500, "WEBHOOK_BACKOFF_MS";
    /// Longest wait between retries, milliseconds [default: 30000].
    webhook_backoff_max_ms: u64 = 30_000, "WEBHOOK_BACKOFF_MAX_MS";
    /// Milliseconds one webhook request may take [default: 5000].
    webhook_timeout_ms: u64 = 5000, "WEBHOOK_TIMEOUT_MS";
    /// Webhook events waiting to be sent; beyond it new events are dropped with a log and a
    /// metric [default: 10000].
    webhook_queue_capacity: usize = 10_000, "WEBHOOK_QUEUE_CAPACITY";
    /// Webhook event types sent: a comma list of `user.online`, `user.offline`,
    /// `room.occupied`, `room.vacated`, `member.joined`, `member.left`, `member.updated`, or
    /// `*` for all [default: user.online,user.offline].
    webhook_events: String = "user.online,user.offline".into(), "WEBHOOK_EVENTS";
    /// Rooms whose room events are sent: a comma list of name patterns where `*` matches any
    /// run of characters [default: *].
    webhook_rooms: String = "*".into(), "WEBHOOK_ROOMS";
    /// Room events per webhook request at most: under load the sender takes every room event
    /// already waiting, up to this many, into one POST [default: 50].
    webhook_batch_max: usize = 50, "WEBHOOK_BATCH_MAX";
    /// Seconds a push session lives when its creator gives no `ttl_secs` [default: 300].
    session_ttl: u64 = 300, "SESSION_TTL";
    /// Largest `ttl_secs` of `POST /v1/sessions` [default: 86400].
    session_max_ttl: u64 = 86_400, "SESSION_MAX_TTL";
    /// Seconds a session's outcome stays readable after its expiry [default: 300].
    session_retention: u64 = 300, "SESSION_RETENTION";
    /// Milliseconds between session expiry passes (at most 5000) [default: 1000].
    session_expiry_check_ms: u64 = 1000, "SESSION_EXPIRY_CHECK_MS";
    /// Seconds between WebSocket pings on session sockets; 0 = off [default: 30].
    session_ping_interval: u64 = 30, "SESSION_PING_INTERVAL";
    /// Sessions that may exist at once (all nodes together on Redis), each until its expiry
    /// plus SESSION_RETENTION; beyond it creation gets 503 [default: 100000].
    session_max_active: u64 = 100_000, "SESSION_MAX_ACTIVE";
    /// Push sessions (`POST /v1/sessions`, `/v1/qr-login/generate`) one client IP may create
    /// per second (bursts of twice as many); beyond it 429. Calls with the API_KEY bearer
    /// are exempt. 0 = no limit [default: 5].
    session_creates_per_ip_per_second: u32 = 5, "SESSION_CREATES_PER_IP_PER_SECOND";
    /// Push sessions one client IP may hold on this node, each until its expiry +
    /// SESSION_RETENTION (429 beyond; calls with API_KEY are exempt); 0 = no limit
    /// [default: 100].
    session_max_per_ip: u64 = 100, "SESSION_MAX_PER_IP";
    /// Pushes kept per session for sockets that connect later [default: 16].
    session_max_pushes: usize = 16, "SESSION_MAX_PUSHES";
    /// Pusher (`/app/{key}`, `/apps/{id}/...`): the app id of the one Pusher app; with any of
    /// PUSHER_APP_ID / KEY / SECRET unset both endpoints refuse everyone [default: unset].
    pusher_app_id: String = String::new(), "PUSHER_APP_ID";
    /// Pusher: the app key clients connect with (public) [default: unset].
    pusher_app_key: String = String::new(), "PUSHER_APP_KEY";
    /// Pusher: the app secret that signs channel authorizations and API calls [default: unset].
    pusher_app_secret: String = String::new(), "PUSHER_APP_SECRET", secret;
    /// Pusher: where the PUSHER_APP_ID app's webhooks (`channel_occupied`, `channel_vacated`,
    /// `member_added`, `member_removed`, `client_event`, signed with X-Pusher-Signature) are
    /// POSTed; unset =
    /// none. `[[pusher.apps]]` entries set `webhook_url` [default: unset].
    pusher_app_webhook_url: String = String::new(), "PUSHER_APP_WEBHOOK_URL";
    /// Pusher: clients may send `client-*` events on private and presence channels (Pusher's
    /// "Enable client events" switch) [default: true].
    pusher_client_events: bool = true, "PUSHER_CLIENT_EVENTS";
    /// Pusher: client events per second one socket may send; more get pusher:error 4301
    /// and are dropped (Pusher: 10) [default: 10].
    pusher_client_event_rate: u32 = 10, "PUSHER_CLIENT_EVENT_RATE";
    /// Pusher: subscribers of public and private channels get
    /// `pusher_internal:subscription_count` when the channel's subscription count changes
    /// (Pusher's "Enable subscription counting" app setting); `[[pusher.apps]]` entries set
    /// `subscription_count_events` [default: false].
    pusher_subscription_count_events: bool = false, "PUSHER_SUBSCRIPTION_COUNT_EVENTS";
    /// Pusher: subscription counts coalesce per channel and node to at most one event per
    /// this many milliseconds (the first change after a quiet spell at once, the newest at the
    /// end of the window), so a join storm is not N^2 frames; 0 = every change
    /// [default: 500].
    pusher_subscription_count_interval_ms: u64 = 500, "PUSHER_SUBSCRIPTION_COUNT_INTERVAL_MS";
    /// Pusher: the `activity_timeout` sent to clients, seconds; the server pings a socket
    /// this often and closes it with 4201 after 30 s (at most the timeout itself) more of
    /// silence [default: 120].
    pusher_activity_timeout: u64 = 120, "PUSHER_ACTIVITY_TIMEOUT";
    /// Pusher: distinct users per presence channel; the next gets a subscription_error
    /// (Pusher: 100) [default: 100].
    pusher_max_presence_members: u64 = 100, "PUSHER_MAX_PRESENCE_MEMBERS";
    /// Pusher: largest presence `user_info`, bytes of JSON (Pusher: 1 KB) [default: 1024].
    pusher_max_user_info_bytes: usize = 1024, "PUSHER_MAX_USER_INFO_BYTES";
    /// Pusher: largest `data` of a client or API event, bytes (Pusher: 10 KB); API calls get
    /// 413, client events pusher:error 4300 [default: 10240].
    pusher_max_event_bytes: usize = 10_240, "PUSHER_MAX_EVENT_BYTES";
    /// Pusher: channels one socket may subscribe to [default: 100].
    pusher_max_channels_per_socket: usize = 100, "PUSHER_MAX_CHANNELS_PER_SOCKET";
    /// Pusher: seconds a cache channel keeps its last event (Pusher: 30 minutes)
    /// [default: 1800].
    pusher_cache_ttl: u64 = 1800, "PUSHER_CACHE_TTL";
    /// Pusher: largest cache channel event kept, bytes of `data`; a larger event is delivered
    /// but not kept [default: 10240].
    pusher_cache_max_event_bytes: usize = 10_240, "PUSHER_CACHE_MAX_EVENT_BYTES";
    /// Channels (`/ws`): HS256 secret that signs client tokens; with neither it nor
    /// JWT_PUBLIC_KEY_FILE set, `/ws` refuses every client [default: unset].
    jwt_secret: String = String::new(), "JWT_SECRET", secret;
    /// Channels: a PEM public key (RSA for RS256, EC P-256 for ES256) that verifies client
    /// tokens, besides or instead of JWT_SECRET [default: unset].
    jwt_public_key_file: String = String::new(), "JWT_PUBLIC_KEY_FILE";
    /// Channels: seconds of clock skew tolerated on a token's `exp` and `nbf` [default: 5].
    jwt_leeway: u64 = 5, "JWT_LEEWAY";
    /// Channels: refuse tokens without an `exp` claim [default: false].
    jwt_require_exp: bool = false, "JWT_REQUIRE_EXP";
    /// Channels: subscribers (distinct token subjects) per channel; 0 = no limit. Unset:
    /// MAX_ROOM_USERS when that is non-zero, else 50 [default: unset].
    channel_max_users: OptionalLimit = OptionalLimit::default(), "CHANNEL_MAX_USERS";
    /// Channels: channels one socket may subscribe to; more get TOO_MANY_SUBSCRIPTIONS
    /// [default: 16].
    channel_max_subscriptions: usize = 16, "CHANNEL_MAX_SUBSCRIPTIONS";
    /// Channels: largest `data` of a publish, bytes of JSON; larger ones get TOO_LARGE
    /// [default: 32768].
    channel_max_payload_bytes: usize = 32_768, "CHANNEL_MAX_PAYLOAD_BYTES";
    /// Channels: publishes per second one socket may make (bursts of twice as many); excess
    /// publishes are dropped with RATE_LIMITED [default: 10].
    channel_publish_rate: u32 = 10, "CHANNEL_PUBLISH_RATE";
    /// Channels: seconds between server pings; 0 = off [default: 30].
    channel_ping_interval: u64 = 30, "CHANNEL_PING_INTERVAL";
    /// Channels: seconds a socket may stay silent (no message, no pong) before it is closed
    /// with 1001; 0 = never [default: 60].
    channel_idle_timeout: u64 = 60, "CHANNEL_IDLE_TIMEOUT";
    /// Identity proof of clients: `off` (the seeds' behaviour: a client-chosen session id,
    /// userId or playerId is a bearer credential) or `jwt` (every endpoint where a client
    /// claims an identity needs a token verified as on `/ws`; the identity is its subject)
    /// [default: off].
    client_auth: String = "off".into(), "CLIENT_AUTH";
    /// Who may write Socket.IO channel metadata: `members` (a joined socket, as its joined
    /// userId; with CLIENT_AUTH=jwt joined to the channel's room) or `server` (only the HTTP
    /// API with API_KEY; Socket.IO writes get METADATA_FORBIDDEN) [default: members].
    metadata_write: String = "members".into(), "METADATA_WRITE";
    /// Serve the `/demo` and `/dashboard` pages and the SDK bundle at `/sdk.js`
    /// [default: true].
    pages: bool = true, "PAGES";
    /// Milliseconds between the samples of `GET /v1/stats/history` (the dashboard's chart)
    /// [default: 60000].
    stats_sample_interval_ms: u64 = 60_000, "STATS_SAMPLE_INTERVAL_MS";
    /// Samples `GET /v1/stats/history` keeps (60 one-minute samples = the last hour)
    /// [default: 60].
    stats_history_samples: usize = 60, "STATS_HISTORY_SAMPLES";
    /// Milliseconds between checks for a changed snapshot on `GET /v1/stats/stream`; one check
    /// per node, shared by every dashboard [default: 1000].
    stats_push_interval_ms: u64 = 1000, "STATS_PUSH_INTERVAL_MS";
    /// Dashboard streams (`GET /v1/stats/stream`) open at once on this node; more get 503
    /// [default: 32].
    stats_max_streams: usize = 32, "STATS_MAX_STREAMS";
}

fn random_node_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

impl Default for Settings {
    fn default() -> Self {
        SettingsLayer::default().resolve()
    }
}
