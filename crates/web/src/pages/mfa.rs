//! Second-factor pages: the second step of signing in, recovery when a device is lost, setting
//! up an authenticator app or emailed codes, and the person's security page (factors, recovery
//! codes, recovery phone). Changes on the security page need the password entered again first.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use usher_app::mfa::{AppEnrolment, Method, SecondFactorView, SetupView};
use usher_app::sessions::Authenticated;
use usher_domain::account::SessionStage;
use usher_domain::secret::SecretString;
use usher_domain::{Error, ErrorCode};

use super::{Field, FormErrors, Layout, html, read_form, signed_in_user, with_session, without_session};
use crate::AppState;
use crate::error::PageError;
use crate::frame::Frame;
use crate::return_to::ReturnTo;

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

/// The session at a given stage, or the page that stage belongs on.
fn at_stage(frame: &Frame, stage: SessionStage) -> Result<&Authenticated, PageError> {
    frame
        .pending
        .as_ref()
        .filter(|p| p.session.stage == stage)
        .ok_or_else(|| PageError(Error::new(ErrorCode::Unauthenticated, "Sign in first.")))
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

/// A link to another way of proving the second factor.
pub(crate) struct Alternative {
    pub(crate) href: String,
    pub(crate) label: String,
}

#[derive(Template)]
#[template(path = "second_factor.html")]
struct SecondFactorPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    sf: SecondFactorForm,
}

/// The form that takes a second factor, on the sign-in, lost-device and reset pages.
pub(crate) struct SecondFactorForm {
    pub(crate) method: &'static str,
    pub(crate) heading: &'static str,
    pub(crate) intro: String,
    pub(crate) action: String,
    pub(crate) code: Field,
    /// A button that sends a code (email or text), with its form action.
    pub(crate) send: Option<(String, &'static str)>,
    pub(crate) alternatives: Vec<Alternative>,
    pub(crate) banner: Option<String>,
    /// Where "lost your device" leads, if anywhere.
    pub(crate) lost_device: Option<&'static str>,
}

/// What the second-factor form shows for a method: heading, intro, field label.
fn method_words(method: Method, view: &SecondFactorView) -> (&'static str, String, &'static str) {
    match method {
        Method::App => (
            "Enter the code from your authenticator app",
            "Open your authenticator app and enter the 6-digit code it shows for this service. If the code is about to change, wait for the next one.".into(),
            "Code from your app",
        ),
        Method::Email => (
            "Enter the code we emailed you",
            format!("Select \u{201c}Send code\u{201d} and we will email a 6-digit code to {}. It works for 15 minutes; only the newest code works.", view.email),
            "Code from the email",
        ),
        Method::RecoveryCode => (
            "Enter a recovery code",
            "Enter one of the recovery codes you noted down when you set up your second factor. Each code works once.".into(),
            "Recovery code",
        ),
        Method::RecoveryText => (
            "Enter the code we texted you",
            format!(
                "Select \u{201c}Send code\u{201d} and we will text a 6-digit code to your recovery phone ending {}. It works for 5 minutes.",
                view.recovery_phone.clone().unwrap_or_default()
            ),
            "Code from the text message",
        ),
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::App => "app",
        Method::Email => "email",
        Method::RecoveryCode => "recovery_code",
        Method::RecoveryText => "recovery_text",
    }
}

fn alternative_label(m: Method) -> &'static str {
    match m {
        Method::App => "Use your authenticator app",
        Method::Email => "Get a code by email",
        Method::RecoveryCode => "Use a recovery code",
        Method::RecoveryText => "Get a code texted to your recovery phone",
    }
}

