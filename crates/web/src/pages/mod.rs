//! HTML pages. Each handler reads the form, calls one use case and renders a template; forms
//! with mistakes are shown again with a GOV.UK error summary and the answers kept.

pub mod account;
pub mod activation;
pub mod admin;
pub mod audit;
mod audit_words;
mod client_logouts;
pub mod clients;
mod components;
mod date_input;
mod layout;
mod mailbox;
pub mod mfa;
pub mod notices;
pub mod operator;

pub use components::{Field, PersonRow, Radios};
pub use layout::Layout;
pub use mailbox::dev_mailbox;

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use usher_app::operator::{OperatorLink, SetupForm, SignedIn as NewSession};
use usher_domain::account::{Role, SessionStage};
use usher_domain::error::FieldError;
use usher_domain::password::PasswordPolicy;
use usher_domain::secret::SecretString;
use usher_domain::{Error, ErrorCode};

use usher_domain::notification::Part;

use crate::AppState;
use crate::error::PageError;
use crate::frame::Frame;
use crate::groups::SignedIn;
use crate::return_to;
use crate::session::{SESSION_COOKIE, set_cookie};

/// Field messages for a form, in the order the fields appear.
#[derive(Debug, Default)]
pub struct FormErrors {
    pub list: Vec<FieldError>,
}

impl FormErrors {
    pub(crate) fn from_error(e: &Error) -> Self {
        Self { list: e.fields.clone() }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn has(&self, field: &str) -> bool {
        self.list.iter().any(|e| e.field == field)
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.list.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }

    pub fn all(&self, field: &str) -> Vec<&str> {
        self.list.iter().filter(|e| e.field == field).map(|e| e.message.as_str()).collect()
    }
}

/// A form that could not be read (wrong content type, a field sent twice, bad encoding) gets
/// the same error page as any other bad input.
pub(crate) fn read_form<T>(form: Result<Form<T>, FormRejection>) -> Result<T, PageError> {
    form.map(|Form(f)| f).map_err(|e| {
        tracing::info!(error = %e.body_text(), "unreadable form");
        PageError(Error::field("form", "The form could not be read. Go back, reload the page and try again."))
    })
}

pub fn render<T: Template>(page: &T) -> Result<String, PageError> {
    page.render().map_err(|e| PageError(Error::internal(format!("template: {e}"))))
}

pub(crate) fn html<T: Template>(status: StatusCode, page: &T) -> Result<Response, PageError> {
    Ok((status, Html(render(page)?)).into_response())
}

/// Sets the session cookie and sends the person on: where they were going (else home), or
/// first to their second factor or its set-up.
fn signed_in(state: &AppState, request: &axum::http::HeaderMap, s: &NewSession) -> Response {
    let next = match s.stage {
        SessionStage::Full => return with_session(state, return_to::arrive(state, request, "/home"), &s.token),
        SessionStage::SecondFactor => "/sign-in/second-factor",
        SessionStage::Setup => "/set-up",
    };
    with_session(state, Redirect::to(next).into_response(), &s.token)
}

/// Sets a new session cookie on a response.
pub(crate) fn with_session(state: &AppState, mut response: Response, token: &usher_domain::secret::Token) -> Response {
    set_cookie(response.headers_mut(), SESSION_COOKIE, token.expose(), "Lax", None, state.secure_cookies);
    response
}

/// Clears the session cookie on a response (the session has ended).
pub(crate) fn without_session(state: &AppState, mut response: Response) -> Response {
    set_cookie(response.headers_mut(), SESSION_COOKIE, "", "Lax", Some(0), state.secure_cookies);
    response
}

#[derive(Template)]
#[template(path = "start.html")]
struct StartPage<'a> {
    layout: Layout<'a>,
}

pub async fn start(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    if frame.user.is_some() {
        return Ok(Redirect::to("/home").into_response());
    }
    html(
        StatusCode::OK,
        &StartPage { layout: Layout::new(&state, Some(&frame), &frame.nonce, &state.app.config.service_name) },
    )
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    layout: Layout<'a>,
    heading: &'a str,
    full_name: &'a str,
    email: &'a str,
    role: &'a str,
    signed_in_at: String,
    is_operator: bool,
    is_admin: bool,
    organisation: String,
    password_expires: Option<String>,
    database: &'a str,
    policy: String,
    notice: Option<notices::Notice>,
    back: &'static str,
}

