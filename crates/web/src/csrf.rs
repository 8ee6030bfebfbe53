//! Cross-site request forgery protection for every state-changing request.
//!
//! Two checks, both required: the browser's own `Sec-Fetch-Site` / `Origin` must not name
//! another site, and forms must carry the token from our `__Host-` anti-forgery cookie
//! (`csrf_token` field). JSON API calls must be `application/json`, which a foreign page cannot
//! send without a CORS preflight that we never grant, and when they carry a session cookie, the
//! token in `X-CSRF-Token`. No GET changes state. Every refusal is audited.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use usher_domain::secret::constant_time_eq;
use usher_domain::{Error, ErrorCode};

use crate::AppState;
use crate::error::{ApiError, PageError};
use crate::frame::Frame;
use crate::session::{CSRF_COOKIE, SESSION_COOKIE, cookie_value};

const FORM_LIMIT: usize = 64 * 1024;

fn rejected() -> Error {
    Error::new(
        ErrorCode::CsrfRejected,
        "The form you sent could not be checked, so nothing was changed. Go back, reload the page and try again.",
    )
}

/// Checks a state-changing request; every route group but the protocol endpoints calls this
/// for each method other than GET, HEAD and OPTIONS (groups.rs), so no route can be left out.
/// Gives the request back (its form body read and put back) or the refusal.
pub(crate) async fn check(state: &AppState, req: Request) -> Result<Request, Response> {
    let api = req.uri().path().starts_with("/api/");
    let frame = req.extensions().get::<Arc<Frame>>().cloned();
    let why = if !same_origin(&req, state.app.config.base_url()) {
        Some("cross-site request")
    } else if api {
        api_problem(&req)
    } else {
        None
    };
    if let Some(why) = why {
        return Err(refuse(state, frame, api, why).await);
    }
    if api {
        return Ok(req);
    }
    let Some(cookie) = cookie_value(req.headers(), CSRF_COOKIE) else {
        return Err(refuse(state, frame, false, "no anti-forgery cookie").await);
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, FORM_LIMIT).await else {
        return Err(refuse(state, frame, false, "form too large").await);
    };
    let sent = form_urlencoded_field(&bytes, "csrf_token");
    if !sent.is_some_and(|t| constant_time_eq(t.as_bytes(), cookie.as_bytes())) {
        return Err(refuse(state, frame, false, "missing or wrong anti-forgery token").await);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// An API write must be JSON; one made with a session cookie must also carry the anti-forgery
/// token in `X-CSRF-Token`, as our own pages' scripts would.
fn api_problem(req: &Request) -> Option<&'static str> {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if !json {
        return Some("API write that is not application/json");
    }
    if cookie_value(req.headers(), SESSION_COOKIE).is_some() {
        let cookie = cookie_value(req.headers(), CSRF_COOKIE).unwrap_or_default();
        let sent = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
        if cookie.is_empty() || !constant_time_eq(sent.as_bytes(), cookie.as_bytes()) {
            return Some("API write with a session cookie but without X-CSRF-Token");
        }
    }
    None
}

/// Answers 403, logs and audits the refusal.
async fn refuse(state: &AppState, frame: Option<Arc<Frame>>, api: bool, why: &str) -> Response {
    tracing::warn!(reason = why, "refused a state-changing request");
    if let Some(frame) = frame {
        let actor = frame.user.as_ref().map(|u| &u.user.id);
        if let Err(e) = state.app.audit_refusal("csrf.rejected", why, actor, &frame.context(), frame.now).await {
            tracing::warn!(error = %e, "could not audit a refused request");
        }
    }
    if api { ApiError(rejected()).into_response() } else { PageError(rejected()).into_response() }
}

/// False when the browser says the request comes from another site.
fn same_origin(req: &Request, base_url: &str) -> bool {
    if let Some(site) = req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => origin == base_url || origin_matches_host(origin, req),
    }
}

/// Accepts an Origin that names the host the request was sent to (a deployment reached by
/// more than one name, such as localhost and 127.0.0.1 in development).
fn origin_matches_host(origin: &str, req: &Request) -> bool {
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, h)| h);
    matches!((origin_host, host), (Some(o), Some(h)) if o == h)
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded_pairs(body).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let replaced = s.replace('+', " ");
        percent_encoding::percent_decode_str(&replaced).decode_utf8_lossy().into_owned()
    };
    std::str::from_utf8(body)
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}