/// The second-factor form for `methods`, at `base` (the page's own address).
fn build_form(
    view: &SecondFactorView,
    methods: &[Method],
    chosen: Option<&str>,
    base: &str,
    errors: &FormErrors,
    banner: Option<String>,
    lost_device: Option<&'static str>,
) -> SecondFactorForm {
    let method = chosen
        .and_then(Method::parse)
        .filter(|m| methods.contains(m))
        .or(methods.first().copied())
        .unwrap_or(Method::RecoveryCode);
    let (heading, intro, label) = method_words(method, view);
    let send = match method {
        Method::Email => Some((format!("{base}/email-code"), "Send code")),
        Method::RecoveryText => Some((format!("{base}/text"), "Send code")),
        _ => None,
    };
    let mut code = if method == Method::RecoveryCode {
        Field::new("code", label, "", errors).hint("For example, abcde-fghjk").width("govuk-input--width-20")
    } else {
        Field::code("code", label, errors).hint("For example, 372 904")
    };
    code.autocomplete = Some("one-time-code");
    SecondFactorForm {
        method: method_name(method),
        heading,
        intro,
        action: base.to_owned(),
        code,
        send,
        alternatives: methods
            .iter()
            .filter(|m| **m != method)
            .map(|m| Alternative {
                href: format!("{base}?method={}", method_name(*m)),
                label: alternative_label(*m).into(),
            })
            .collect(),
        banner,
        lost_device,
    }
}

fn second_factor_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    sf: SecondFactorForm,
    errors: FormErrors,
) -> SecondFactorPage<'a> {
    SecondFactorPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, sf.heading).with_errors(&errors),
        errors,
        sf,
    }
}

fn sent_banner(q: &CodeQuery) -> Option<String> {
    match q.sent.as_deref() {
        Some("email") => Some("We have emailed you a code. It works for 15 minutes.".into()),
        Some("text") => Some("We have texted you a code. It works for 5 minutes.".into()),
        _ => None,
    }
}

pub async fn second_factor_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    let who = at_stage(&frame, SessionStage::SecondFactor)?;
    let view = state.app.second_factor_view(who).await?;
    let errors = FormErrors::default();
    let sf = build_form(
        &view,
        &view.methods(),
        q.method.as_deref(),
        "/sign-in/second-factor",
        &errors,
        sent_banner(&q),
        Some("/sign-in/lost-device"),
    );
    html(StatusCode::OK, &second_factor_page(&state, &frame, sf, errors))
}

pub async fn second_factor_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    form: Result<Form<CodeData>, FormRejection>,
) -> Result<Response, PageError> {
    let who = at_stage(&frame, SessionStage::SecondFactor)?;
    let form = read_form(form)?;
    let method = Method::parse(&form.method)
        .ok_or_else(|| PageError(Error::field("method", "Choose how to confirm it is you")))?;
    match state.app.verify_second_factor(who, method, &form.code, &frame.context(), frame.now).await {
        Ok(done) => {
            let next =
                if done.recovery_codes_left.is_some() { "/account/security?done=recovery_code_used" } else { "/home" };
            Ok(with_session(&state, Redirect::to(next).into_response(), &done.token))
        }
        Err(e) if e.code == ErrorCode::InvalidInput => {
            let view = state.app.second_factor_view(who).await?;
            let errors = FormErrors::from_error(&e);
            let sf = build_form(
                &view,
                &view.methods(),
                Some(&form.method),
                "/sign-in/second-factor",
                &errors,
                None,
                Some("/sign-in/lost-device"),
            );
            html(StatusCode::BAD_REQUEST, &second_factor_page(&state, &frame, sf, errors))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn second_factor_email(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    let who = at_stage(&frame, SessionStage::SecondFactor)?;
    state.app.send_sign_in_email_code(who, &frame.context(), frame.now).await?;
    Ok(Redirect::to("/sign-in/second-factor?method=email&sent=email").into_response())
}

/// Lost device: a code texted to the recovery phone removes the old factors, then set-up.
pub async fn lost_device_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    let who = at_stage(&frame, SessionStage::SecondFactor)?;
    let view = state.app.second_factor_view(who).await?;
    lost_device_page(&state, &frame, &view, FormErrors::default(), sent_banner(&q), StatusCode::OK)
}

#[derive(Template)]
#[template(path = "lost_device.html")]
struct LostDevicePage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    form: Option<SecondFactorForm>,
    has_recovery_codes: bool,
}

fn lost_device_page(
    state: &AppState,
    frame: &Frame,
    view: &SecondFactorView,
    errors: FormErrors,
    banner: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let form = view
        .recovery_phone
        .is_some()
        .then(|| build_form(view, &[Method::RecoveryText], None, "/sign-in/lost-device", &errors, banner, None));
    let page = LostDevicePage {
        layout: Layout::new(state, Some(frame), &frame.nonce, "Lost your device?").with_errors(&errors),
        errors,
        form,
        has_recovery_codes: view.recovery_codes_left > 0,
    };
    html(status, &page)
}

pub async fn lost_device_text(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    let who = at_stage(&frame, SessionStage::SecondFactor)?;
    state.app.send_recovery_text(who, &frame.context(), frame.now).await?;
    Ok(Redirect::to("/sign-in/lost-device?sent=text").into_response())
}

pub async fn lost_device_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    form: Result<Form<CodeData>, FormRejection>,
) -> Result<Response, PageError> {
    let who = at_stage(&frame, SessionStage::SecondFactor)?;
    let form = read_form(form)?;
    match state.app.recover_with_text(who, &form.code, &frame.context(), frame.now).await {
        Ok(token) => Ok(with_session(&state, Redirect::to("/set-up?done=recovered").into_response(), &token)),
        Err(e) if e.code == ErrorCode::InvalidInput => {
            let view = state.app.second_factor_view(who).await?;
            lost_device_page(&state, &frame, &view, FormErrors::from_error(&e), None, StatusCode::BAD_REQUEST)
        }
        Err(e) => Err(e.into()),
    }
}

