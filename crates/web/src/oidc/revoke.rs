//! Token revocation (RFC 7009): a confidential client ends a refresh or access token of its own,
//! and with it the grant behind it. Unknown tokens get the same answer as known ones.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use usher_app::oidc::client_auth::ClientCredentials;
use usher_domain::oidc::OAuthError;

use super::{OAuthReply, basic_credentials};
use crate::AppState;
use crate::frame::Frame;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenForm {
    pub token: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion: Option<String>,
    pub client_assertion_type: Option<String>,
}

impl TokenForm {
    /// How the client proves itself, from the form and the Authorization header.
    pub(crate) fn credentials(&self, headers: &HeaderMap) -> Result<ClientCredentials, OAuthError> {
        Ok(ClientCredentials {
            basic: basic_credentials(headers)?,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            assertion: self.client_assertion.clone(),
            assertion_type: self.client_assertion_type.clone(),
        })
    }
}

/// The form, or the OAuth error for one that cannot be read or names no token.
pub(crate) fn read(form: Result<Form<TokenForm>, FormRejection>) -> Result<(TokenForm, String), OAuthError> {
    let Ok(Form(form)) = form else {
        return Err(OAuthError::invalid_request("Send the request as application/x-www-form-urlencoded."));
    };
    let token = form
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("token is required."))?;
    Ok((form, token))
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let result = async {
        let (form, token) = read(form)?;
        let credentials = form.credentials(&headers)?;
        state.app.revoke_token(&credentials, &token, &frame.context(), frame.now).await
    }
    .await;
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => OAuthReply(e).into_response(),
    }
}
