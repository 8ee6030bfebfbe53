//! The activation pages, reached from the emailed link: terms, mobile check, code, password.
//! Each step posts to its own address and shows the page for wherever the person then is, so
//! the link can be left and resumed.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use usher_app::activation::{ActivationStep, ActivationView};
use usher_domain::secret::SecretString;
use usher_domain::{Error, ErrorCode};

use super::{FormErrors, Layout, html, read_form};
use crate::AppState;
use crate::error::PageError;
use crate::frame::Frame;

#[derive(Template)]
#[template(path = "activate.html")]
struct ActivatePage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    banner: Option<String>,
    token: &'a str,
    step: &'static str,
    step_number: u8,
    organisation: String,
    administrator: String,
    terms_version: i64,
    terms_paragraphs: Vec<String>,
    last_four: String,
    email: String,
    expires: String,
    password_rules: Vec<String>,
}

fn page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    token: &'a str,
    v: ActivationView,
    errors: FormErrors,
    banner: Option<String>,
) -> ActivatePage<'a> {
    let (step, step_number, title) = match v.step {
        ActivationStep::Terms => ("terms", 1, "Terms and conditions"),
        ActivationStep::ConfirmMobile => ("confirm_mobile", 2, "Check your mobile number"),
        ActivationStep::EnterCode => ("enter_code", 2, "Enter the code we texted you"),
        ActivationStep::Password => ("password", 3, "Create your password"),
    };
    ActivatePage {
        layout: Layout::new(state, Some(frame), &frame.nonce, title).with_errors(&errors),
        errors,
        banner,
        token,
        step,
        step_number,
        organisation: v.organisation,
        administrator: v.administrator,
        terms_version: v.terms.version,
        terms_paragraphs: v.terms.body.split("\n\n").map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect(),
        last_four: v.mobile_last_four,
        email: v.user.email.to_string(),
        expires: v.expires_at.human(),
        password_rules: v.password_rules,
    }
}

pub async fn show(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let view = state.app.open_activation(&token, frame.now).await?;
    html(StatusCode::OK, &page(&state, &frame, &token, view, FormErrors::default(), None))
}

/// Shows the step the person is at after an action, with the action's error if it had one.
async fn after(
    state: &AppState,
    frame: &Frame,
    token: &str,
    outcome: Result<ActivationView, Error>,
) -> Result<Response, PageError> {
    match outcome {
        Ok(view) => html(StatusCode::OK, &page(state, frame, token, view, FormErrors::default(), None)),
        Err(e) if matches!(e.code, ErrorCode::InvalidInput | ErrorCode::RateLimited | ErrorCode::Conflict) => {
            let view = state.app.open_activation(token, frame.now).await?;
            let (errors, banner) = if e.code == ErrorCode::InvalidInput {
                (FormErrors::from_error(&e), None)
            } else {
                (FormErrors::default(), Some(e.message.to_string()))
            };
            let status =
                if e.code == ErrorCode::RateLimited { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::BAD_REQUEST };
            let mut response = html(status, &page(state, frame, token, view, errors, banner))?;
            if let Some(wait) = e.retry_after {
                crate::error::set_retry_after(&mut response, wait);
            }
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct TermsData {
    agree: Option<String>,
    #[serde(default)]
    version: String,
}

pub async fn terms(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Path(token): Path<String>,
    form: Result<Form<TermsData>, FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(form)?;
    let version = form.version.trim().parse().unwrap_or(0);
    let outcome = state
        .app
        .accept_terms(&token, form.agree.as_deref() == Some("yes"), version, &frame.context(), frame.now)
        .await;
    after(&state, &frame, &token, outcome).await
}

pub async fn send_code(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let outcome = state.app.send_activation_code(&token, &frame.context(), frame.now).await;
    after(&state, &frame, &token, outcome).await
}

#[derive(Debug, Deserialize)]
pub struct CodeData {
    #[serde(default)]
    code: String,
}

pub async fn code(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Path(token): Path<String>,
    form: Result<Form<CodeData>, FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(form)?;
    let outcome = state.app.verify_activation_code(&token, &form.code, &frame.context(), frame.now).await;
    after(&state, &frame, &token, outcome).await
}

#[derive(Debug, Deserialize)]
pub struct PasswordData {
    #[serde(default)]
    password: SecretString,
    #[serde(default)]
    confirm_password: SecretString,
}

#[derive(Template)]
#[template(path = "activate_done.html")]
struct DonePage<'a> {
    layout: Layout<'a>,
    email: String,
}

pub async fn password(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Path(token): Path<String>,
    form: Result<Form<PasswordData>, FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(form)?;
    match state
        .app
        .complete_activation(&token, &form.password, &form.confirm_password, &frame.context(), frame.now)
        .await
    {
        Ok(user) => html(
            StatusCode::OK,
            &DonePage {
                layout: Layout::new(&state, Some(&frame), &frame.nonce, "Your account is activated"),
                email: user.email.to_string(),
            },
        ),
        Err(e) => after(&state, &frame, &token, Err(e)).await,
    }
}