/// Set-up: at the set-up stage after signing in, or from the security page.
fn setting_up(frame: &Frame) -> Result<&Authenticated, PageError> {
    match (&frame.pending, &frame.user) {
        (Some(p), _) if p.session.stage == SessionStage::Setup => Ok(p),
        (_, Some(u)) => Ok(u),
        _ => Err(PageError(Error::new(ErrorCode::Unauthenticated, "Sign in first."))),
    }
}

#[derive(Template)]
#[template(path = "set_up.html")]
struct SetupPage<'a> {
    layout: Layout<'a>,
    view: SetupView,
    banner: Option<&'static str>,
}

pub async fn setup(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    let who = setting_up(&frame)?;
    let view = match state.app.setup_view(who, frame.now).await {
        Ok(v) => v,
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => return Ok(reauthenticate_first("/set-up")),
        Err(e) => return Err(e.into()),
    };
    let banner = (q.done.as_deref() == Some("recovered"))
        .then_some("Your old second factors have been removed. Set up a new one to finish signing in.");
    let title = if view.adding { "Add a second factor" } else { "Set up a second factor" };
    html(StatusCode::OK, &SetupPage { layout: Layout::new(&state, Some(&frame), &frame.nonce, title), view, banner })
}

#[derive(Template)]
#[template(path = "set_up_check.html")]
struct SetupCheckPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    view: SetupView,
    code: Field,
    banner: Option<String>,
}

fn setup_check_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    view: SetupView,
    errors: FormErrors,
    banner: Option<String>,
) -> SetupCheckPage<'a> {
    let label = if view.mobile_last_four.is_some() { "Code from the text message" } else { "Code from the email" };
    let code = Field::code("code", label, &errors).hint("For example, 372 904");
    SetupCheckPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, "Add an authenticator app").with_errors(&errors),
        errors,
        view,
        code,
        banner,
    }
}

pub async fn setup_check_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    let who = setting_up(&frame)?;
    let view = match state.app.setup_view(who, frame.now).await {
        Ok(v) => v,
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => return Ok(reauthenticate_first("/set-up")),
        Err(e) => return Err(e.into()),
    };
    if view.check_done {
        return Ok(Redirect::to("/set-up/app").into_response());
    }
    html(StatusCode::OK, &setup_check_page(&state, &frame, view, FormErrors::default(), sent_banner(&q)))
}

pub async fn setup_check_send(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    let who = setting_up(&frame)?;
    match state.app.send_setup_check(who, &frame.context(), frame.now).await {
        Ok(()) => {
            let sent = if who.user.phone.is_some() { "text" } else { "email" };
            Ok(Redirect::to(&format!("/set-up/app/check?sent={sent}")).into_response())
        }
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => Ok(reauthenticate_first("/set-up")),
        Err(e) => Err(e.into()),
    }
}

