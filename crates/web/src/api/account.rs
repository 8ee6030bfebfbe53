//! Signing in and out, passwords and sessions through the JSON API. A sign-in answers with
//! the session cookie and the anti-forgery token that later writes must send as `X-CSRF-Token`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use usher_domain::secret::{SecretString, Token};
use utoipa::ToSchema;

use super::SessionInfo;
use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::frame::Frame;
use crate::groups::{self, SignedIn};
use crate::session::{CSRF_COOKIE, SESSION_COOKIE, set_cookie};

/// Email address and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInIn {
    pub email: String,
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// A new session. The cookie is set too; send `csrf_token` as `X-CSRF-Token` with writes.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedInOut {
    pub session: SessionInfo,
    pub csrf_token: String,
    /// True when the password has expired: change it before anything else.
    pub password_expired: bool,
    /// `full` (signed in), `second_factor` (send the second factor to
    /// `/api/v1/sign-in/second-factor` next) or `setup` (set one up under
    /// `/api/v1/factors/set-up` first).
    pub stage: String,
}

#[utoipa::path(post, path = "/api/v1/sign-in", tag = "sessions", request_body = SignInIn,
    responses(
        (status = 200, body = SignedInOut),
        (status = 400, description = "Wrong email or password, or a locked or deregistered account: one answer for all", body = Problem),
        (status = 429, description = "`rate_limited`: too many attempts from this address or for this account", body = Problem),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    ApiJson(b): ApiJson<SignInIn>,
) -> Result<Response, ApiError> {
    let s = state.app.sign_in(&b.email, &b.password, &frame.context(), frame.now).await?;
    if let Some(old) = frame.session() {
        state.app.sign_out(old, &frame.context(), frame.now).await?;
    }
    let csrf = Token::generate();
    let password_expired = state.app.password_expires_at(&s.user).is_some_and(|at| frame.now >= at);
    let out = SignedInOut {
        session: SessionInfo {
            user_id: s.user.id.to_string(),
            full_name: s.user.full_name.clone(),
            email: s.user.email.to_string(),
            role: s.user.role.as_str().to_owned(),
            signed_in_at: frame.now.rfc3339(),
        },
        csrf_token: csrf.expose().to_owned(),
        password_expired,
        stage: s.stage.as_str().to_owned(),
    };
    let mut response = Json(out).into_response();
    set_cookie(response.headers_mut(), SESSION_COOKIE, s.token.expose(), "Lax", None, state.secure_cookies);
    set_cookie(response.headers_mut(), CSRF_COOKIE, csrf.expose(), "Strict", None, state.secure_cookies);
    Ok(response)
}

#[utoipa::path(post, path = "/api/v1/sign-out", tag = "sessions", responses((status = 204, description = "Signed out (also when there was no session)")))]
pub async fn sign_out(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, ApiError> {
    if let Some(who) = frame.session() {
        state.app.sign_out(who, &frame.context(), frame.now).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(response.headers_mut(), SESSION_COOKIE, "", "Lax", Some(0), state.secure_cookies);
    Ok(response)
}

/// The current password and the new one, typed twice.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordIn {
    #[schema(value_type = String)]
    pub current_password: SecretString,
    #[schema(value_type = String)]
    pub password: SecretString,
    #[schema(value_type = String)]
    pub confirm_password: SecretString,
}

#[utoipa::path(post, path = "/api/v1/password", tag = "passwords", request_body = ChangePasswordIn,
    responses(
        (status = 204, description = "Changed; every other session ended and this one replaced (new cookie)"),
        (status = 400, description = "Wrong current password, or a message for each rule the new one breaks", body = Problem),
        (status = 401, description = "`unauthenticated`: sign in first", body = Problem),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SignedIn(ref who): SignedIn,
    ApiJson(b): ApiJson<ChangePasswordIn>,
) -> Result<Response, ApiError> {
    let token = state
        .app
        .change_password(who, &b.current_password, &b.password, &b.confirm_password, &frame.context(), frame.now)
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(response.headers_mut(), SESSION_COOKIE, token.expose(), "Lax", None, state.secure_cookies);
    Ok(response)
}

/// Whose password to reset.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequestIn {
    pub email: String,
}

#[utoipa::path(post, path = "/api/v1/password-resets", tag = "passwords", request_body = ResetRequestIn,
    responses(
        (status = 202, description = "The same answer whether or not the address has an account"),
        (status = 400, body = Problem),
        (status = 429, description = "`rate_limited`: too many requests from this address", body = Problem),
    ))]
pub async fn request_reset(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    ApiJson(b): ApiJson<ResetRequestIn>,
) -> Result<StatusCode, ApiError> {
    state.app.request_password_reset(&b.email, &frame.context(), frame.now).await?;
    Ok(StatusCode::ACCEPTED)
}

/// A signed-in session of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionOut {
    pub id: String,
    pub browser: String,
    pub ip: Option<String>,
    pub started_at: String,
    pub last_seen_at: String,
    pub current: bool,
    /// The services this session signed in to; they are told when it ends.
    pub services: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", responses((status = 200, body = [SessionOut]), (status = 401, description = "`unauthenticated`: sign in first", body = Problem)))]
pub async fn sessions(
    State(state): State<AppState>,
    SignedIn(ref who): SignedIn,
) -> Result<Json<Vec<SessionOut>>, ApiError> {
    let list = state.app.sessions(who).await?;
    let services = state.app.services_of_sessions(who).await?;
    Ok(Json(
        list.into_iter()
            .map(|s| SessionOut {
                current: s.id == who.session.id,
                id: s.id.to_string(),
                browser: crate::pages::account::browser_of(s.user_agent.as_deref()),
                ip: s.ip,
                started_at: s.created_at.rfc3339(),
                last_seen_at: s.last_seen_at.rfc3339(),
                services: services.iter().filter(|v| v.session_id == s.id).map(|v| v.client_name.clone()).collect(),
            })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/sessions/{id}/end", tag = "sessions",
    responses((status = 204, description = "Ended"), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 404, description = "`not_found`: no such session of yours", body = Problem)))]
pub async fn end_session(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SignedIn(ref who): SignedIn,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.app.end_session(who, &id, &frame.context(), frame.now).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/users/{id}/unlock", tag = "users",
    responses((status = 200, body = super::people::MemberOut), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`forbidden`: only an organisation administrator may do this.", body = Problem), (status = 404, description = "`not_found`: no such person in your organisation", body = Problem), (status = 409, description = "`conflict`: not locked", body = Problem)))]
pub async fn unlock(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<super::people::MemberOut>, ApiError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let l = state.app.unlock_member(admin, &id, &frame.context(), frame.now).await?;
    Ok(Json(super::people::member(&l, frame.now)))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/reregistration", tag = "users",
    responses((status = 200, body = super::people::MemberOut), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`forbidden`: only an organisation administrator may do this.", body = Problem), (status = 404, description = "`not_found`: no such person in your organisation", body = Problem), (status = 409, description = "`conflict`: not deregistered", body = Problem)))]
pub async fn reregister(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<super::people::MemberOut>, ApiError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let l = state.app.reregister_member(admin, &id, &frame.context(), frame.now).await?;
    Ok(Json(super::people::member(&l, frame.now)))
}
