//! The token endpoint: a code or a refresh token for tokens, for a client that proves itself.
//! No session and no anti-forgery token: the client authenticates in the request.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use usher_app::oidc::token::TokenParams;
use usher_domain::oidc::OAuthError;

use super::{OAuthReply, basic_credentials, no_store};
use crate::AppState;
use crate::frame::Frame;

pub(crate) async fn exchange(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    headers: HeaderMap,
    form: Result<Form<TokenParams>, FormRejection>,
) -> Response {
    let Ok(Form(params)) = form else {
        return OAuthReply(OAuthError::invalid_request(
            "Send the request as application/x-www-form-urlencoded, each parameter once.",
        ))
        .into_response();
    };
    let basic = match basic_credentials(&headers) {
        Ok(basic) => basic,
        Err(e) => return OAuthReply(e).into_response(),
    };
    match state.app.token(&params, basic, &frame.context(), frame.now).await {
        Ok(set) => match serde_json::to_value(&set) {
            Ok(body) => no_store(body),
            Err(_) => OAuthReply(OAuthError::server_error()).into_response(),
        },
        Err(e) => OAuthReply(e).into_response(),
    }
}