pub async fn setup_check_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    form: Result<Form<CodeData>, FormRejection>,
) -> Result<Response, PageError> {
    let who = setting_up(&frame)?;
    let form = read_form(form)?;
    match state.app.confirm_setup_check(who, &form.code, &frame.context(), frame.now).await {
        Ok(()) => Ok(Redirect::to("/set-up/app").into_response()),
        Err(e) => match form_errors(e, "/set-up") {
            Ok(errors) => {
                let view = state.app.setup_view(who, frame.now).await?;
                html(StatusCode::BAD_REQUEST, &setup_check_page(&state, &frame, view, errors, None))
            }
            Err(response) => Ok(*response),
        },
    }
}

#[derive(Template)]
#[template(path = "set_up_app.html")]
struct SetupAppPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    qr_svg: String,
    secret_text: String,
    otpauth_uri: String,
    code: Field,
}

fn qr_svg(text: &str) -> String {
    let Ok(code) = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M) else {
        return String::new();
    };
    let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(220, 220).quiet_zone(true).build();
    let svg = svg.split_once("?>").map_or(svg.as_str(), |(_, rest)| rest).to_owned();
    svg.replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code to scan with your authenticator app\" focusable=\"false\" class=\"usher-qr\" ",
        1,
    )
}

fn setup_app_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    enrolment: &AppEnrolment,
    errors: FormErrors,
) -> SetupAppPage<'a> {
    let code = Field::code("code", "Code from your authenticator app", &errors)
        .hint("The 6 digits your app shows, for example 372 904");
    SetupAppPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, "Scan the QR code").with_errors(&errors),
        errors,
        qr_svg: qr_svg(enrolment.otpauth_uri.expose()),
        secret_text: enrolment.secret_text.expose().to_owned(),
        otpauth_uri: enrolment.otpauth_uri.expose().to_owned(),
        code,
    }
}

#[derive(Template)]
#[template(path = "set_up_continue.html")]
struct SetupContinuePage<'a> {
    layout: Layout<'a>,
}

/// Each load makes a new secret, as people are told to reload for a fresh QR code. Only a
/// load the browser vouches for as ours (same origin, or typed or reloaded) does: a link or
/// redirect from another site, a prefetch, or a client that does not say gets the current code
/// again (or a button), so nothing else can replace the code someone is scanning.
pub async fn setup_app(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let who = setting_up(&frame)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let ours = matches!(header("sec-fetch-site").as_str(), "same-origin" | "none");
    let prefetch = header("sec-purpose").contains("prefetch") || header("purpose").contains("prefetch");
    if ours && !prefetch {
        return new_app_secret(&state, &frame, who).await;
    }
    match state.app.current_app_enrolment(who, frame.now).await {
        Ok(Some(enrolment)) => html(StatusCode::OK, &setup_app_page(&state, &frame, &enrolment, FormErrors::default())),
        Ok(None) => html(
            StatusCode::OK,
            &SetupContinuePage { layout: Layout::new(&state, Some(&frame), &frame.nonce, "Add an authenticator app") },
        ),
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => Ok(reauthenticate_first("/set-up")),
        Err(e) => Err(e.into()),
    }
}

/// The button on the continue page.
pub async fn setup_app_new(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    let who = setting_up(&frame)?;
    new_app_secret(&state, &frame, who).await
}

async fn new_app_secret(state: &AppState, frame: &Frame, who: &Authenticated) -> Result<Response, PageError> {
    match state.app.begin_app_setup(who, frame.now).await {
        Ok(enrolment) => html(StatusCode::OK, &setup_app_page(state, frame, &enrolment, FormErrors::default())),
        Err(e) if e.code == ErrorCode::Conflict => Ok(Redirect::to("/set-up/app/check").into_response()),
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => Ok(reauthenticate_first("/set-up")),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "factor_added.html")]
struct FactorAddedPage<'a> {
    layout: Layout<'a>,
    what: &'static str,
    recovery_codes: Option<Vec<String>>,
}

