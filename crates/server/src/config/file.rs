//! The TOML file (`--config FILE`) as a settings layer.

use std::path::Path;

use super::error::ConfigError;
use super::SettingsLayer;

impl SettingsLayer {
    /// Reads a TOML file whose keys are the settings' names in lower case (`port = 8080`).
    pub fn from_file(path: &Path) -> Result<SettingsLayer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let toml_error = |source| ConfigError::Toml {
            path: path.display().to_string(),
            source,
        };
        // `[pusher]` holds the app list, not settings: taken out before the settings' strict
        // (deny_unknown_fields) reading.
        let mut table: toml::Table = toml::from_str(&text).map_err(toml_error)?;
        let pusher = table.remove("pusher");
        let mut layer: SettingsLayer = toml::Value::Table(table).try_into().map_err(toml_error)?;
        if let Some(pusher) = pusher {
            let section: crate::protocol::pusher::app_config::FileSection =
                pusher.try_into().map_err(toml_error)?;
            layer.pusher_apps = section.apps;
        }
        Ok(layer)
    }
}
