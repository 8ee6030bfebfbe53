//! Setting up a second factor: the texted check, the authenticator app's QR code, emailed codes.

use super::*;

#[derive(Template)]
#[template(path = "set_up.html")]
pub(super) struct SetupPage<'a> {
    layout: Layout<'a>,
    view: SetupView,
    banner: Option<&'static str>,
}

pub async fn setup(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SettingUp(ref who): SettingUp,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
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
pub(super) struct SetupCheckPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    view: SetupView,
    code: Field,
    banner: Option<String>,
}

pub(super) fn setup_check_page<'a>(
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
    SettingUp(ref who): SettingUp,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    let view = match state.app.setup_view(who, frame.now).await {
        Ok(v) => v,
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => return Ok(reauthenticate_first("/set-up")),
        Err(e) => return Err(e.into()),
    };
    if view.check_done {
        return Ok(Redirect::to("/set-up/app").into_response());
    }
    html(
        StatusCode::OK,
        &setup_check_page(&state, &frame, view, FormErrors::default(), sent_banner(&state.app.policy, &q)),
    )
}

pub async fn setup_check_send(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SettingUp(ref who): SettingUp,
) -> Result<Response, PageError> {
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
    SettingUp(ref who): SettingUp,
    form: Result<Form<CodeData>, FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(form)?;
    match state.app.confirm_setup_check(who, &form.code, &frame.context(), frame.now).await {
        // The check proven, the first secret is made here, in the POST, then shown by the GET.
        Ok(()) => match state.app.begin_app_setup(who, frame.now).await {
            Ok(_) => Ok(Redirect::to("/set-up/app").into_response()),
            Err(e) if e.code == ErrorCode::ReauthenticationRequired => Ok(reauthenticate_first("/set-up")),
            Err(e) => Err(e.into()),
        },
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
pub(super) struct SetupAppPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    qr_svg: String,
    secret_text: String,
    otpauth_uri: String,
    code: Field,
}

pub(super) fn qr_svg(text: &str) -> String {
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

pub(super) fn setup_app_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    enrolment: &AppEnrolment,
    errors: FormErrors,
) -> SetupAppPage<'a> {
    let code = Field::code("code", "Code from your authenticator app", &errors)
        .hint(format!("The {} digits your app shows, for example 372 904", usher_domain::totp::DIGITS));
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
pub(super) struct SetupContinuePage<'a> {
    layout: Layout<'a>,
}

/// The QR page shows the flow's current secret: a GET never makes one (a prefetch, a reload or
/// another site's link changes nothing). A new one is made by a POST: the texted check's
/// success, or "Make a new QR code".
pub async fn setup_app(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SettingUp(ref who): SettingUp,
) -> Result<Response, PageError> {
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

/// "Make a new QR code", on the QR page and the continue page.
pub async fn setup_app_new(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SettingUp(ref who): SettingUp,
) -> Result<Response, PageError> {
    new_app_secret(&state, &frame, who).await
}

pub(super) async fn new_app_secret(
    state: &AppState,
    frame: &Frame,
    who: &Authenticated,
) -> Result<Response, PageError> {
    match state.app.begin_app_setup(who, frame.now).await {
        Ok(enrolment) => html(StatusCode::OK, &setup_app_page(state, frame, &enrolment, FormErrors::default())),
        Err(e) if e.code == ErrorCode::Conflict => Ok(Redirect::to("/set-up/app/check").into_response()),
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => Ok(reauthenticate_first("/set-up")),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "factor_added.html")]
pub(super) struct FactorAddedPage<'a> {
    layout: Layout<'a>,
    what: &'static str,
    recovery_codes: Option<Vec<String>>,
}

pub(super) fn factor_added(
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
    SettingUp(ref who): SettingUp,
    form: Result<Form<CodeData>, FormRejection>,
) -> Result<Response, PageError> {
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
pub(super) struct SetupEmailPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    email: String,
    sent: bool,
    code: Field,
    banner: Option<String>,
}

pub(super) async fn setup_email_page(
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
    SettingUp(ref who): SettingUp,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    setup_email_page(&state, &frame, who, FormErrors::default(), sent_banner(&state.app.policy, &q), StatusCode::OK)
        .await
}

pub async fn setup_email_send(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SettingUp(ref who): SettingUp,
) -> Result<Response, PageError> {
    match state.app.send_setup_email_code(who, &frame.context(), frame.now).await {
        Ok(()) => Ok(Redirect::to("/set-up/email?sent=email").into_response()),
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => Ok(reauthenticate_first("/set-up")),
        Err(e) => Err(e.into()),
    }
}

pub async fn setup_email_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SettingUp(ref who): SettingUp,
    form: Result<Form<CodeData>, FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(form)?;
    match state.app.confirm_email_setup(who, &form.code, &frame.context(), frame.now).await {
        Ok(added) => factor_added(&state, &frame, "Email codes set up", added.recovery_codes),
        Err(e) => match form_errors(e, "/set-up") {
            Ok(errors) => setup_email_page(&state, &frame, who, errors, None, StatusCode::BAD_REQUEST).await,
            Err(response) => Ok(*response),
        },
    }
}
