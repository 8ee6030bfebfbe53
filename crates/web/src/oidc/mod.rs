//! The OpenID Connect front end: one file per endpoint. Protocol endpoints answer in OAuth's
//! own shapes (RFC 6749 errors as JSON, or as parameters on a registered redirect URI); only a
//! request whose client or redirect URI is not good gets a page, as nothing may be sent back.

pub(crate) mod authorize;
pub(crate) mod discovery;
pub(crate) mod end_session;
pub(crate) mod introspect;
pub(crate) mod jwks;
pub(crate) mod revoke;
pub(crate) mod token;
pub(crate) mod userinfo;

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use usher_domain::oidc::{OAuthError, OAuthErrorCode};

/// An OAuth error as a JSON answer (RFC 6749 §5.2), never cached; a 401 says how to
/// authenticate (`WWW-Authenticate`).
#[derive(Debug)]
pub(crate) struct OAuthReply(pub OAuthError);

impl IntoResponse for OAuthReply {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let body = json!({ "error": e.code.as_str(), "error_description": e.description });
        let mut response = (status, Json(body)).into_response();
        let h = response.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match e.code {
            OAuthErrorCode::InvalidClient => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"usher\""));
            }
            OAuthErrorCode::InvalidToken => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
            }
            _ => {}
        }
        response
    }
}

/// A JSON answer that must not be cached (tokens, introspection).
pub(crate) fn no_store(body: serde_json::Value) -> Response {
    let mut response = Json(body).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The client ID and secret of an `Authorization: Basic` header (RFC 6749 §2.3.1: each
/// form-urlencoded before base64). `Err` when the header is there but unreadable.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let bad = || OAuthError::invalid_client("The Authorization header could not be read.");
    let text = value.to_str().map_err(|_| bad())?;
    let Some(encoded) = text.strip_prefix("Basic ").or_else(|| text.strip_prefix("basic ")) else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape =
        |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8().map(|c| c.into_owned());
    Ok(Some((unescape(id).map_err(|_| bad())?, unescape(secret).map_err(|_| bad())?)))
}

/// The bearer token of an `Authorization: Bearer` header, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let text = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = text.strip_prefix("Bearer ").or_else(|| text.strip_prefix("bearer "))?;
    Some(token.trim().to_owned())
}

/// Lets discovery and the key set be read by browser-based clients of any origin: both are
/// public.
pub(crate) fn public_json(body: serde_json::Value, max_age: i64) -> Response {
    let mut response = Json(body).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}