pub async fn home(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SignedIn(ref who): SignedIn,
    headers: axum::http::HeaderMap,
) -> Result<Response, PageError> {
    let u = &who.user;
    let (heading, role) = match u.role {
        Role::Operator => ("Operator home", "Operator"),
        Role::OrganisationAdministrator => ("Administrator home", "Organisation administrator"),
        Role::User => ("Your account", "User"),
    };
    let policy = PasswordPolicy::for_profile(state.app.config.policy.profile, false).describe().join("; ");
    let page = HomePage {
        layout: Layout::new(&state, Some(&frame), &frame.nonce, heading),
        heading,
        full_name: &u.full_name,
        email: u.email.as_str(),
        role,
        signed_in_at: who.session.created_at.human(),
        is_operator: u.role == Role::Operator,
        is_admin: u.role == Role::OrganisationAdministrator,
        password_expires: state.app.password_expires_at(u).map(|t| t.human_date()),
        organisation: match usher_app::authz::OrganisationAdmin::check(who) {
            Ok(admin) => state.app.organisation_name(admin).await?,
            Err(_) => String::new(),
        },
        database: state.app.store.engine().as_str(),
        policy,
        notice: notices::banner(&state, &frame, &headers).await?,
        back: "/home",
    };
    html(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    recovery_for: Option<String>,
    full_name: String,
    email: String,
    password_rules: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct SetupFormData {
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: SecretString,
    #[serde(default)]
    confirm_password: SecretString,
}

fn setup_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    view: &OperatorLink,
    errors: FormErrors,
    full_name: String,
    email: String,
) -> SetupPage<'a> {
    let (title, recovery_for) = match view {
        OperatorLink::Setup => ("Set up your operator account", None),
        OperatorLink::Recovery(u) => ("Choose a new password", Some(format!("{} ({})", u.full_name, u.email))),
    };
    SetupPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, title).with_errors(&errors),
        errors,
        recovery_for,
        full_name,
        email,
        password_rules: PasswordPolicy::for_profile(state.app.config.policy.profile, false).describe(),
    }
}

pub async fn setup_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let view = state.app.open_operator_link(&token, frame.now).await?;
    html(StatusCode::OK, &setup_page(&state, &frame, &view, FormErrors::default(), String::new(), String::new()))
}