fn factor_added(
    state: &AppState,
    frame: &Frame,
    what: &'static str,
    codes: Option<Vec<String>>,
) -> Result<Response, PageError> {
    let mut layout = Layout::new(state, Some(frame), &frame.nonce, what);
    // The session has ended: the page no longer offers to sign out.
    layout.user_name = None;
    layout.pending = false;
    let page = FactorAddedPage { layout, what, recovery_codes: codes };
    Ok(without_session(state, html(StatusCode::OK, &page)?))
}

pub async fn setup_app_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    form: Result<Form<CodeData>, FormRejection>,
) -> Result<Response, PageError> {
    let who = setting_up(&frame)?;
    let form = read_form(form)?;
    match state.app.confirm_app_setup(who, &form.code, &frame.context(), frame.now).await {
        Ok(added) => factor_added(&state, &frame, "Authenticator app added", added.recovery_codes),
        Err(e) => match form_errors(e, "/set-up") {
            Ok(errors) => match state.app.current_app_enrolment(who, frame.now).await? {
                Some(enrolment) => html(StatusCode::BAD_REQUEST, &setup_app_page(&state, &frame, &enrolment, errors)),
                None => Ok(Redirect::to("/set-up/app").into_response()),
            },
            Err(response) => Ok(*response),
        },
    }
}

#[derive(Template)]
#[template(path = "set_up_email.html")]
struct SetupEmailPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    email: String,
    sent: bool,
    code: Field,
    banner: Option<String>,
}

async fn setup_email_page(
    state: &AppState,
    frame: &Frame,
    who: &Authenticated,
    errors: FormErrors,
    banner: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let view = match state.app.setup_view(who, frame.now).await {
        Ok(v) => v,
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => return Ok(reauthenticate_first("/set-up")),
        Err(e) => return Err(e.into()),
    };
    if !view.email_allowed {
        return Ok(Redirect::to("/set-up").into_response());
    }
    let code = Field::code("code", "Code from the email", &errors).hint("For example, 372 904");
    let page = SetupEmailPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, "Use codes sent by email").with_errors(&errors),
        errors,
        email: view.email,
        sent: view.email_sent,
        code,
        banner,
    };
    html(status, &page)
}

pub async fn setup_email(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    let who = setting_up(&frame)?;
    setup_email_page(&state, &frame, who, FormErrors::default(), sent_banner(&q), StatusCode::OK).await
}

pub async fn setup_email_send(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    let who = setting_up(&frame)?;
    match state.app.send_setup_email_code(who, &frame.context(), frame.now).await {
        Ok(()) => Ok(Redirect::to("/set-up/email?sent=email").into_response()),
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => Ok(reauthenticate_first("/set-up")),
        Err(e) => Err(e.into()),
    }
}

pub async fn setup_email_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    form: Result<Form<CodeData>, FormRejection>,
) -> Result<Response, PageError> {
    let who = setting_up(&frame)?;
    let form = read_form(form)?;
    match state.app.confirm_email_setup(who, &form.code, &frame.context(), frame.now).await {
        Ok(added) => factor_added(&state, &frame, "Email codes set up", added.recovery_codes),
        Err(e) => match form_errors(e, "/set-up") {
            Ok(errors) => setup_email_page(&state, &frame, who, errors, None, StatusCode::BAD_REQUEST).await,
            Err(response) => Ok(*response),
        },
    }
}

/// The security page.
struct FactorItem {
    id: String,
    name: &'static str,
    added: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage<'a> {
    layout: Layout<'a>,
    banner: Option<&'static str>,
    factors: Vec<FactorItem>,
    recovery_codes_left: usize,
    recovery_phone: Option<String>,
    can_remove: bool,
}

