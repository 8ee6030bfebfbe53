//! Second factors through the JSON API: the second step of signing in, setting up an
//! authenticator app, the person's factors, and an administrator's reset of someone's factors.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use usher_app::mfa::Method;
use usher_domain::Error;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::frame::Frame;
use crate::groups::{Pending, SettingUp, SignedIn};
use crate::session::{SESSION_COOKIE, set_cookie};

/// A second factor: `app`, `email` or `recovery_code`, and the code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorIn {
    pub method: String,
    pub code: String,
}

/// Signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorOut {
    /// Always `full`: the new session cookie is signed in.
    pub stage: String,
    /// When a recovery code was used: how many are left.
    pub recovery_codes_left: Option<usize>,
}

#[utoipa::path(post, path = "/api/v1/sign-in/second-factor", tag = "sessions", request_body = SecondFactorIn,
    responses(
        (status = 200, description = "Signed in; a new session cookie replaces the old", body = SecondFactorOut),
        (status = 400, description = "Wrong, expired, superseded or reused code", body = Problem),
        (status = 401, description = "`unauthenticated`: no session waiting for a second factor", body = Problem),
    ))]
pub async fn second_factor(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Pending(ref who): Pending,
    ApiJson(b): ApiJson<SecondFactorIn>,
) -> Result<Response, ApiError> {
    let method = Method::parse(&b.method)
        .filter(|m| *m != Method::RecoveryText)
        .ok_or_else(|| ApiError(Error::field("method", "method must be app, email or recovery_code")))?;
    let done = state.app.verify_second_factor(who, method, &b.code, &frame.context(), frame.now).await?;
    let mut response =
        Json(SecondFactorOut { stage: "full".into(), recovery_codes_left: done.recovery_codes_left }).into_response();
    set_cookie(response.headers_mut(), SESSION_COOKIE, done.token.expose(), "Lax", None, state.secure_cookies);
    Ok(response)
}

#[utoipa::path(post, path = "/api/v1/sign-in/email-code", tag = "sessions",
    responses((status = 204, description = "A code was emailed"), (status = 401, description = "`unauthenticated`: no session waiting for a second factor", body = Problem), (status = 409, description = "`conflict`: emailed codes are not one of this person's factors", body = Problem), (status = 429, description = "`rate_limited`: a code was sent moments ago, or too many have been sent", body = Problem)))]
