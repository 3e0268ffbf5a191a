//! Who may call the server API: a back end with `Authorization: Bearer <API_KEY>`.

use axum::http::HeaderMap;

use super::state::ServerApiState;
use crate::error::ApiError;

pub fn authorize(app: &ServerApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    crate::api_key::check(&app.settings.api_key, headers)
        .map_err(|r| ApiError::new(r.status(), r.code(), r.message()))
}
