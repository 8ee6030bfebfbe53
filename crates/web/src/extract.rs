//! The API's extractors: axum's `Json`, `Path` and `Query`, whose refusals are our own
//! [`ApiError`]s (problem details), so a body, web address or query string that cannot be read
//! gets the same answer as any other bad input. Axum's rejection text can quote what was sent
//! (a password, a code), so it goes to the log at most, never into the answer.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use usher_domain::{Error, ErrorCode};

use crate::error::ApiError;

/// The most a request body may be (bigger ones are refused with 413 before they are read whole).
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON request body.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

/// Path parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

/// The query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError(unreadable_body(&e))),
        }
    }
}

fn unreadable_body(e: &JsonRejection) -> Error {
    tracing::info!(status = %e.status(), "unreadable JSON body");
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            Error::field("body", "Send the request body as JSON, with Content-Type: application/json.")
        }
        s if s.is_server_error() => Error::internal(format!("reading a JSON body: {}", e.body_text())),
        _ => Error::field(
            "body",
            "The request body is not valid JSON for this operation. Check the field names and types.",
        ),
    }
}

/// The answer to a body over [`BODY_LIMIT`].
pub fn too_large() -> Error {
    Error::new(
        ErrorCode::PayloadTooLarge,
        format!("What was sent is larger than the {} KB the service accepts.", BODY_LIMIT / 1024),
    )
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError(unreadable_path(&e))),
        }
    }
}

fn unreadable_path(e: &PathRejection) -> Error {
    if e.status().is_server_error() {
        return Error::internal(format!("path parameters: {}", e.body_text()));
    }
    tracing::info!(status = %e.status(), "unreadable path parameter");
    unreadable_address()
}

/// The answer to a web address whose parameters cannot be read (not UTF-8, say).
pub fn unreadable_address() -> Error {
    Error::field("path", "The web address is not valid. Check the ID or link in it and try again.")
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError(unreadable_query(&e))),
        }
    }
}

fn unreadable_query(e: &QueryRejection) -> Error {
    tracing::info!(status = %e.status(), "unreadable query string");
    Error::field("query", "The query string could not be read. Give each parameter once, as text.")
}
