//! Services: state and background loops of their own (online status with its sweeper,
//! session push with its expiry, the webhook sender), each folder holding the service and its HTTP and
//! WebSocket adapters. Protocols do not import services; the app wires both.

pub mod online;
pub mod session;
pub mod webhooks;
