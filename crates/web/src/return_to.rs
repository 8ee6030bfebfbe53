//! Where a person goes back to after a step such as entering their password again, or after
//! signing in: one check for every return-to, so a header can never be built from bytes a
//! browser sent.
//!
//! A page asked for before signing in (or before a sign-in's second factor, set-up or expired
//! password) is remembered in a short-lived cookie by the route group's door; the step that
//! completes the sign-in sends the person there instead of home, once.

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use crate::AppState;
use crate::session::{cookie_value, set_cookie};

/// The cookie that remembers where a person was going while they sign in.
pub const RETURN_COOKIE: &str = "__Host-usher-return";

/// How long a remembered destination lasts: long enough to set up a second factor.
const RETURN_COOKIE_SECONDS: i64 = 60 * 60;

/// A path on this service: starts with one `/`, at most 512 visible ASCII characters (so no
/// control characters, spaces or bytes that need re-encoding), no backslash and no `//`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    const MAX_LEN: usize = 512;

    /// `None` for anything that is not plainly a path of ours.
    pub fn parse(raw: &str) -> Option<Self> {
        let plain = raw.len() <= Self::MAX_LEN && raw.bytes().all(|b| b.is_ascii_graphic());
        let ours = raw.starts_with('/') && !raw.contains("//") && !raw.contains('\\');
        (plain && ours).then(|| Self(raw.to_owned()))
    }

    /// The path when it passes [`ReturnTo::parse`] and `allowed` accepts it, else `default`.
    pub fn or_default(raw: Option<&str>, allowed: impl Fn(&str) -> bool, default: &str) -> Self {
        raw.and_then(Self::parse).filter(|r| allowed(r.as_str())).unwrap_or_else(|| Self(default.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Pages a sign-in may end at: ours, and not one of the steps of signing in or out itself.
fn worth_returning_to(path: &str) -> bool {
    let step = ["/sign-in", "/sign-out", "/signed-out", "/set-up", "/reset-password", "/activate", "/api/", "/assets/"]
        .iter()
        .any(|p| path.starts_with(p));
    !step && path != "/" && path != "/account/password"
}

/// Remembers `wanted` (a path and query asked for by GET) on `response`, for after signing in.
pub(crate) fn remember(state: &AppState, response: &mut HeaderMap, request: &HeaderMap, wanted: &str) {
    let Some(wanted) = ReturnTo::parse(wanted).filter(|r| worth_returning_to(r.as_str())) else {
        return;
    };
    let encoded: String =
        percent_encoding::utf8_percent_encode(wanted.as_str(), percent_encoding::NON_ALPHANUMERIC).collect();
    if cookie_value(request, RETURN_COOKIE).as_deref() == Some(encoded.as_str()) {
        return;
    }
    set_cookie(response, RETURN_COOKIE, &encoded, "Lax", Some(RETURN_COOKIE_SECONDS), state.secure_cookies);
}

/// The page remembered for after signing in, if there is a good one (not used up by reading).
pub(crate) fn remembered(request: &HeaderMap) -> Option<ReturnTo> {
    cookie_value(request, RETURN_COOKIE)
        .as_deref()
        .and_then(|v| percent_encoding::percent_decode_str(v).decode_utf8().ok())
        .and_then(|v| ReturnTo::parse(&v))
        .filter(|r| worth_returning_to(r.as_str()))
}

/// Where a completed sign-in goes: the remembered page if there is a good one, else `default`.
/// The remembered page is used once: the answer clears the cookie.
pub(crate) fn arrive(state: &AppState, request: &HeaderMap, default: &str) -> Response {
    let remembered = cookie_value(request, RETURN_COOKIE);
    let target = self::remembered(request);
    let mut response = Redirect::to(target.as_ref().map_or(default, ReturnTo::as_str)).into_response();
    if remembered.is_some() {
        set_cookie(response.headers_mut(), RETURN_COOKIE, "", "Lax", Some(0), state.secure_cookies);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::{ReturnTo, worth_returning_to};

    #[test]
    fn sign_in_steps_are_never_a_destination() {
        for step in ["/sign-in", "/sign-in/second-factor", "/set-up/app", "/sign-out", "/reset-password/x", "/"] {
            assert!(!worth_returning_to(step), "{step}");
        }
        for page in ["/account/security", "/admin/users?q=smith", "/operator/organisations/abc", "/home"] {
            assert!(worth_returning_to(page), "{page}");
        }
    }

    #[test]
    fn only_plain_paths_of_ours_are_kept() {
        for good in ["/account/security", "/set-up", "/account/sessions?x=%C3%A9"] {
            assert_eq!(ReturnTo::parse(good).unwrap().as_str(), good);
        }
        let long = format!("/{}", "a".repeat(600));
        for bad in [
            "",
            "account",
            "//evil.example",
            "/\\evil.example",
            "/account/security\r\nSet-Cookie: x=1",
            "/account/security\n",
            "/account/security\0",
            "/account/security\u{7f}",
            "/account/sécurité",
            "/account/ security",
            "https://evil.example/",
            "/account//x",
            long.as_str(),
        ] {
            assert!(ReturnTo::parse(bad).is_none(), "{bad:?}");
        }
        let kept = ReturnTo::or_default(Some("/account/x\r\n"), |p| p.starts_with("/account/"), "/home");
        assert_eq!(kept.as_str(), "/home");
    }
}
