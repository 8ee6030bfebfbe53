//! Second-factor pages, a file per part: the second step of signing in and recovery when a
//! device is lost (`sign_in`), setting up an authenticator app or emailed codes (`set_up`), and
//! the person's security page: factors, recovery codes, recovery phone, the password entered
//! again before any change (`security`). What they share is here.

mod security;
mod set_up;
mod sign_in;

pub use security::*;
pub use set_up::*;
pub use sign_in::*;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use usher_app::mfa::{AppEnrolment, Method, SecondFactorView, SetupView};
use usher_app::sessions::Authenticated;
use usher_domain::secret::SecretString;
use usher_domain::{Error, ErrorCode};

use super::{Field, FormErrors, Layout, html, read_form, with_session, without_session};
use crate::AppState;
use crate::error::PageError;
use crate::frame::Frame;
use crate::groups::{Pending, SettingUp, SignedIn};
use crate::return_to::{self, ReturnTo};

/// A form that sends a code.
#[derive(Debug, Deserialize)]
pub struct CodeData {
    #[serde(default)]
    code: String,
    #[serde(default)]
    method: String,
}

/// `?method=...&sent=...` on the pages that take codes.
#[derive(Debug, Deserialize)]
pub struct CodeQuery {
    method: Option<String>,
    sent: Option<String>,
    done: Option<String>,
}

/// Sends a person whose change needs their password again to enter it, then back to `next`.
fn reauthenticate_first(next: &str) -> Response {
    let next: String = percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC).collect();
    Redirect::to(&format!("/account/confirm-password?next={next}")).into_response()
}

/// A form's errors, or the redirect an error asks for.
fn form_errors(e: Error, reauth_next: &str) -> Result<FormErrors, Box<Response>> {
    match e.code {
        ErrorCode::InvalidInput => Ok(FormErrors::from_error(&e)),
        ErrorCode::ReauthenticationRequired => Err(Box::new(reauthenticate_first(reauth_next))),
        _ => Err(Box::new(PageError(e).into_response())),
    }
}
