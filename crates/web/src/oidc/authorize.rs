//! The authorization endpoint and its page. `GET`/`POST /oidc/authorize` checks the request:
//! a bad client or redirect URI gets a page (never a redirect), other errors go back to the
//! client; a good request waits at `/oidc/authorize/{id}`, where the person signs in if they
//! must (the route group's door remembers the page), sees which service they are signing in
//! to, as whom and for which organisation, and continues or cancels.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use usher_app::oidc::authorize::{AuthorizeParams, Judgement, Pending, Refused, Started};
use usher_domain::Error;
use usher_domain::oidc::{Scope, Scopes, SubjectType};

use crate::AppState;
use crate::error::PageError;
use crate::frame::{FormActionOrigin, Frame};
use crate::groups::SignedIn;
use crate::pages::{Layout, html, read_form};
use crate::return_to;

fn unreadable() -> PageError {
    PageError(Error::field(
        "request",
        "The sign-in request from the service could not be read. Go back to the service and try again.",
    ))
}

async fn start(state: &AppState, frame: &Frame, params: &AuthorizeParams) -> Result<Response, PageError> {
    let started = state.app.start_authorization(params, frame.user.as_ref(), &frame.context(), frame.now).await;
    Ok(match started {
        Ok(Started::Waiting(id)) => {
            Redirect::to(&format!("{}/{id}", usher_app::oidc::endpoints::AUTHORIZE)).into_response()
        }
        Ok(Started::Answered(url)) | Err(Refused::Redirect(url)) => Redirect::to(&url).into_response(),
        Err(Refused::Page(e)) => return Err(PageError(e)),
    })
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    query: Result<Query<AuthorizeParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let Ok(Query(params)) = query else { return Err(unreadable()) };
    start(&state, &frame, &params).await
}

pub(crate) async fn post(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    form: Result<Form<AuthorizeParams>, FormRejection>,
) -> Result<Response, PageError> {
    let Ok(Form(params)) = form else { return Err(unreadable()) };
    start(&state, &frame, &params).await
}

#[derive(Template)]
#[template(path = "oidc_needs_factor.html")]
struct NeedsFactorPage<'a> {
    layout: Layout<'a>,
    action: String,
    client: String,
}

#[derive(Template)]
#[template(path = "oidc_continue.html")]
struct ContinuePage<'a> {
    layout: Layout<'a>,
    action: String,
    client: String,
    person: String,
    email: String,
    organisation: Option<String>,
    shares: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "oidc_not_admitted.html")]
struct NotAdmittedPage<'a> {
    layout: Layout<'a>,
    action: String,
    client: String,
    organisation: String,
}

/// What the client will be told, in words, from the scopes it asked for.
fn shares(scope: &str, subject: SubjectType) -> Vec<&'static str> {
    let scopes = Scopes::parse(scope).unwrap_or_default();
    let mut list = vec![match subject {
        SubjectType::Pairwise => "that it is you (an identifier of your account for this service only)",
        SubjectType::Public => "that it is you (your Usher account's ID, which other services may also be given)",
    }];
    for s in scopes.iter() {
        list.push(match s {
            Scope::OpenId => continue,
            Scope::Profile => "your name",
            Scope::Email => "your email address",
            Scope::Phone => "your mobile number",
            Scope::Organisation => "your organisation and your role in it",
        });
    }
    list.push("how you signed in (for example, with an authenticator app)");
    list
}

/// The scheme, host and port of a registered redirect URI.
fn origin(uri: &str) -> String {
    url::Url::parse(uri).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}

fn with_form_target(mut response: Response, pending: &Pending) -> Response {
    response.extensions_mut().insert(FormActionOrigin(origin(&pending.checked.redirect_uri)));
    response
}

pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SignedIn(who): SignedIn,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let pending = state.app.pending_authorization(&id, frame.now).await?;
    let action = format!("{}/{}", usher_app::oidc::endpoints::AUTHORIZE, pending.request.id);
    match state.app.judge(&pending, &who, frame.now).await? {
        Judgement::SignIn => {
            let mut response = Redirect::to("/sign-in?sign_in=again").into_response();
            return_to::remember(&state, response.headers_mut(), &headers, &action);
            Ok(response)
        }
        Judgement::NeedsFactor => {
            let page = NeedsFactorPage {
                layout: Layout::new(
                    &state,
                    Some(&frame),
                    &frame.nonce,
                    &format!("{} needs a second factor", pending.client.name),
                ),
                action,
                client: pending.client.name.clone(),
            };
            Ok(with_form_target(html(StatusCode::FORBIDDEN, &page)?, &pending))
        }
        Judgement::NotAdmitted => {
            let organisation =
                state.app.organisation_of(&who).await?.map_or_else(|| "your organisation".to_owned(), |o| o.name);
            let page = NotAdmittedPage {
                layout: Layout::new(&state, Some(&frame), &frame.nonce, "Your organisation cannot use this service"),
                action,
                client: pending.client.name.clone(),
                organisation,
            };
            Ok(with_form_target(html(StatusCode::FORBIDDEN, &page)?, &pending))
        }
        Judgement::Ready => {
            let organisation =
                state.app.organisation_of(&who).await?.map(|o| format!("{} ({})", o.name, o.kind.label()));
            let page = ContinuePage {
                layout: Layout::new(&state, Some(&frame), &frame.nonce, &format!("Sign in to {}", pending.client.name)),
                action,
                client: pending.client.name.clone(),
                person: who.user.full_name.clone(),
                email: who.user.email.to_string(),
                organisation,
                shares: shares(&pending.checked.scope, pending.client.subject_type),
            };
            Ok(with_form_target(html(StatusCode::OK, &page)?, &pending))
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Decision {
    action: String,
}

pub(crate) async fn decide(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SignedIn(who): SignedIn,
    Path(id): Path<String>,
    form: Result<Form<Decision>, FormRejection>,
) -> Result<Response, PageError> {
    let decision = read_form(form)?;
    let ctx = frame.context();
    let url = match decision.action.as_str() {
        "continue" => state.app.continue_authorization(&id, &who, &ctx, frame.now).await?,
        "cancel" => state.app.cancel_authorization(&id, Some(&who), &ctx, frame.now).await?,
        _ => return Err(PageError(Error::field("action", "Choose to continue or to cancel."))),
    };
    Ok(Redirect::to(&url).into_response())
}
