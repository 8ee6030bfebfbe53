//! Route groups: every route belongs to one group, and the group decides, before any handler
//! runs, who may reach it and whether a write must carry the anti-forgery token. Handlers then
//! take the typed extractor of their group ([`SignedIn`], [`Pending`], [`SettingUp`],
//! [`Operator`], [`OrgAdmin`]) instead of checking the session themselves.
//!
//! The groups live in `routes.rs` beside each route, and the OpenAPI document reads them from
//! there, so what the server refuses and what the document says it refuses are one list.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use usher_app::authz;
use usher_app::sessions::Authenticated;
use usher_domain::account::SessionStage;
use usher_domain::{Error, ErrorCode};

use crate::AppState;
use crate::error::{ApiError, PageError};
use crate::frame::Frame;
use crate::return_to;

/// Who may reach a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// Anyone, signed in or not: the start page, signing in and out, reset and activation links,
    /// notifications, assets. Writes need the anti-forgery token.
    Public,
    /// Endpoints for programs rather than browsers (the health check now; an OAuth token
    /// endpoint next): no session is read and no anti-forgery token is asked for, because the
    /// caller authenticates itself in the request.
    Protocol,
    /// A sign-in that has proven the password and must now give its second factor.
    SecondFactorStep,
    /// A sign-in that must set up a second factor, or a signed-in person adding one.
    SetUp,
    /// A signed-in person, even one whose password has expired: changing the password.
    PasswordChange,
    /// A signed-in person whose password is current.
    SignedIn,
    /// A signed-in operator.
    Operator,
    /// A signed-in administrator of an organisation.
    OrgAdmin,
}

/// Why a request does not get into its group.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// No session, or not one this group takes: sign in.
    SignIn,
    /// A sign-in still at an earlier step: go to that step first.
    Step(SessionStage),
    /// Signed in already: the sign-in steps are behind them.
    AlreadySignedIn,
    /// The password has expired: change it first.
    PasswordExpired,
    /// Signed in, but this area is for another role.
    Forbidden(Error),
}

impl Group {
    /// The group's name, for tests that walk the route table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Protocol => "protocol",
            Self::SecondFactorStep => "second_factor_step",
            Self::SetUp => "set_up",
            Self::PasswordChange => "password_change",
            Self::SignedIn => "signed_in",
            Self::Operator => "operator",
            Self::OrgAdmin => "org_admin",
        }
    }

    /// Whether the session in `frame` may reach a route of this group.
    pub(crate) fn admit(self, frame: &Frame) -> Result<(), Refusal> {
        match self {
            Self::Public | Self::Protocol => Ok(()),
            Self::SecondFactorStep => match (&frame.pending, &frame.user) {
                (Some(p), _) if p.session.stage == SessionStage::SecondFactor => Ok(()),
                (Some(p), _) => Err(Refusal::Step(p.session.stage)),
                (None, Some(_)) => Err(Refusal::AlreadySignedIn),
                (None, None) => Err(Refusal::SignIn),
            },
            Self::SetUp => match (&frame.pending, &frame.user) {
                (Some(p), _) if p.session.stage == SessionStage::Setup => Ok(()),
                (Some(p), _) => Err(Refusal::Step(p.session.stage)),
                (None, Some(u)) if u.password_expired => Err(Refusal::PasswordExpired),
                (None, Some(_)) => Ok(()),
                (None, None) => Err(Refusal::SignIn),
            },
            Self::PasswordChange => full(frame).map(|_| ()),
            Self::SignedIn => current(frame).map(|_| ()),
            Self::Operator => {
                authz::Operator::check(current(frame)?).map_err(Refusal::Forbidden)?;
                Ok(())
            }
            Self::OrgAdmin => {
                authz::OrganisationAdmin::check(current(frame)?).map_err(Refusal::Forbidden)?;
                Ok(())
            }
        }
    }

    /// Whether writes to this group must pass the anti-forgery checks (csrf.rs).
    pub(crate) fn checks_forgery(self) -> bool {
        self != Self::Protocol
    }

    /// Whether a route of this group needs a session (it answers 401 without one).
    pub(crate) fn needs_session(self) -> bool {
        !matches!(self, Self::Public | Self::Protocol)
    }

    /// The refusals a session can meet at this group's door, for the OpenAPI document.
    pub(crate) fn refusals(self) -> &'static [ErrorCode] {
        use ErrorCode::{Forbidden, PasswordExpired, SecondFactorRequired};
        match self {
            Self::Public | Self::Protocol | Self::SecondFactorStep => &[],
            Self::PasswordChange => &[SecondFactorRequired],
            Self::SetUp | Self::SignedIn => &[SecondFactorRequired, PasswordExpired],
            Self::Operator | Self::OrgAdmin => &[SecondFactorRequired, PasswordExpired, Forbidden],
        }
    }
}

/// A session that has proven every factor it needs.
fn full(frame: &Frame) -> Result<&Authenticated, Refusal> {
    match (&frame.user, &frame.pending) {
        (Some(u), _) => Ok(u),
        (None, Some(p)) => Err(Refusal::Step(p.session.stage)),
        (None, None) => Err(Refusal::SignIn),
    }
}

/// A full session whose password has not expired.
fn current(frame: &Frame) -> Result<&Authenticated, Refusal> {
    let u = full(frame)?;
    if u.password_expired { Err(Refusal::PasswordExpired) } else { Ok(u) }
}

