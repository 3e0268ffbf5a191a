//! Why settings were refused: a file that cannot be read or parsed, or an invalid value.

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid TOML in {path}: {source}")]
    Toml {
        path: String,
        source: toml::de::Error,
    },
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}
