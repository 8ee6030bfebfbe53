//! The signed-in person's own account pages: change password (also when it has expired), the
//! sessions list; and the forgotten-password reset reached from the sign-in page.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use usher_domain::ErrorCode;
use usher_domain::password::PasswordPolicy;
use usher_domain::secret::SecretString;

use super::{FormErrors, Layout, html, read_form};
use crate::AppState;
use crate::error::PageError;
use crate::frame::Frame;
use crate::groups::SignedIn;
use crate::return_to;
use crate::session::{SESSION_COOKIE, set_cookie};
use usher_app::sessions::Authenticated;

#[derive(Template)]
#[template(path = "change_password.html")]
struct ChangePasswordPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    expired: bool,
    max_age_days: i64,
    email: String,
    password_rules: Vec<String>,
}

fn change_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    who: &Authenticated,
    errors: FormErrors,
) -> Result<ChangePasswordPage<'a>, PageError> {
    let policy = PasswordPolicy::for_profile(state.app.config.policy.profile, false);
    let title = if who.password_expired { "Your password has expired" } else { "Change your password" };
    Ok(ChangePasswordPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, title).with_errors(&errors),
        errors,
        expired: who.password_expired,
        max_age_days: policy.max_age.map_or(0, |a| a.seconds() / 86_400),
        email: who.user.email.to_string(),
        password_rules: policy.describe(),
    })
}

pub async fn password_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SignedIn(ref who): SignedIn,
) -> Result<Response, PageError> {
    html(StatusCode::OK, &change_page(&state, &frame, who, FormErrors::default())?)
}

#[derive(Debug, Deserialize)]
pub struct ChangeData {
    #[serde(default)]
    current_password: SecretString,
    #[serde(default)]
    password: SecretString,
    #[serde(default)]
    confirm_password: SecretString,
}

pub async fn password_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SignedIn(ref who): SignedIn,
    headers: axum::http::HeaderMap,
    form: Result<Form<ChangeData>, FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(form)?;
    match state
        .app
        .change_password(
            who,
            &form.current_password,
            &form.password,
            &form.confirm_password,
            &frame.context(),
            frame.now,
        )
        .await
    {
        Ok(token) => {
            // An expired password was the last step of signing in: on to where the person was
            // going, if anywhere.
            let mut response = if who.password_expired {
                return_to::arrive(&state, &headers, "/home?done=password")
            } else {
                Redirect::to("/home?done=password").into_response()
            };
            set_cookie(response.headers_mut(), SESSION_COOKIE, token.expose(), "Lax", None, state.secure_cookies);
            Ok(response)
        }
        Err(e) if e.code == ErrorCode::InvalidInput => {
            html(StatusCode::BAD_REQUEST, &change_page(&state, &frame, who, FormErrors::from_error(&e))?)
        }
        Err(e) => Err(e.into()),
    }
}

struct SessionRow {
    id: String,
    browser: String,
    ip: String,
    started: String,
    last_seen: String,
    current: bool,
    /// The services this session signed in to.
    services: Vec<String>,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage<'a> {
    layout: Layout<'a>,
    banner: Option<&'static str>,
    told: crate::told::Told,
    idle: String,
    absolute: String,
    sessions: Vec<SessionRow>,
}

/// `?done=...&told=...` after ending sessions.
#[derive(Debug, serde::Deserialize)]
pub struct SessionsDone {
    pub done: Option<String>,
    pub told: Option<String>,
}

