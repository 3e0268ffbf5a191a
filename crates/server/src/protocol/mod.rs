//! Protocol adapters: each parses and validates its clients' messages, translates them into
//! engine calls, and renders engine events into its wire format (once per event, through a
//! [`activenow_engine::Renderer`]). Nothing here keeps presence state of its own.

pub mod activenow;
pub mod channels;
pub mod metadata_http;
pub mod pusher;
pub mod server_api;
pub mod socketio;
