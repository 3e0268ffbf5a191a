//! Services: state and background loops of their own (online status with its sweeper and
//! webhooks, session push with its expiry), each folder holding the service and its HTTP and
//! WebSocket adapters. Protocols do not import services; the app wires both.

pub mod online;
pub mod session;
