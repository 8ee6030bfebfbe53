//! The person's security page: factors, recovery codes, the recovery phone, and the password
//! entered again before any change.

use super::*;

/// The security page.
pub(super) struct FactorItem {
    id: String,
    name: &'static str,
    added: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "security.html")]
pub(super) struct SecurityPage<'a> {
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
    SignedIn(ref who): SignedIn,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
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
pub(super) fn safe_next(next: Option<&str>) -> String {
    let allowed = |n: &str| n.starts_with("/account/") || n == "/set-up";
    ReturnTo::or_default(next, allowed, "/account/security").as_str().to_owned()
}

#[derive(Template)]
#[template(path = "confirm_password.html")]
pub(super) struct ConfirmPasswordPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    next: String,
    email: String,
}

pub async fn confirm_password_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SignedIn(ref who): SignedIn,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
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
    SignedIn(ref who): SignedIn,
    form: Result<Form<ConfirmPasswordData>, FormRejection>,
) -> Result<Response, PageError> {
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
    SignedIn(ref who): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    match state.app.remove_factor(who, &id, &frame.context(), frame.now).await {
        Ok(()) => Ok(Redirect::to("/account/security?done=removed").into_response()),
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => Ok(reauthenticate_first("/account/security")),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub(super) struct RecoveryCodesPage<'a> {
    layout: Layout<'a>,
    codes: Vec<String>,
}

pub async fn new_recovery_codes(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SignedIn(ref who): SignedIn,
) -> Result<Response, PageError> {
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
pub(super) struct RecoveryPhonePage<'a> {
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

pub(super) fn recovery_phone_page<'a>(
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
    SignedIn(ref who): SignedIn,
) -> Result<Response, PageError> {
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
    SignedIn(ref who): SignedIn,
    form: Result<Form<PhoneData>, FormRejection>,
) -> Result<Response, PageError> {
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
    SignedIn(ref who): SignedIn,
    form: Result<Form<PhoneData>, FormRejection>,
) -> Result<Response, PageError> {
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
    SignedIn(ref who): SignedIn,
) -> Result<Response, PageError> {
    match state.app.remove_recovery_phone(who, &frame.context(), frame.now).await {
        Ok(()) => Ok(Redirect::to("/account/security?done=recovery_phone_removed").into_response()),
        Err(e) if e.code == ErrorCode::ReauthenticationRequired => Ok(reauthenticate_first("/account/security")),
        Err(e) => Err(e.into()),
    }
}
