//! Errors as responses. Handlers return [`PageError`] (HTML) or [`ApiError`] (RFC 9457 problem
//! details); both leave a marker that the frame renders in one place, with the request ID. A
//! 5xx body never says more than "something went wrong"; the detail goes to the log.
//!
//! Refusals that come from axum rather than from us (a route that does not take the method, a
//! rejection a handler did not map) reach the frame unmarked; [`unmarked`] gives them a marker
//! by their status, so they are rendered in the same place and the same way.

use askama::Template;
use axum::Json;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Serialize;
use usher_domain::duration::Span;
use usher_domain::error::FieldError;
use usher_domain::{Error, ErrorCode};

use crate::AppState;
use crate::frame::Frame;
use crate::pages::{Layout, render};

#[derive(Debug)]
pub struct PageError(pub Error);

#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

/// Left on a response for the frame to render.
#[derive(Debug, Clone)]
pub struct ErrorMarker {
    pub api: bool,
    pub code: ErrorCode,
    pub message: String,
    pub fields: Vec<FieldError>,
    /// For a 429: how long until the limit frees, sent as `Retry-After` (seconds).
    pub retry_after: Option<Span>,
}

impl ErrorMarker {
    fn of(e: Error, api: bool) -> Self {
        Self { api, code: e.code, message: e.message.into_owned(), fields: e.fields, retry_after: e.retry_after }
    }
}

fn marker_response(e: Error, api: bool) -> Response {
    if e.is_server_side() {
        tracing::error!(code = e.code.as_str(), detail = e.detail.as_deref().unwrap_or(""), "request failed");
    }
    let mut response = status_of(e.code).into_response();
    response.extensions_mut().insert(ErrorMarker::of(e, api));
    response
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        marker_response(self.0, false)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        marker_response(self.0, true)
    }
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound | ErrorCode::TestClockOff => StatusCode::NOT_FOUND,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden
        | ErrorCode::CsrfRejected
        | ErrorCode::PasswordExpired
        | ErrorCode::SecondFactorRequired
        | ErrorCode::ReauthenticationRequired
        | ErrorCode::Deregistered => StatusCode::FORBIDDEN,
        ErrorCode::LinkExpired | ErrorCode::LinkUsed => StatusCode::GONE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// RFC 9457 problem details, with our stable `code` and the request ID.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:usher:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A stable code: invalid_input, not_found, unauthenticated, forbidden, csrf_rejected,
    /// link_expired, link_used, rate_limited, conflict, test_clock_off, internal, unavailable.
    pub code: String,
    pub request_id: String,
    /// Per-field messages for invalid input.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout<'a>,
    title: &'a str,
    message: &'a str,
    request_id: &'a str,
    server_side: bool,
}

/// The marker for an error response nobody marked (axum's own 405, or a rejection a handler
/// let through), or `None` for a response that is not an unmarked error.
pub fn unmarked(response: &Response, api: bool) -> Option<ErrorMarker> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("text/html") || content_type.starts_with("application/problem+json") {
        return None;
    }
    let e = match status {
        StatusCode::NOT_FOUND => Error::not_found(),
        StatusCode::METHOD_NOT_ALLOWED => method_not_allowed(),
        StatusCode::PAYLOAD_TOO_LARGE => crate::extract::too_large(),
        StatusCode::UNAUTHORIZED => Error::new(ErrorCode::Unauthenticated, "Sign in first."),
        StatusCode::FORBIDDEN => Error::new(ErrorCode::Forbidden, "You cannot do that."),
        s if s.is_server_error() => Error::internal(format!("unmarked {s} response")),
        _ => Error::field("request", "The request could not be read. Check the web address and what was sent."),
    };
    if e.is_server_side() {
        tracing::error!(status = %status, "a response without an error of ours");
    }
    Some(ErrorMarker::of(e, api))
}

pub fn method_not_allowed() -> Error {
    Error::new(
        ErrorCode::MethodNotAllowed,
        "This address cannot be used that way. Go back and try again; the Allow header lists what it takes.",
    )
}

/// The fallback for a route that does not take the request's method (the router adds `Allow`).
pub async fn method_not_allowed_fallback(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        ApiError(method_not_allowed()).into_response()
    } else {
        PageError(method_not_allowed()).into_response()
    }
}

pub fn render_error(
    state: &AppState,
    frame: Option<&Frame>,
    m: ErrorMarker,
    nonce: &str,
    request_id: &str,
) -> Response {
    let retry_after = m.retry_after;
    let mut response = render_marker(state, frame, m, nonce, request_id);
    if let Some(wait) = retry_after {
        set_retry_after(&mut response, wait);
    }
    response
}

/// `Retry-After` in whole seconds, at least one.
pub fn set_retry_after(response: &mut Response, wait: Span) {
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.seconds().max(1)));
}

fn render_marker(state: &AppState, frame: Option<&Frame>, m: ErrorMarker, nonce: &str, request_id: &str) -> Response {
    let status = status_of(m.code);
    if m.api {
        let problem = Problem {
            kind: format!("urn:usher:problem:{}", m.code.as_str()),
            title: m.code.title().to_owned(),
            status: status.as_u16(),
            detail: m.message,
            code: m.code.as_str().to_owned(),
            request_id: request_id.to_owned(),
            errors: m
                .fields
                .into_iter()
                .map(|f| ProblemField { field: f.field.to_owned(), message: f.message })
                .collect(),
        };
        let mut response = (status, Json(problem)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        return response;
    }
    if m.code == ErrorCode::Unauthenticated {
        return Redirect::to("/sign-in").into_response();
    }
    let layout = Layout::new(state, frame, nonce, m.code.title());
    let page = ErrorPage {
        layout,
        title: m.code.title(),
        message: &m.message,
        request_id,
        server_side: matches!(m.code, ErrorCode::Internal | ErrorCode::Unavailable),
    };
    match render(&page) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, "Sorry, there is a problem with the service.").into_response(),
    }
}