pub async fn setup_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Path(token): Path<String>,
    headers: axum::http::HeaderMap,
    form: Result<Form<SetupFormData>, FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(form)?;
    let ctx = frame.context();
    let answers = SetupForm {
        full_name: form.full_name.clone(),
        email: form.email.clone(),
        password: form.password,
        confirm_password: form.confirm_password,
    };
    match state.app.complete_operator_link(&token, answers, &ctx, frame.now).await {
        Ok(s) => {
            // Rotation: whatever session this browser had before is ended.
            if let Some(old) = frame.session() {
                state.app.sign_out(old, &ctx, frame.now).await?;
            }
            Ok(signed_in(&state, &headers, &s))
        }
        Err(e) if e.code == ErrorCode::InvalidInput => {
            let view = state.app.open_operator_link(&token, frame.now).await?;
            let page = setup_page(&state, &frame, &view, FormErrors::from_error(&e), form.full_name, form.email);
            html(StatusCode::BAD_REQUEST, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    /// Above the list of the error summary: how to unlock, after a refused sign-in.
    refused: Option<String>,
    lock_after: i64,
    email: String,
    banner: Option<&'static str>,
    notice: Option<notices::Notice>,
    back: &'static str,
    /// A service asked for a new sign-in.
    again: bool,
}

#[derive(Debug, Deserialize)]
pub struct SignInFormData {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: SecretString,
}

#[derive(Debug, Deserialize)]
pub struct SignInDone {
    done: Option<String>,
    /// `again`: a service asked for a new sign-in (`prompt=login`, `max_age`, a second
    /// factor), so the form is shown to a signed-in person too.
    sign_in: Option<String>,
}

/// The email address a service suggested (`login_hint`) when the person is signing in on the way
/// to it; empty otherwise, or when it does not look like an email address.
async fn login_hint(state: &AppState, frame: &Frame, headers: &axum::http::HeaderMap) -> String {
    let Some(going) = return_to::remembered(headers) else { return String::new() };
    let Some(id) = going.as_str().strip_prefix(usher_app::oidc::endpoints::AUTHORIZE).and_then(|r| r.strip_prefix('/'))
    else {
        return String::new();
    };
    let id = id.split('?').next().unwrap_or_default();
    let Ok(pending) = state.app.pending_authorization(id, frame.now).await else { return String::new() };
    pending.checked.login_hint.filter(|h| h.contains('@') && !h.chars().any(char::is_whitespace)).unwrap_or_default()
}

pub async fn sign_in_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(done): axum::extract::Query<SignInDone>,
) -> Result<Response, PageError> {
    let again = done.sign_in.as_deref() == Some("again");
    if frame.user.is_some() && !again {
        return Ok(Redirect::to("/home").into_response());
    }
    let banner = match done.done.as_deref() {
        Some("reset") => {
            Some("Your password has been changed and every session signed out. Sign in with your new password.")
        }
        _ => None,
    };
    let page = SignInPage {
        layout: Layout::new(&state, Some(&frame), &frame.nonce, "Sign in"),
        errors: FormErrors::default(),
        refused: None,
        lock_after: state.app.policy.lock_after_wrong_passwords,
        email: login_hint(&state, &frame, &headers).await,
        banner,
        again,
        notice: notices::banner(&state, &frame, &headers).await?,
        back: "/sign-in",
    };
    html(StatusCode::OK, &page)
}

pub async fn sign_in_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    headers: axum::http::HeaderMap,
    form: Result<Form<SignInFormData>, FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(form)?;
    let ctx = frame.context();
    match state.app.sign_in(&form.email, &form.password, &ctx, frame.now).await {
        Ok(s) => {
            // Rotation: whatever session the browser had before is ended.
            if let Some(old) = frame.session() {
                state.app.sign_out(old, &ctx, frame.now).await?;
            }
            Ok(signed_in(&state, &headers, &s))
        }
        Err(e) if e.code == ErrorCode::InvalidInput => {
            let errors = FormErrors::from_error(&e);
            let page = SignInPage {
                layout: Layout::new(&state, Some(&frame), &frame.nonce, "Sign in").with_errors(&errors),
                refused: errors.has("email").then(|| usher_app::sign_in::how_to_unlock(&state.app.policy)),
                lock_after: state.app.policy.lock_after_wrong_passwords,
                errors,
                email: form.email.chars().take(254).collect(),
                banner: None,
                again: false,
                notice: None,
                back: "/sign-in",
            };
            html(StatusCode::BAD_REQUEST, &page)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    let told = match frame.session() {
        Some(who) => state.app.sign_out(who, &frame.context(), frame.now).await?,
        None => Vec::new(),
    };
    Ok(without_session(&state, Redirect::to(&signed_out_address(&state, &told, frame.now)).into_response()))
}

/// The signed-out page's address, saying which services were told.
pub(crate) fn signed_out_address(
    state: &AppState,
    told: &[usher_app::oidc::logout::ServiceTold],
    now: usher_domain::Timestamp,
) -> String {
    let query = crate::told::query(state, told, now);
    if query.is_empty() { "/signed-out".to_owned() } else { format!("/signed-out?{query}") }
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutPage<'a> {
    layout: Layout<'a>,
    told: crate::told::Told,
}

/// `?told=...`: the services a sign-out told, sealed.
#[derive(Debug, Deserialize)]
pub struct ToldQuery {
    pub told: Option<String>,
}

/// Where signing out lands: it says so, names the services told, and offers to sign in again.
pub async fn signed_out(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Query(q): Query<ToldQuery>,
) -> Result<Response, PageError> {
    if frame.user.is_some() {
        return Ok(Redirect::to("/home").into_response());
    }
    let told = crate::told::Told::of(&crate::told::open(&state, q.told.as_deref(), frame.now));
    html(
        StatusCode::OK,
        &SignedOutPage { layout: Layout::new(&state, Some(&frame), &frame.nonce, "You have signed out"), told },
    )
}

/// Anything unknown: a page, or problem details under `/api/`.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        crate::error::ApiError(Error::not_found()).into_response()
    } else {
        PageError(Error::not_found()).into_response()
    }
}

/// `?done=...` after a redirect: which success banner to show.
#[derive(Debug, Deserialize)]
pub struct Done {
    pub done: Option<String>,
}
