//! `/oidc/end_session` (OpenID Connect RP-Initiated Logout 1.0): a service sends the person
//! here to sign out. With an ID token of ours for the signed-in person the session ends at
//! once; otherwise a page asks first (its form, with the anti-forgery token, goes to
//! `/oidc/end_session/confirm`). The browser goes back only to a registered post-logout
//! address, with `state`; else it lands on the signed-out page, which names the services told.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use usher_app::oidc::end_session::{Confirmation, EndSession, EndSessionParams};
use usher_app::oidc::endpoints::END_SESSION;
use usher_domain::Error;

use crate::AppState;
use crate::error::PageError;
use crate::frame::{FormActionOrigin, Frame};
use crate::pages::{Layout, html, signed_out_address, without_session};

/// Where the confirmation page's form goes.
pub(crate) const CONFIRM: &str = "/oidc/end_session/confirm";

fn unreadable() -> PageError {
    PageError(Error::field(
        "request",
        "The sign-out request from the service could not be read. Sign out from the menu instead.",
    ))
}

#[derive(Template)]
#[template(path = "oidc_end_session.html")]
struct ConfirmPage<'a> {
    layout: Layout<'a>,
    action: &'static str,
    client: Option<String>,
    client_id: String,
    post_logout_redirect_uri: String,
    state: String,
    unregistered_redirect: bool,
    signed_in: bool,
}

fn answer(state: &AppState, frame: &Frame, ended: EndSession) -> Result<Response, PageError> {
    match ended {
        EndSession::Done { told, back_to, signed_out } => {
            let to = back_to.unwrap_or_else(|| signed_out_address(state, &told, frame.now));
            let response = Redirect::to(&to).into_response();
            Ok(if signed_out { without_session(state, response) } else { response })
        }
        EndSession::Confirm(c) => confirm_page(state, frame, c),
    }
}

fn confirm_page(state: &AppState, frame: &Frame, c: Confirmation) -> Result<Response, PageError> {
    let origin = c
        .post_logout_redirect_uri
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| u.origin().ascii_serialization());
    let page = ConfirmPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, "Sign out of Usher?"),
        action: CONFIRM,
        client: c.client_name,
        client_id: c.client_id.unwrap_or_default(),
        post_logout_redirect_uri: c.post_logout_redirect_uri.unwrap_or_default(),
        state: c.state.unwrap_or_default(),
        unregistered_redirect: c.unregistered_redirect,
        signed_in: frame.session().is_some(),
    };
    let mut response = html(StatusCode::OK, &page)?;
    if let Some(origin) = origin {
        // The confirmation's redirect ends at the service: form-action allows its origin.
        response.extensions_mut().insert(FormActionOrigin(origin));
    }
    Ok(response)
}

async fn start(state: &AppState, frame: &Frame, params: &EndSessionParams) -> Result<Response, PageError> {
    let ended = state.app.end_session_request(params, frame.session(), &frame.context(), frame.now).await?;
    answer(state, frame, ended)
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    query: Result<Query<EndSessionParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let Ok(Query(params)) = query else { return Err(unreadable()) };
    start(&state, &frame, &params).await
}

/// A service may POST the request (§2). A cross-site POST carries no `SameSite=Lax` session
/// cookie, so it is turned into the same request as a GET, which does.
pub(crate) async fn post(form: Result<Form<EndSessionParams>, FormRejection>) -> Result<Response, PageError> {
    let Ok(Form(p)) = form else { return Err(unreadable()) };
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("id_token_hint", &p.id_token_hint),
        ("client_id", &p.client_id),
        ("post_logout_redirect_uri", &p.post_logout_redirect_uri),
        ("state", &p.state),
        ("logout_hint", &p.logout_hint),
        ("ui_locales", &p.ui_locales),
    ] {
        if let Some(v) = value {
            query.append_pair(name, v);
        }
    }
    Ok(Redirect::to(&format!("{END_SESSION}?{}", query.finish())).into_response())
}

pub(crate) async fn confirm(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    form: Result<Form<EndSessionParams>, FormRejection>,
) -> Result<Response, PageError> {
    let Ok(Form(params)) = form else { return Err(unreadable()) };
    let ended = state.app.confirm_end_session(&params, frame.session(), &frame.context(), frame.now).await?;
    answer(&state, &frame, ended)
}