/// The middleware of one group: the anti-forgery checks on a write, then the door.
pub(crate) async fn guard(group: Group, state: AppState, req: Request, next: Next) -> Response {
    let req = if group.checks_forgery() && !is_safe(req.method()) {
        match crate::csrf::check(&state, req).await {
            Ok(req) => req,
            Err(refused) => return refused,
        }
    } else {
        req
    };
    let Some(frame) = req.extensions().get::<Arc<Frame>>().cloned() else {
        return ApiError(Error::internal("a route ran outside the frame")).into_response();
    };
    match group.admit(&frame) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refuse(&state, refusal, req.method(), req.uri(), req.headers()),
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The answer to a refused request: problem details under `/api/`, otherwise the page to go to
/// (remembering, for a page asked for by GET, where the person was going).
fn refuse(state: &AppState, refusal: Refusal, method: &Method, uri: &axum::http::Uri, headers: &HeaderMap) -> Response {
    let api = uri.path().starts_with("/api/");
    if api {
        return ApiError(refusal_error(refusal)).into_response();
    }
    let going_somewhere = matches!(refusal, Refusal::SignIn | Refusal::Step(_) | Refusal::PasswordExpired);
    let page = match refusal {
        Refusal::SignIn => "/sign-in",
        Refusal::Step(SessionStage::Setup) => "/set-up",
        Refusal::Step(_) => "/sign-in/second-factor",
        Refusal::AlreadySignedIn => "/home",
        Refusal::PasswordExpired => "/account/password",
        Refusal::Forbidden(e) => return PageError(e).into_response(),
    };
    let mut response = Redirect::to(page).into_response();
    if going_somewhere && *method == Method::GET {
        let wanted = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        return_to::remember(state, response.headers_mut(), headers, wanted);
    }
    response
}

fn refusal_error(refusal: Refusal) -> Error {
    match refusal {
        Refusal::SignIn | Refusal::AlreadySignedIn => Error::new(ErrorCode::Unauthenticated, "Sign in first."),
        Refusal::Step(SessionStage::Setup) => {
            Error::new(ErrorCode::SecondFactorRequired, "Set up a second factor first (see /api/v1/factors/set-up).")
        }
        Refusal::Step(_) => Error::new(
            ErrorCode::SecondFactorRequired,
            "Give your second factor first (POST /api/v1/sign-in/second-factor).",
        ),
        Refusal::PasswordExpired => Error::new(
            ErrorCode::PasswordExpired,
            "Your password has expired. Change it (POST /api/v1/password) before anything else.",
        ),
        Refusal::Forbidden(e) => e,
    }
}

/// The extractors' shared rejection: the same answers the group's door gives.
#[derive(Debug)]
pub(crate) struct Refused(Box<Response>);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

fn frame_of(parts: &Parts) -> Result<Arc<Frame>, Refused> {
    parts
        .extensions
        .get::<Arc<Frame>>()
        .cloned()
        .ok_or_else(|| Refused(Box::new(ApiError(Error::internal("a route ran outside the frame")).into_response())))
}

fn refused(parts: &Parts, refusal: Refusal) -> Refused {
    let e = refusal_error(refusal);
    let api = parts.uri.path().starts_with("/api/");
    Refused(Box::new(if api { ApiError(e).into_response() } else { PageError(e).into_response() }))
}

/// Declares an extractor that takes the session from the frame when `pick` accepts it.
macro_rules! session_extractor {
    ($(#[$doc:meta])* $name:ident, $pick:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub(crate) struct $name(pub Authenticated);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = Refused;

            async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
                let frame = frame_of(parts)?;
                let pick: fn(&Frame) -> Result<&Authenticated, Refusal> = $pick;
                pick(&frame).map(|a| Self(a.clone())).map_err(|r| refused(parts, r))
            }
        }
    };
}

session_extractor!(
    /// The signed-in person (any full session; the group has checked the password's age).
    SignedIn,
    full
);
session_extractor!(
    /// A sign-in that has proven the password and waits for its second factor.
    Pending,
    |frame| match (&frame.pending, &frame.user) {
        (Some(p), _) if p.session.stage == SessionStage::SecondFactor => Ok(p),
        (Some(p), _) => Err(Refusal::Step(p.session.stage)),
        (None, _) => Err(Refusal::SignIn),
    }
);
session_extractor!(
    /// Setting up a second factor: at the set-up step of signing in, or signed in and adding one.
    SettingUp,
    |frame| match (&frame.pending, &frame.user) {
        (Some(p), _) if p.session.stage == SessionStage::Setup => Ok(p),
        (Some(p), _) => Err(Refusal::Step(p.session.stage)),
        (None, Some(u)) => Ok(u),
        (None, None) => Err(Refusal::SignIn),
    }
);
session_extractor!(
    /// A signed-in operator.
    Operator,
    |frame| {
        let who = current(frame)?;
        authz::Operator::check(who).map_err(Refusal::Forbidden)?;
        Ok(who)
    }
);
session_extractor!(
    /// A signed-in administrator of an organisation.
    OrgAdmin,
    |frame| {
        let who = current(frame)?;
        authz::OrganisationAdmin::check(who).map_err(Refusal::Forbidden)?;
        Ok(who)
    }
);
