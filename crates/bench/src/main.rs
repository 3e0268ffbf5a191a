//! # activenow-bench
//!
//! Drives a running ActiveNow server over real loopback sockets and compares every figure
//! with the *floor*: a bare WebSocket broadcast server built from the same stack (axum,
//! tungstenite, the same buffer sizes) with no presence logic, measured in the same run.
//!
//! # Layout
//! - [`cli`]: the command line (scenarios and their parameters).
//! - [`conn`]: client sockets bound to 127.0.0.x source addresses; the fd limit.
//! - [`http`]: a minimal keep-alive HTTP/1.1 client (updates, `/metrics`).
//! - [`target`]: the server under test: launched or given, its RSS and counters.
//! - [`scenario`]: the client side of `idle`, `heartbeat`, `churn` and `fanout`.
//! - [`workers`]: splitting a scenario over several generator processes.
//! - [`run`]: one measured run per target; medians; ratios to the floor.
//! - [`report`]: latency percentiles, the table and the JSON file.
//! - [`floor`]: the floor server (`activenow-bench floor-server`).
//! - [`socketio`]: seed 1's Socket.IO presence load (`activenow-bench socketio`), against
//!   any URL.
//! - [`pusher`]: Pusher Channels protocol 7 presence load (`activenow-bench pusher`), against
//!   any Pusher server at a URL.
//! - [`server_api`]: the server API's reads at a room of 100,000 members
//!   (`activenow-bench server-api`).
//! - [`webhooks`]: room-webhook throughput with batching (`activenow-bench webhooks`).

mod cli;
mod conn;
mod floor;
mod http;
mod pusher;
mod report;
mod run;
mod scenario;
mod server_api;
mod socketio;
mod target;
mod webhooks;
mod workers;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // A split run has several generator processes sharing the cores with the servers: one
    // thread each keeps them from preempting one another.
    if let cli::Command::Idle(a)
    | cli::Command::Heartbeat(a)
    | cli::Command::Churn(a)
    | cli::Command::Fanout(a) = &cli.command
    {
        if a.worker.is_some() {
            builder.worker_threads(1);
        }
    }
    let rt = builder.enable_all().build()?;
    match cli.command {
        cli::Command::FloorServer(args) => rt.block_on(floor::serve(args)),
        cli::Command::Idle(args) => rt.block_on(run::main(scenario::Kind::Idle, args)),
        cli::Command::Heartbeat(args) => rt.block_on(run::main(scenario::Kind::Heartbeat, args)),
        cli::Command::Churn(args) => rt.block_on(run::main(scenario::Kind::Churn, args)),
        cli::Command::Fanout(args) => rt.block_on(run::main(scenario::Kind::Fanout, args)),
        cli::Command::Socketio(args) => rt.block_on(crate::socketio::main(args)),
        cli::Command::Pusher(args) => rt.block_on(crate::pusher::main(args)),
        cli::Command::ServerApi(args) => rt.block_on(crate::server_api::main(args)),
        cli::Command::Webhooks(args) => rt.block_on(crate::webhooks::main(args)),
    }
}
