//! Errors of the Redis backend, and their mapping to the engine's [`StoreError`].

use activenow_engine::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("invalid REDIS_URL: {0}")]
    Url(String),
    #[error("cannot connect to Redis: {0}")]
    Connect(String),
}

pub(crate) fn store_error(e: fred::error::Error) -> StoreError {
    use fred::error::ErrorKind;
    match e.kind() {
        ErrorKind::Parse | ErrorKind::Protocol | ErrorKind::InvalidArgument => {
            StoreError::Protocol(e.to_string())
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

pub(crate) fn protocol(what: &str) -> StoreError {
    StoreError::Protocol(format!("unexpected reply from Redis: {what}"))
}