pub async fn email_code(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Pending(ref who): Pending,
) -> Result<StatusCode, ApiError> {
    state.app.send_sign_in_email_code(who, &frame.context(), frame.now).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeIn {
    pub code: String,
}

#[utoipa::path(post, path = "/api/v1/factors/set-up/check-code", tag = "factors",
    responses((status = 204, description = "A check code was texted to the registered mobile (or emailed)"), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`reauthentication_required`: a signed-in person must enter their password again first (POST /account/confirm-password).", body = Problem), (status = 429, description = "`rate_limited`: a code was sent moments ago, or too many have been sent", body = Problem)))]
pub async fn send_check(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SettingUp(ref who): SettingUp,
) -> Result<StatusCode, ApiError> {
    state.app.send_setup_check(who, &frame.context(), frame.now).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/factors/set-up/check", tag = "factors", request_body = CodeIn,
    responses((status = 204, description = "Checked: an app can be added"), (status = 400, body = Problem), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`reauthentication_required`: a signed-in person must enter their password again first (POST /account/confirm-password).", body = Problem)))]
pub async fn check(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SettingUp(ref who): SettingUp,
    ApiJson(b): ApiJson<CodeIn>,
) -> Result<StatusCode, ApiError> {
    state.app.confirm_setup_check(who, &b.code, &frame.context(), frame.now).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new authenticator secret, for the person's app only.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppSecretOut {
    /// Base32, in groups of four.
    pub secret: String,
    pub otpauth_uri: String,
}

#[utoipa::path(post, path = "/api/v1/factors/set-up/app", tag = "factors",
    responses((status = 201, body = AppSecretOut), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`reauthentication_required`: a signed-in person must enter their password again first (POST /account/confirm-password).", body = Problem), (status = 409, description = "`conflict`: the check code is still to come, or this session has made its share of QR codes", body = Problem)))]
pub async fn new_app(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SettingUp(ref who): SettingUp,
) -> Result<(StatusCode, Json<AppSecretOut>), ApiError> {
    let e = state.app.begin_app_setup(who, frame.now).await?;
    Ok((
        StatusCode::CREATED,
        Json(AppSecretOut {
            secret: e.secret_text.expose().to_owned(),
            otpauth_uri: e.otpauth_uri.expose().to_owned(),
        }),
    ))
}

/// The factor is set up and this session has ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorAddedOut {
    /// A first set of recovery codes, shown this once.
    pub recovery_codes: Option<Vec<String>>,
}

#[utoipa::path(post, path = "/api/v1/factors/set-up/app/confirm", tag = "factors", request_body = CodeIn,
    responses((status = 200, description = "Added; signed out", body = FactorAddedOut), (status = 400, body = Problem), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`reauthentication_required`: a signed-in person must enter their password again first (POST /account/confirm-password).", body = Problem), (status = 409, description = "`conflict`: make a new QR code and scan it first", body = Problem)))]
pub async fn confirm_app(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SettingUp(ref who): SettingUp,
    ApiJson(b): ApiJson<CodeIn>,
) -> Result<Response, ApiError> {
    let added = state.app.confirm_app_setup(who, &b.code, &frame.context(), frame.now).await?;
    let mut response = Json(FactorAddedOut { recovery_codes: added.recovery_codes }).into_response();
    set_cookie(response.headers_mut(), SESSION_COOKIE, "", "Lax", Some(0), state.secure_cookies);
    Ok(response)
}

/// One of the person's factors.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorOut {
    pub id: String,
    /// `app` or `email`.
    pub kind: String,
    pub added_at: String,
    pub last_used_at: Option<String>,
}

/// The person's factors, recovery codes and recovery phone. Never a secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorsOut {
    pub factors: Vec<FactorOut>,
    pub recovery_codes_left: usize,
    /// The last 4 digits of the recovery phone.
    pub recovery_phone: Option<String>,
    pub second_factor_required: bool,
}

#[utoipa::path(get, path = "/api/v1/factors", tag = "factors",
    responses((status = 200, body = FactorsOut), (status = 401, description = "`unauthenticated`: sign in first", body = Problem)))]
pub async fn factors(State(state): State<AppState>, SignedIn(ref who): SignedIn) -> Result<Json<FactorsOut>, ApiError> {
    let v = state.app.security_view(who).await?;
    Ok(Json(FactorsOut {
        factors: v
            .factors
            .into_iter()
            .map(|f| FactorOut {
                id: f.id,
                kind: f.kind.as_str().to_owned(),
                added_at: f.added_at.rfc3339(),
                last_used_at: f.last_used_at.map(|t| t.rfc3339()),
            })
            .collect(),
        recovery_codes_left: v.recovery_codes_left,
        recovery_phone: v.recovery_phone,
        second_factor_required: v.required,
    }))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/factors/reset", tag = "users",
    responses((status = 200, body = super::people::MemberOut), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`forbidden`: only an organisation administrator may do this, and not to themselves.", body = Problem), (status = 404, description = "`not_found`: no such person in your organisation", body = Problem), (status = 409, description = "`conflict`: no factors to reset", body = Problem)))]
pub async fn reset_factors(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SignedIn(ref who): SignedIn,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<super::people::MemberOut>, ApiError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let l = state.app.reset_member_factors(admin, &id, &frame.context(), frame.now).await?;
    Ok(Json(super::people::member(&l, frame.now)))
}
