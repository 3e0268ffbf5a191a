//! `activenow`: the presence server binary.

use std::path::PathBuf;
use std::time::Duration;

use activenow::protocol::channels;
use activenow::{AppState, Server, Settings, SettingsLayer};
use activenow_engine::Backend;
use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

/// ActiveNow: who is online, where, right now. Settings: flags > environment > --config
/// TOML file > defaults.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file of settings (keys: the setting names in lower case, e.g. `port = 8080`).
    #[arg(long, global = true, env = "ACTIVENOW_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: SettingsLayer,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Print the effective configuration (secrets masked) and exit.
    Config,
    /// Print a client token signed with JWT_SECRET (HS256), for tests and local use: for the
    /// channels endpoint, and with CLIENT_AUTH=jwt for every client endpoint (rooms, visitors,
    /// Socket.IO, online status). How to present it goes to stderr.
    Token {
        /// The user id: the token's `sub` and `user_id`.
        #[arg(long)]
        user: String,
        /// The `user_type` claim (seed 2: desktop, mobile, ...).
        #[arg(long = "type")]
        user_type: Option<String>,
        /// The `room_id` claim.
        #[arg(long)]
        room: Option<String>,
        /// Lifetime: 720h, 30m, 90s, 7d or seconds.
        #[arg(long, default_value = "720h")]
        ttl: String,
        /// The endpoint the token is for; one token serves them all (its subject is the
        /// identity everywhere), this only picks the usage hint printed to stderr.
        #[arg(long, value_enum, default_value = "channels")]
        protocol: TokenProtocol,
    },
}

/// Endpoints that take a client token.
#[derive(Clone, Copy, clap::ValueEnum)]
enum TokenProtocol {
    /// `GET /ws` (seed 2).
    Channels,
    /// `GET /v1/ws`, `/v1/ws/web`, `/web` and `POST /v1/activity/presence/update` (seed 0).
    Rooms,
    /// `/socket.io/` (seed 1): `io(url, {auth: {token}})`.
    Socketio,
    /// `/api/online/*` and its ping socket (seed 3).
    Online,
}

fn token_usage(protocol: TokenProtocol, user: &str) -> String {
    match protocol {
        TokenProtocol::Channels => "ws://HOST/ws?token=$TOKEN".into(),
        TokenProtocol::Rooms => format!(
            "ws://HOST/v1/ws?room=R&token=$TOKEN (identity {user:?}); HTTP: Authorization: Bearer $TOKEN"
        ),
        TokenProtocol::Socketio => format!(
            "io(\"http://HOST\", {{ auth: {{ token: TOKEN }} }}); presence:join with userId {user:?}"
        ),
        TokenProtocol::Online => format!(
            "ws://HOST/api/online/ws?token=$TOKEN; POST /api/online/heartbeat {{\"playerId\":{user:?}}} with Authorization: Bearer $TOKEN"
        ),
    }
}

fn token(
    settings: &Settings,
    user: &str,
    user_type: Option<&str>,
    room: Option<&str>,
    ttl: &str,
) -> anyhow::Result<String> {
    if settings.jwt_secret.is_empty() {
        anyhow::bail!("JWT_SECRET is not set: `activenow token` signs with it (set JWT_SECRET or --jwt-secret)");
    }
    if user.is_empty() {
        anyhow::bail!("--user must not be empty");
    }
    let ttl = channels::parse_ttl(ttl).map_err(anyhow::Error::msg)?;
    let now = activenow_engine::clock::now_ms();
    Ok(channels::mint(
        &settings.jwt_secret,
        user,
        user_type,
        room,
        ttl,
        now,
    )?)
}

fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    let file = match &cli.config {
        Some(path) => SettingsLayer::from_file(path)?,
        None => SettingsLayer::default(),
    };
    let settings = cli.settings.clone().over(file).resolve();
    settings.validate()?;
    Ok(settings)
}