pub async fn sessions(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SignedIn(ref who): SignedIn,
    Query(done): Query<SessionsDone>,
) -> Result<Response, PageError> {
    let services = state.app.services_of_sessions(who).await?;
    let sessions = state
        .app
        .sessions(who)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            current: s.id == who.session.id,
            id: s.id.to_string(),
            browser: browser_of(s.user_agent.as_deref()),
            ip: s.ip.unwrap_or_else(|| "Unknown".to_owned()),
            started: s.created_at.human(),
            last_seen: s.last_seen_at.human(),
            services: services.iter().filter(|v| v.session_id == s.id).map(|v| v.client_name.clone()).collect(),
        })
        .collect();
    let told = crate::told::Told::of(&crate::told::open(&state, done.told.as_deref(), frame.now));
    let banner = match done.done.as_deref() {
        Some("ended") => Some("That session is signed out."),
        Some("others") => Some("All your other sessions are signed out."),
        _ => None,
    };
    let c = &state.app.config.sessions;
    let page = SessionsPage {
        layout: Layout::new(&state, Some(&frame), &frame.nonce, "Your sessions").crumbs(&[]),
        banner,
        told,
        idle: describe(c.idle_timeout.seconds()),
        absolute: describe(c.absolute_timeout.seconds()),
        sessions,
    };
    html(StatusCode::OK, &page)
}

fn describe(seconds: i64) -> String {
    if seconds % 3600 == 0 { format!("{} hours", seconds / 3600) } else { format!("{} minutes", seconds / 60) }
}

/// A plain name for a browser from its user agent, for people to recognise their sessions.
pub fn browser_of(user_agent: Option<&str>) -> String {
    let ua = user_agent.unwrap_or("");
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else if ua.is_empty() {
        return "Unknown browser".to_owned();
    } else {
        "Another browser or program"
    };
    let system = if ua.contains("Windows") {
        " on Windows"
    } else if ua.contains("iPhone") || ua.contains("iPad") {
        " on iOS"
    } else if ua.contains("Android") {
        " on Android"
    } else if ua.contains("Mac OS X") {
        " on macOS"
    } else if ua.contains("Linux") {
        " on Linux"
    } else {
        ""
    };
    format!("{browser}{system}")
}

pub async fn end_session(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SignedIn(ref who): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let told = state.app.end_session(who, &id, &frame.context(), frame.now).await?;
    if id == who.session.id.as_str() {
        let mut response = Redirect::to(&super::signed_out_address(&state, &told, frame.now)).into_response();
        set_cookie(response.headers_mut(), SESSION_COOKIE, "", "Lax", Some(0), state.secure_cookies);
        return Ok(response);
    }
    Ok(Redirect::to(&after_ending(&state, "ended", &told, frame.now)).into_response())
}

/// The sessions page after ending sessions, naming the services told.
fn after_ending(
    state: &AppState,
    done: &str,
    told: &[usher_app::oidc::logout::ServiceTold],
    now: usher_domain::Timestamp,
) -> String {
    let query = crate::told::query(state, told, now);
    if query.is_empty() {
        format!("/account/sessions?done={done}")
    } else {
        format!("/account/sessions?done={done}&{query}")
    }
}

pub async fn end_others(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SignedIn(ref who): SignedIn,
) -> Result<Response, PageError> {
    let (_, told) = state.app.end_other_sessions(who, &frame.context(), frame.now).await?;
    Ok(Redirect::to(&after_ending(&state, "others", &told, frame.now)).into_response())
}

#[derive(Template)]
#[template(path = "reset_request.html")]
struct ResetRequestPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    sent: bool,
    email: String,
}

pub async fn reset_request_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    let page = ResetRequestPage {
        layout: Layout::new(&state, Some(&frame), &frame.nonce, "Reset your password"),
        errors: FormErrors::default(),
        sent: false,
        email: String::new(),
    };
    html(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
pub struct EmailData {
    #[serde(default)]
    email: String,
}

pub async fn reset_request_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    form: Result<Form<EmailData>, FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(form)?;
    let email: String = form.email.trim().chars().take(254).collect();
    let (errors, sent, status) = match state.app.request_password_reset(&email, &frame.context(), frame.now).await {
        Ok(()) => (FormErrors::default(), true, StatusCode::OK),
        Err(e) if e.code == ErrorCode::InvalidInput => (FormErrors::from_error(&e), false, StatusCode::BAD_REQUEST),
        Err(e) => return Err(e.into()),
    };
    let title = if sent { "Check your email" } else { "Reset your password" };
    let page = ResetRequestPage {
        layout: Layout::new(&state, Some(&frame), &frame.nonce, title).with_errors(&errors),
        errors,
        sent,
        email,
    };
    html(status, &page)
}

