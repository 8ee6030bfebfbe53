//! The JSON API under `/api/v1`, described by an OpenAPI 3.1 document generated from this code
//! and served at `/api/v1/openapi.json`. Errors are RFC 9457 problem details.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use usher_app::test_clock::{ClockMove, test_clock_off};
use usher_domain::account::Role;
use usher_domain::duration::Span;
use usher_domain::{Error, Timestamp};
use utoipa::{OpenApi as _, ToSchema};

pub mod account;
pub mod clients;
mod doc;
pub mod mfa;
pub mod people;

pub use doc::ApiDoc;

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::ApiJson;
use crate::frame::Frame;
use crate::groups::SignedIn;

pub async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(json) => ([(axum::http::header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Who the session cookie belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    pub user_id: String,
    pub full_name: String,
    pub email: String,
    /// operator, organisation_administrator or user.
    pub role: String,
    /// When this session started (RFC 3339).
    pub signed_in_at: String,
}

/// The signed-in person.
#[utoipa::path(get, path = "/api/v1/session", tag = "sessions",
    responses(
        (status = 200, description = "Signed in", body = SessionInfo),
        (status = 401, description = "No valid session", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn session(SignedIn(who): SignedIn) -> Result<Json<SessionInfo>, ApiError> {
    Ok(Json(SessionInfo {
        user_id: who.user.id.to_string(),
        full_name: who.user.full_name.clone(),
        email: who.user.email.to_string(),
        role: who.user.role.as_str().to_owned(),
        signed_in_at: who.session.created_at.rfc3339(),
    }))
}

/// The test clock's current moment.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestClock {
    /// RFC 3339, UTC.
    pub now: String,
    /// Seconds since the Unix epoch.
    pub unix: i64,
}

/// How to move the test clock: give exactly one of `advance` or `to`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestClockMove {
    /// A length of time such as `90s`, `15m`, `12h`, `28d` or `1w`.
    pub advance: Option<String>,
    /// An RFC 3339 moment no earlier than the clock's current one.
    pub to: Option<String>,
}

/// Only the loopback interface or a signed-in operator may move or read the test clock.
fn may_use_test_clock(frame: &Frame, peer: SocketAddr) -> bool {
    peer.ip().is_loopback() || frame.user.as_ref().is_some_and(|u| u.user.role == Role::Operator)
}

/// Reads the test clock.
#[utoipa::path(get, path = "/api/v1/test-clock", tag = "test clock",
    responses(
        (status = 200, body = TestClock),
        (status = 404, description = "The server runs on the real clock", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn test_clock_get(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Result<Json<TestClock>, ApiError> {
    if !state.app.clock.is_test() || !may_use_test_clock(&frame, peer) {
        return Err(ApiError(test_clock_off()));
    }
    Ok(Json(TestClock { now: frame.now.rfc3339(), unix: frame.now.unix() }))
}

/// Moves the test clock forward. Exists only on a server started with `usher serve --test-clock`
/// (which also needs `USHER_ALLOW_TEST_CLOCK=1`); callable from the loopback interface or by a
/// signed-in operator. Every page of such a server shows a warning banner.
#[utoipa::path(post, path = "/api/v1/test-clock", tag = "test clock",
    request_body = TestClockMove,
    responses(
        (status = 200, description = "The clock after the move", body = TestClock),
        (status = 400, description = "Not a length of time or a moment, or backwards", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The server runs on the real clock", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn test_clock_post(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    // Read after the checks, so a server on the real clock answers 404 whatever is sent.
    body: Result<ApiJson<TestClockMove>, ApiError>,
) -> Result<Json<TestClock>, ApiError> {
    if !state.app.clock.is_test() {
        return Err(ApiError(test_clock_off()));
    }
    if !may_use_test_clock(&frame, peer) {
        let actor = frame.user.as_ref().map(|u| &u.user.id);
        state
            .app
            .audit_refusal("test_clock.refused", "not loopback and not an operator", actor, &frame.context(), frame.now)
            .await?;
        return Err(ApiError(test_clock_off()));
    }
    let ApiJson(body) = body?;
    let how =
        match (&body.advance, &body.to) {
            (Some(span), None) => {
                ClockMove::Advance(span.parse::<Span>().map_err(|e| ApiError(Error::field("advance", e.to_string())))?)
            }
            (None, Some(to)) => ClockMove::SetTo(Timestamp::parse_rfc3339(to).ok_or_else(|| {
                ApiError(Error::field("to", "Give a moment in RFC 3339, such as 2026-12-21T09:00:00Z"))
            })?),
            _ => {
                return Err(ApiError(Error::field("advance", "Give exactly one of `advance` or `to`")));
            }
        };
    let now = state.app.move_test_clock(how, &frame.context()).await?;
    Ok(Json(TestClock { now: now.rfc3339(), unix: now.unix() }))
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "Serving and the database answers", body = String, content_type = "text/plain"),
        (status = 503, description = "The database does not answer (plain text, for probes)", body = String, content_type = "text/plain"),
    ))]
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}
