//! Token introspection (RFC 7662): whether a token of the asking client is live, and what it
//! says. Another client's token, an unknown one or a revoked one is `{"active": false}`.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::revoke::{TokenForm, read};
use super::{OAuthReply, no_store};
use crate::AppState;
use crate::frame::Frame;

pub(crate) async fn introspect(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let result = async {
        let (form, token) = read(form)?;
        let credentials = form.credentials(&headers)?;
        state.app.introspect(&credentials, &token, &frame.context(), frame.now).await
    }
    .await;
    match result {
        Ok(body) => no_store(body),
        Err(e) => OAuthReply(e).into_response(),
    }
}