#[derive(Template)]
#[template(path = "reset_form.html")]
struct ResetPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    email: String,
    password_rules: Vec<String>,
    /// The second-factor step, while it is still to do.
    sf: Option<super::mfa::SecondFactorForm>,
}

fn reset_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    token: &str,
    view: usher_app::passwords::ResetView,
    q: &ResetQuery,
    errors: FormErrors,
) -> ResetPage<'a> {
    let banner = super::mfa::code_sent_banner(&state.app.policy, q.sent.as_deref());
    let sf = view.needs_second_factor.then(|| {
        super::mfa::reset_second_factor_form(&state.app.policy, token, &view, q.method.as_deref(), &errors, banner)
    });
    let title = if sf.is_some() { "Confirm it is you" } else { "Choose a new password" };
    ResetPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, title).with_errors(&errors),
        errors,
        email: view.user.email.to_string(),
        password_rules: view.password_rules,
        sf,
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ResetQuery {
    method: Option<String>,
    sent: Option<String>,
}

pub async fn reset_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Path(token): Path<String>,
    Query(q): Query<ResetQuery>,
) -> Result<Response, PageError> {
    let view = state.app.open_password_reset(&token, frame.now).await?;
    html(StatusCode::OK, &reset_page(&state, &frame, &token, view, &q, FormErrors::default()))
}

#[derive(Debug, Deserialize)]
pub struct ResetCodeData {
    #[serde(default)]
    method: String,
    #[serde(default)]
    code: String,
}

/// The second factor for a reset link (S15).
pub async fn reset_second_factor(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Path(token): Path<String>,
    form: Result<Form<ResetCodeData>, FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(form)?;
    let method = usher_app::mfa::Method::parse(&form.method)
        .ok_or_else(|| PageError(usher_domain::Error::field("method", "Choose how to confirm it is you")))?;
    match state.app.reset_second_factor(&token, method, &form.code, &frame.context(), frame.now).await {
        Ok(()) => Ok(Redirect::to(&format!("/reset-password/{token}")).into_response()),
        Err(e) if e.code == ErrorCode::InvalidInput => {
            let view = state.app.open_password_reset(&token, frame.now).await?;
            let q = ResetQuery { method: Some(form.method), sent: None };
            html(StatusCode::BAD_REQUEST, &reset_page(&state, &frame, &token, view, &q, FormErrors::from_error(&e)))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn reset_email_code(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    state.app.send_reset_email_code(&token, &frame.context(), frame.now).await?;
    Ok(Redirect::to(&format!("/reset-password/{token}?method=email&sent=email")).into_response())
}

pub async fn reset_text(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    state.app.send_reset_text(&token, &frame.context(), frame.now).await?;
    Ok(Redirect::to(&format!("/reset-password/{token}?method=recovery_text&sent=text")).into_response())
}

#[derive(Debug, Deserialize)]
pub struct NewPasswordData {
    #[serde(default)]
    password: SecretString,
    #[serde(default)]
    confirm_password: SecretString,
}

pub async fn reset_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Path(token): Path<String>,
    form: Result<Form<NewPasswordData>, FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(form)?;
    match state
        .app
        .complete_password_reset(&token, &form.password, &form.confirm_password, &frame.context(), frame.now)
        .await
    {
        // A reset never signs anyone in: any session this browser had is over too.
        Ok(_) => Ok(super::without_session(&state, Redirect::to("/sign-in?done=reset").into_response())),
        Err(e) if e.code == ErrorCode::InvalidInput => {
            let view = state.app.open_password_reset(&token, frame.now).await?;
            let page = reset_page(&state, &frame, &token, view, &ResetQuery::default(), FormErrors::from_error(&e));
            html(StatusCode::BAD_REQUEST, &page)
        }
        Err(e) if e.code == ErrorCode::SecondFactorRequired => {
            Ok(Redirect::to(&format!("/reset-password/{token}")).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