pub async fn security(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    let who = signed_in_user(&frame)?;
    let view = state.app.security_view(who).await?;
    let banner = match q.done.as_deref() {
        Some("recovery_code_used") => Some(
            "You signed in with a recovery code, which now no longer works. Make new codes when you are running low.",
        ),
        Some("removed") => Some("The second factor has been removed."),
        Some("recovery_phone") => Some("Your recovery phone has been saved."),
        Some("recovery_phone_removed") => Some("Your recovery phone has been removed."),
        _ => None,
    };
    let can_remove = !view.required || view.factors.len() > 1;
    let page = SecurityPage {
        layout: Layout::new(&state, Some(&frame), &frame.nonce, "Security").crumbs(&[]),
        banner,
        factors: view
            .factors
            .into_iter()
            .map(|f| FactorItem {
                id: f.id,
                name: match f.kind {
                    usher_app::FactorKind::App => "Authenticator app",
                    usher_app::FactorKind::Email => "Codes sent by email",
                },
                added: f.added_at.human(),
                last_used: f.last_used_at.map_or_else(|| "Never".to_owned(), |t| t.human()),
            })
            .collect(),
        recovery_codes_left: view.recovery_codes_left,
        recovery_phone: view.recovery_phone,
        can_remove,
    };
    html(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only our own account and set-up pages may follow a password check.
fn safe_next(next: Option<&str>) -> String {
    let allowed = |n: &str| n.starts_with("/account/") || n == "/set-up";
    ReturnTo::or_default(next, allowed, "/account/security").as_str().to_owned()
}

#[derive(Template)]
#[template(path = "confirm_password.html")]
struct ConfirmPasswordPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    next: String,
    email: String,
}

pub async fn confirm_password_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    let who = signed_in_user(&frame)?;
    let page = ConfirmPasswordPage {
        layout: Layout::new(&state, Some(&frame), &frame.nonce, "Enter your password"),
        errors: FormErrors::default(),
        next: safe_next(q.next.as_deref()),
        email: who.user.email.to_string(),
    };
    html(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
pub struct ConfirmPasswordData {
    #[serde(default)]
    password: SecretString,
    #[serde(default)]
    next: String,
}

pub async fn confirm_password_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    form: Result<Form<ConfirmPasswordData>, FormRejection>,
) -> Result<Response, PageError> {
    let who = signed_in_user(&frame)?;
    let form = read_form(form)?;
    let next = safe_next(Some(&form.next));
    match state.app.reauthenticate(who, &form.password, &frame.context(), frame.now).await {
        Ok(token) => Ok(with_session(&state, Redirect::to(&next).into_response(), &token)),
        Err(e) if e.code == ErrorCode::InvalidInput => {
            let errors = FormErrors::from_error(&e);
            let page = ConfirmPasswordPage {
                layout: Layout::new(&state, Some(&frame), &frame.nonce, "Enter your password").with_errors(&errors),
                errors,
                next,
                email: who.user.email.to_string(),
            };
            html(StatusCode::BAD_REQUEST, &page)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn remove_factor(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let who = signed_in_user(&frame)?;
    match state.app.remove_factor(who, &id, &frame.context(), frame.now).await {
        Ok(()) => Ok(Redirect::to("/account/security?done=removed").into_response()),
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => Ok(reauthenticate_first("/account/security")),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesPage<'a> {
    layout: Layout<'a>,
    codes: Vec<String>,
}

pub async fn new_recovery_codes(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    let who = signed_in_user(&frame)?;
    match state.app.regenerate_recovery_codes(who, &frame.context(), frame.now).await {
        Ok(codes) => html(
            StatusCode::OK,
            &RecoveryCodesPage {
                layout: Layout::new(&state, Some(&frame), &frame.nonce, "Your new recovery codes"),
                codes,
            },
        ),
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => Ok(reauthenticate_first("/account/security")),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "recovery_phone.html")]
struct RecoveryPhonePage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    phone: Field,
    /// The number a code was texted to (E.164), on the second step.
    sent_to: Option<String>,
    last_four: String,
    code: Field,
}

#[derive(Debug, Deserialize)]
pub struct PhoneData {
    #[serde(default)]
    phone: String,
    #[serde(default)]
    code: String,
}

fn recovery_phone_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    errors: FormErrors,
    typed: &str,
    sent_to: Option<usher_domain::phone::MobileNumber>,
) -> RecoveryPhonePage<'a> {
    let phone = Field::new("phone", "Mobile phone number", typed, &errors)
        .hint("A UK mobile number, like 07700 900 982. We will text a code to it.")
        .kind("tel", "tel")
        .width("govuk-input--width-20");
    let code = Field::code("code", "Code from the text message", &errors).hint("For example, 372 904");
    RecoveryPhonePage {
        layout: Layout::new(state, Some(frame), &frame.nonce, "Recovery phone number").with_errors(&errors),
        errors,
        phone,
        last_four: sent_to.as_ref().map(|p| p.last_four().to_owned()).unwrap_or_default(),
        sent_to: sent_to.map(|p| p.as_str().to_owned()),
        code,
    }
}

pub async fn recovery_phone_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    let who = signed_in_user(&frame)?;
    if let Err(e) = state.app.require_recent_password(who, frame.now) {
        return if e.code == ErrorCode::ReauthenticationRequired {
            Ok(reauthenticate_first("/account/security/recovery-phone"))
        } else {
            Err(e.into())
        };
    }
    html(StatusCode::OK, &recovery_phone_page(&state, &frame, FormErrors::default(), "", None))
}

pub async fn recovery_phone_send(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    form: Result<Form<PhoneData>, FormRejection>,
) -> Result<Response, PageError> {
    let who = signed_in_user(&frame)?;
    let form = read_form(form)?;
    match state.app.send_recovery_phone_code(who, &form.phone, &frame.context(), frame.now).await {
        Ok(phone) => {
            html(StatusCode::OK, &recovery_phone_page(&state, &frame, FormErrors::default(), &form.phone, Some(phone)))
        }
        Err(e) => match form_errors(e, "/account/security/recovery-phone") {
            Ok(errors) => {
                html(StatusCode::BAD_REQUEST, &recovery_phone_page(&state, &frame, errors, &form.phone, None))
            }
            Err(response) => Ok(*response),
        },
    }
}

pub async fn recovery_phone_confirm(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    form: Result<Form<PhoneData>, FormRejection>,
) -> Result<Response, PageError> {
    let who = signed_in_user(&frame)?;
    let form = read_form(form)?;
    match state.app.confirm_recovery_phone(who, &form.phone, &form.code, &frame.context(), frame.now).await {
        Ok(()) => Ok(Redirect::to("/account/security?done=recovery_phone").into_response()),
        Err(e) => match form_errors(e, "/account/security/recovery-phone") {
            Ok(errors) => {
                let sent_to = usher_domain::phone::MobileNumber::parse(&form.phone).ok();
                html(StatusCode::BAD_REQUEST, &recovery_phone_page(&state, &frame, errors, &form.phone, sent_to))
            }
            Err(response) => Ok(*response),
        },
    }
}

pub async fn recovery_phone_remove(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    let who = signed_in_user(&frame)?;
    match state.app.remove_recovery_phone(who, &frame.context(), frame.now).await {
        Ok(()) => Ok(Redirect::to("/account/security?done=recovery_phone_removed").into_response()),
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => Ok(reauthenticate_first("/account/security")),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "recover.html")]
struct RecoverPage<'a> {
    layout: Layout<'a>,
}