fn init_logs(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if settings.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn terminated() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Memory, or Redis when `REDIS_URL` is set; an unreachable Redis is a start-up error.
async fn backend(settings: &Settings) -> anyhow::Result<Backend> {
    if settings.redis_url.is_empty() {
        return Ok(Backend::memory());
    }
    let mut options = activenow_redis::RedisOptions::new(
        &settings.redis_client_url(),
        &settings.node_id,
        settings.reaper_lookback(),
    );
    options.reaper_interval = settings.reaper_interval();
    options.connect_timeout = settings.redis_timeout();
    options.command_timeout = settings.redis_timeout();
    activenow_redis::connect(&options).await.map_err(|e| {
        anyhow::anyhow!("REDIS_URL is set but Redis is not usable ({e}); not starting")
    })
}

/// Raises this process's soft limit on open files to its hard limit: every socket is a file
/// descriptor, and the usual soft limit (1024) would cap the node at about a thousand
/// sockets. Returns `(effective soft limit, hard limit)`.
fn raise_fd_limit() -> std::io::Result<(u64, u64)> {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let soft = rlimit::increase_nofile_limit(hard)?;
    Ok((soft, hard))
}

/// Binds `BIND:PORT` with a `LISTEN_BACKLOG`-deep accept queue.
fn listen(settings: &Settings) -> anyhow::Result<TcpListener> {
    let ip: std::net::IpAddr = settings
        .bind
        .parse()
        .with_context(|| format!("BIND {:?} is not an IP address", settings.bind))?;
    let addr = std::net::SocketAddr::new(ip, settings.port);
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    // Accepted sockets inherit it (Linux): acks and broadcasts are small writes that Nagle's
    // algorithm would hold back behind an unacknowledged segment.
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(settings.listen_backlog)?)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    // A configured key that cannot be used is a startup error, not a silently closed door.
    channels::Verifier::from_settings(&settings)?;
    activenow::client_auth::warn_if_open(&settings);
    match raise_fd_limit() {
        Ok((soft, hard)) => {
            tracing::info!(limit = soft, hard, "open file limit (each socket uses one)");
            if soft < settings.max_connections {
                tracing::warn!(
                    limit = soft,
                    max_connections = settings.max_connections,
                    "the open file limit is below MAX_CONNECTIONS: raise `ulimit -n` (nofile) to serve that many sockets"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open file limit"),
    }
    let listener = listen(&settings)
        .with_context(|| format!("cannot listen on {}:{}", settings.bind, settings.port))?;
    let grace = Duration::from_secs(settings.shutdown_grace);
    let backend = backend(&settings).await?;
    let state = AppState::new(settings, backend);
    let server = Server::start(listener, state)?;
    tracing::info!(addr = %server.addr, backend = server.state.engine.backend_name(), "activenow listening");
    terminated().await;
    tracing::info!("shutting down: closing sockets with 1012");
    server.shutdown(grace).await;
    tracing::info!("stopped");
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One clear line (the cause chain), not a debug dump.
            eprintln!("activenow: error: {e:#}");
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The runtime is built after the settings are read: WORKER_THREADS sizes it.
fn runtime(settings: &Settings) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if settings.worker_threads > 0 {
        builder.worker_threads(settings.worker_threads);
    }
    Ok(builder.enable_all().build()?)
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = settings(&cli)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Config => {
            for (name, value) in settings.describe() {
                println!("{name}={value}");
            }
            Ok(())
        }
        Command::Token {
            user,
            user_type,
            room,
            ttl,
            protocol,
        } => {
            let t = token(
                &settings,
                &user,
                user_type.as_deref(),
                room.as_deref(),
                &ttl,
            )?;
            println!("{t}");
            eprintln!("use: {}", token_usage(protocol, &user));
            Ok(())
        }
        Command::Serve => {
            init_logs(&settings);
            runtime(&settings)?.block_on(serve(settings))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_have_tcp_nodelay() {
        let settings = Settings {
            bind: "127.0.0.1".into(),
            port: 0,
            ..Settings::default()
        };
        let listener = listen(&settings).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(
            accepted.nodelay().unwrap(),
            "the server's side of the socket"
        );
        drop(client);
    }
}
