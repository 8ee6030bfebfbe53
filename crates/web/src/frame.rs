//! The frame around every request: reads the clock once, loads the session, makes the CSP
//! nonce and the anti-forgery token, and afterwards adds the security headers and turns error
//! markers into pages or problem details. This is the one place errors become responses.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use usher_app::RequestContext;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use usher_app::sessions::Authenticated;
use usher_domain::Timestamp;
use usher_domain::secret::{Token, random_bytes};

use crate::AppState;
use crate::error::{ErrorMarker, render_error, unmarked};
use crate::metrics::RequestId;
use crate::session::{CSRF_COOKIE, SESSION_COOKIE, cookie_value, set_cookie};

/// On a page response: an origin (a registered redirect URI's) its forms may also submit to.
#[derive(Debug, Clone)]
pub struct FormActionOrigin(pub String);

/// What the frame learned about a request, available to every handler.
#[derive(Debug, Clone)]
pub struct Frame {
    pub now: Timestamp,
    pub nonce: String,
    pub csrf_token: String,
    /// The signed-in person: a session that has proven every factor it needs.
    pub user: Option<Authenticated>,
    /// A session that has proven only the password: it may reach the second-factor or set-up
    /// pages and nothing else.
    pub pending: Option<Authenticated>,
    pub request_id: String,
    /// The address asked for, without the query (the navigation marks its area).
    pub path: String,
    pub test_clock: bool,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Frame {
    /// The session behind the cookie, signed in or not yet.
    pub fn session(&self) -> Option<&Authenticated> {
        self.user.as_ref().or(self.pending.as_ref())
    }

    /// Who is asking, for the audit trail.
    pub fn context(&self) -> RequestContext {
        RequestContext {
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: Some(self.request_id.clone()),
        }
    }
}

pub async fn frame(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let nonce = base64::engine::general_purpose::STANDARD.encode(random_bytes::<16>());
    let path = req.uri().path().to_owned();
    let is_api = path.starts_with("/api/");
    let existing_csrf =
        cookie_value(req.headers(), CSRF_COOKIE).and_then(|v| Token::parse(&v)).map(|t| t.expose().to_owned());
    let new_csrf = existing_csrf.is_none().then(|| Token::generate().expose().to_owned());
    let csrf_token = existing_csrf.or_else(|| new_csrf.clone()).unwrap_or_default();

    let now = match state.app.clock.now().await {
        Ok(now) => now,
        Err(e) => {
            return finish(&state, None, e.into_marker_response(is_api), &nonce, &request_id, &path, None);
        }
    };
    let session = match cookie_value(req.headers(), SESSION_COOKIE) {
        Some(cookie) => match state.app.authenticate(&cookie, now).await {
            Ok(user) => user,
            Err(e) => {
                return finish(&state, None, e.into_marker_response(is_api), &nonce, &request_id, &path, None);
            }
        },
        None => None,
    };
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let ip = peer.map(|p| client_ip(p, req.headers(), &state.app.config.trusted_proxies).to_string());
    let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (user, pending) = match session {
        Some(s) if s.is_full() => (Some(s), None),
        other => (None, other),
    };
    let frame = Arc::new(Frame {
        now,
        nonce: nonce.clone(),
        csrf_token,
        user,
        pending,
        request_id: request_id.clone(),
        path: path.clone(),
        test_clock: state.app.clock.is_test(),
        ip,
        user_agent,
    });
    req.extensions_mut().insert(frame.clone());
    let response = next.run(req).await;
    finish(&state, Some(&frame), response, &nonce, &request_id, &path, new_csrf)
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
fn client_ip(peer: std::net::IpAddr, headers: &axum::http::HeaderMap, trusted: &[String]) -> std::net::IpAddr {
    let is_trusted =
        |ip: &std::net::IpAddr| trusted.iter().any(|t| t.parse::<std::net::IpAddr>().ok().as_ref() == Some(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer)
}

fn is_protocol_json(path: &str, response: &Response) -> bool {
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    json && path.starts_with("/oidc/")
}

trait IntoMarker {
    fn into_marker_response(self, api: bool) -> Response;
}

impl IntoMarker for usher_domain::Error {
    fn into_marker_response(self, api: bool) -> Response {
        if api { crate::error::ApiError(self).into_response() } else { crate::error::PageError(self).into_response() }
    }
}

fn finish(
    state: &AppState,
    frame: Option<&Frame>,
    mut response: Response,
    nonce: &str,
    request_id: &str,
    path: &str,
    new_csrf: Option<String>,
) -> Response {
    let marker = response.extensions_mut().remove::<ErrorMarker>().or_else(|| {
        // Probes read the operations endpoints' own plain answers; the OpenID Connect
        // endpoints answer in OAuth's own JSON shapes.
        let operations = matches!(path, "/healthz" | "/metrics") || is_protocol_json(path, &response);
        (!operations).then(|| unmarked(&response, path.starts_with("/api/"))).flatten()
    });
    if let Some(marker) = marker {
        let allow = response.headers().get(header::ALLOW).cloned();
        response = render_error(state, frame, marker, nonce, request_id);
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
    }
    let authenticated = frame.is_some_and(|f| f.session().is_some());
    // A page whose form ends at a relying party (the authorization page) may submit there:
    // browsers check form-action on the redirect that follows the submission too.
    let form_action = match response.extensions_mut().remove::<FormActionOrigin>() {
        Some(FormActionOrigin(origin)) if origin.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b',') => {
            format!("'self' {origin}")
        }
        _ => "'self'".to_owned(),
    };
    let h = response.headers_mut();
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; font-src 'self'; \
         connect-src 'self'; form-action {form_action}; frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    );
    if state.app.config.base_url().starts_with("https://") {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    }
    if !h.contains_key(header::CACHE_CONTROL) || authenticated {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    let is_page = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if let (Some(token), true) = (new_csrf, is_page) {
        // Strict: the token is only ever needed by our own forms. Only pages carry it, and
        // nothing that sets a cookie may be stored by a shared cache.
        set_cookie(h, CSRF_COOKIE, &token, "Strict", None, state.secure_cookies);
    }
    if h.contains_key(header::SET_COOKIE) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
