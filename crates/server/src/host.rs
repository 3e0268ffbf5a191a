//! What every protocol, service and the transport share: the engine, the settings, the
//! protocol layer's counters, the shutdown token and the socket tracker, the Origin policy,
//! the per-IP limits and the client-token verifier. No protocol's own state is here: each
//! protocol's state holds a [`Host`] beside its own parts, and only `app.rs` knows them all.

use std::ops::Deref;
use std::sync::Arc;

use activenow_engine::Engine;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::metrics::AppMetrics;
use crate::protocol::channels::auth::Verifier;
use crate::transport::origin::OriginPolicy;
use crate::transport::per_ip::IpLimits;

/// Cheap to clone: the shared parts of the server.
#[derive(Clone)]
pub struct Host(Arc<HostParts>);

pub struct HostParts {
    pub engine: Engine,
    pub settings: Settings,
    pub origins: OriginPolicy,
    /// Cancelled on SIGINT/SIGTERM: every socket task closes with 1012.
    pub shutdown: CancellationToken,
    /// Every socket task, so shutdown can wait for them (axum does not track upgraded
    /// connections).
    pub sockets: TaskTracker,
    pub metrics: AppMetrics,
    /// Per-IP limits and the trusted proxies (`MAX_CONNECTIONS_PER_IP`, handshake, login and
    /// session-creation rates).
    pub limits: IpLimits,
    /// The keys of client tokens: CLIENT_AUTH=jwt and the channels protocol (`JWT_SECRET`,
    /// `JWT_PUBLIC_KEY_FILE`).
    pub verifier: Arc<Verifier>,
    /// Connections held that the engine does not count (see [`UncountedConnections`]).
    pub uncounted: Arc<dyn UncountedConnections>,
}

/// Connections this node holds that the engine does not count yet, which `MAX_CONNECTIONS`
/// counts too: the Engine.IO sessions before their Socket.IO CONNECT
/// (`protocol/socketio/sessions.rs`).
pub trait UncountedConnections: Send + Sync {
    fn count(&self) -> u64;
}

impl Host {
    pub fn new(parts: HostParts) -> Host {
        Host(Arc::new(parts))
    }
}

impl Deref for Host {
    type Target = HostParts;
    fn deref(&self) -> &HostParts {
        &self.0
    }
}
