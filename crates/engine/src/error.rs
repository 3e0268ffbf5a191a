//! Engine and backend errors. Mapping to HTTP statuses and close codes happens at the edge.

/// A backend failure: the store or broker could not be reached or answered nonsense.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    #[error("backend protocol error: {0}")]
    Protocol(String),
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("not a member of this room")]
    NotMember,
    #[error("the room is full ({limit} members)")]
    RoomFull { limit: usize },
    #[error("the connection is closed")]
    Closed,
}
