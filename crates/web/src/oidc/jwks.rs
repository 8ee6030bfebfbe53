//! The JWK Set: every key that signs now, the next key (published before it signs) and
//! retired keys still needed for tokens that have not expired. Cacheable for as long as a
//! rotation waits for caches to hold the next key.

use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use usher_app::oidc::keys::JWKS_MAX_AGE;

use crate::AppState;
use crate::error::ApiError;
use crate::frame::Frame;

pub(crate) async fn show(State(state): State<AppState>, Extension(frame): Extension<Arc<Frame>>) -> Response {
    match state.app.published_keys(frame.now).await {
        Ok(keys) => super::public_json(json!({ "keys": keys }), JWKS_MAX_AGE.seconds()),
        Err(e) => ApiError(e).into_response(),
    }
}
