//! The userinfo endpoint: the claims an access token releases, for GET or POST, with the token
//! in the `Authorization` header or (POST) the form body (RFC 6750 §2.1–2.2).

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use usher_domain::oidc::{OAuthError, OAuthErrorCode};

use super::{OAuthReply, bearer, no_store};
use crate::AppState;
use crate::frame::Frame;

#[derive(Debug, Deserialize)]
pub(crate) struct BodyToken {
    access_token: Option<String>,
}

async fn answer(state: &AppState, frame: &Frame, token: Option<String>) -> Response {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return OAuthReply(OAuthError::new(OAuthErrorCode::InvalidToken, "Send the access token as a Bearer token."))
            .into_response();
    };
    match state.app.userinfo(&token, frame.now).await {
        Ok(claims) => no_store(serde_json::Value::Object(claims)),
        Err(e) => OAuthReply(e).into_response(),
    }
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    headers: HeaderMap,
) -> Response {
    answer(&state, &frame, bearer(&headers)).await
}

pub(crate) async fn post(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    headers: HeaderMap,
    form: Result<Form<BodyToken>, FormRejection>,
) -> Response {
    let from_body = form.ok().and_then(|Form(b)| b.access_token);
    let from_header = bearer(&headers);
    if from_body.is_some() && from_header.is_some() {
        return OAuthReply(OAuthError::invalid_request("Send the access token one way only.")).into_response();
    }
    answer(&state, &frame, from_header.or(from_body)).await
}
