//! The state the server API's handlers take: the engine and the settings, taken from the
//! app's state by `FromRef` (see `app.rs`), so this protocol never imports the whole
//! `AppState`.

use std::sync::Arc;

use activenow_engine::Engine;

use crate::config::Settings;

#[derive(Clone)]
pub struct ServerApiState {
    pub engine: Engine,
    pub settings: Arc<Settings>,
}