/// "Forgotten your password or lost your device?" from the sign-in page.
pub async fn recover(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    html(
        StatusCode::OK,
        &RecoverPage {
            layout: Layout::new(&state, Some(&frame), &frame.nonce, "Forgotten your password or lost your device?"),
        },
    )
}

/// The reset link's second-factor step (S15), for the reset page.
pub(crate) fn reset_second_factor_form(
    token: &str,
    view: &usher_app::passwords::ResetView,
    chosen: Option<&str>,
    errors: &FormErrors,
    banner: Option<String>,
) -> SecondFactorForm {
    let mut methods = Vec::new();
    if view.has_app {
        methods.push(Method::App);
    }
    if view.has_email {
        methods.push(Method::Email);
    }
    if view.recovery_codes_left > 0 {
        methods.push(Method::RecoveryCode);
    }
    if view.recovery_phone.is_some() {
        methods.push(Method::RecoveryText);
    }
    let sf = SecondFactorView {
        has_app: view.has_app,
        has_email: view.has_email,
        recovery_codes_left: view.recovery_codes_left,
        recovery_phone: view.recovery_phone.clone(),
        email: view.user.email.to_string(),
    };
    let mut form =
        build_form(&sf, &methods, chosen, &format!("/reset-password/{token}/second-factor"), errors, banner, None);
    form.intro = format!("Before you choose a new password, confirm it is you. {}", form.intro);
    form
}
