//! The second step of signing in, the alternatives it offers, recovery when a device is lost,
//! and the recovery page.

use super::*;
use usher_domain::policy::Policy;

/// A link to another way of proving the second factor.
pub(crate) struct Alternative {
    pub(crate) href: String,
    pub(crate) label: String,
}

#[derive(Template)]
#[template(path = "second_factor.html")]
pub(super) struct SecondFactorPage<'a> {
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
pub(super) fn method_words(
    policy: &Policy,
    method: Method,
    view: &SecondFactorView,
) -> (&'static str, String, &'static str) {
    let digits = usher_domain::code::CODE_DIGITS;
    match method {
        Method::App => (
            "Enter the code from your authenticator app",
            format!(
                "Open your authenticator app and enter the {}-digit code it shows for this service. If the code is about to change, wait for the next one.",
                usher_domain::totp::DIGITS
            ),
            "Code from your app",
        ),
        Method::Email => (
            "Enter the code we emailed you",
            format!(
                "Select \u{201c}Send code\u{201d} and we will email a {digits}-digit code to {}. It works for {}; only the newest code works.",
                view.email,
                policy.email_code.lifetime.in_words()
            ),
            "Code from the email",
        ),
        Method::RecoveryCode => (
            "Enter a recovery code",
            "Enter one of the recovery codes you noted down when you set up your second factor. Each code works once."
                .into(),
            "Recovery code",
        ),
        Method::RecoveryText => (
            "Enter the code we texted you",
            format!(
                "Select \u{201c}Send code\u{201d} and we will text a {digits}-digit code to your recovery phone ending {}. It works for {}.",
                view.recovery_phone.clone().unwrap_or_default(),
                policy.sms_code.lifetime.in_words()
            ),
            "Code from the text message",
        ),
    }
}

pub(super) fn method_name(m: Method) -> &'static str {
    match m {
        Method::App => "app",
        Method::Email => "email",
        Method::RecoveryCode => "recovery_code",
        Method::RecoveryText => "recovery_text",
    }
}

pub(super) fn alternative_label(m: Method) -> &'static str {
    match m {
        Method::App => "Use your authenticator app",
        Method::Email => "Get a code by email",
        Method::RecoveryCode => "Use a recovery code",
        Method::RecoveryText => "Get a code texted to your recovery phone",
    }
}

/// The second-factor form for `methods`, at `base` (the page's own address).
pub(super) fn build_form(
    policy: &Policy,
    view: &SecondFactorView,
    methods: &[Method],
    chosen: Option<&str>,
    base: &str,
    errors: &FormErrors,
    banner: Option<String>,
) -> SecondFactorForm {
    let method = chosen
        .and_then(Method::parse)
        .filter(|m| methods.contains(m))
        .or(methods.first().copied())
        .unwrap_or(Method::RecoveryCode);
    let (heading, intro, label) = method_words(policy, method, view);
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
        lost_device: None,
    }
}

impl SecondFactorForm {
    /// Offers "lost your device", leading to `href`.
    fn with_lost_device(mut self, href: &'static str) -> Self {
        self.lost_device = Some(href);
        self
    }
}

pub(super) fn second_factor_page<'a>(
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

pub(super) fn sent_banner(policy: &Policy, q: &CodeQuery) -> Option<String> {
    code_sent_banner(policy, q.sent.as_deref())
}

/// The banner after a code was sent (`sent` is "email" or "text"), with how long it works.
pub(crate) fn code_sent_banner(policy: &Policy, sent: Option<&str>) -> Option<String> {
    match sent {
        Some("email") => {
            Some(format!("We have emailed you a code. It works for {}.", policy.email_code.lifetime.in_words()))
        }
        Some("text") => {
            Some(format!("We have texted you a code. It works for {}.", policy.sms_code.lifetime.in_words()))
        }
        _ => None,
    }
}

pub async fn second_factor_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Pending(ref who): Pending,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    let view = state.app.second_factor_view(who).await?;
    let errors = FormErrors::default();
    let sf = build_form(
        &state.app.policy,
        &view,
        &view.methods(),
        q.method.as_deref(),
        "/sign-in/second-factor",
        &errors,
        sent_banner(&state.app.policy, &q),
    )
    .with_lost_device("/sign-in/lost-device");
    html(StatusCode::OK, &second_factor_page(&state, &frame, sf, errors))
}

pub async fn second_factor_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Pending(ref who): Pending,
    headers: axum::http::HeaderMap,
    form: Result<Form<CodeData>, FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(form)?;
    let method = Method::parse(&form.method)
        .ok_or_else(|| PageError(Error::field("method", "Choose how to confirm it is you")))?;
    match state.app.verify_second_factor(who, method, &form.code, &frame.context(), frame.now).await {
        Ok(done) => {
            // A used recovery code first shows how many are left; otherwise on to where the
            // person was going.
            let next = if done.recovery_codes_left.is_some() {
                Redirect::to("/account/security?done=recovery_code_used").into_response()
            } else {
                return_to::arrive(&state, &headers, "/home")
            };
            Ok(with_session(&state, next, &done.token))
        }
        Err(e) if e.code == ErrorCode::InvalidInput => {
            let view = state.app.second_factor_view(who).await?;
            let errors = FormErrors::from_error(&e);
            let sf = build_form(
                &state.app.policy,
                &view,
                &view.methods(),
                Some(&form.method),
                "/sign-in/second-factor",
                &errors,
                None,
            )
            .with_lost_device("/sign-in/lost-device");
            html(StatusCode::BAD_REQUEST, &second_factor_page(&state, &frame, sf, errors))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn second_factor_email(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Pending(ref who): Pending,
) -> Result<Response, PageError> {
    state.app.send_sign_in_email_code(who, &frame.context(), frame.now).await?;
    Ok(Redirect::to("/sign-in/second-factor?method=email&sent=email").into_response())
}

/// Lost device: a code texted to the recovery phone removes the old factors, then set-up.
pub async fn lost_device_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Pending(ref who): Pending,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    let view = state.app.second_factor_view(who).await?;
    lost_device_page(&state, &frame, &view, FormErrors::default(), sent_banner(&state.app.policy, &q), StatusCode::OK)
}

#[derive(Template)]
#[template(path = "lost_device.html")]
pub(super) struct LostDevicePage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    form: Option<SecondFactorForm>,
    has_recovery_codes: bool,
}

pub(super) fn lost_device_page(
    state: &AppState,
    frame: &Frame,
    view: &SecondFactorView,
    errors: FormErrors,
    banner: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let form = view.recovery_phone.is_some().then(|| {
        build_form(&state.app.policy, view, &[Method::RecoveryText], None, "/sign-in/lost-device", &errors, banner)
    });
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
    Pending(ref who): Pending,
) -> Result<Response, PageError> {
    state.app.send_recovery_text(who, &frame.context(), frame.now).await?;
    Ok(Redirect::to("/sign-in/lost-device?sent=text").into_response())
}

pub async fn lost_device_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Pending(ref who): Pending,
    form: Result<Form<CodeData>, FormRejection>,
) -> Result<Response, PageError> {
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

#[derive(Template)]
#[template(path = "recover.html")]
pub(super) struct RecoverPage<'a> {
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
    policy: &Policy,
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
        build_form(policy, &sf, &methods, chosen, &format!("/reset-password/{token}/second-factor"), errors, banner);
    form.intro = format!("Before you choose a new password, confirm it is you. {}", form.intro);
    form
}
