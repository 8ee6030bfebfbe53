//! Cookies: the session cookie and the anti-forgery cookie, both `__Host-` prefixed
//! (Secure, Path=/, no Domain), HttpOnly, with an opaque 256-bit value.

use axum::http::HeaderMap;
use axum::http::header::{self, HeaderValue};

pub const SESSION_COOKIE: &str = "__Host-usher-session";
pub const CSRF_COOKIE: &str = "__Host-usher-csrf";

/// The value of the named cookie in the request, if present.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// Appends a Set-Cookie header. `max_age` of `Some(0)` deletes the cookie.
pub fn set_cookie(
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
    same_site: &str,
    max_age: Option<i64>,
    secure: bool,
) {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, v);
    }
}
