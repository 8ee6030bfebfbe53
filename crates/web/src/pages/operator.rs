//! The operator's pages: organisations, their administrators, the terms and conditions.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use usher_app::authz::Operator;
use usher_app::members::NewPerson;
use usher_app::organisations::OrganisationForm;
use usher_domain::ErrorCode;
use usher_domain::account::AccountStatus;
use usher_domain::organisation::OrganisationKind;

use super::{Done, Field, FormErrors, Layout, PersonRow, html, read_form};
use crate::AppState;
use crate::error::PageError;
use crate::frame::Frame;
use crate::groups::{self, SignedIn};

struct OrganisationRow {
    id: String,
    name: String,
    kind: &'static str,
    domains: String,
    created: String,
}

#[derive(Template)]
#[template(path = "organisations.html")]
struct OrganisationsPage<'a> {
    layout: Layout<'a>,
    organisations: Vec<OrganisationRow>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    SignedIn(ref who): SignedIn,
) -> Result<Response, PageError> {
    let operator = Operator::check(who)?;
    let organisations = state
        .app
        .organisations(operator)
        .await?
        .into_iter()
        .map(|o| OrganisationRow {
            id: o.id.to_string(),
            name: o.name,
            kind: o.kind.label(),
            domains: o.email_domains.list().join(", "),
            created: o.created_at.human_date(),
        })
        .collect();
    html(
        StatusCode::OK,
        &OrganisationsPage {
            layout: Layout::new(&state, Some(&frame), &frame.nonce, "Organisations").crumbs(&[]),
            organisations,
        },
    )
}

struct KindChoice {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "organisation_new.html")]
struct NewOrganisationPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    name: Field,
    kinds: Vec<KindChoice>,
    email_domains: String,
    min_password_length: String,
    second_factor: super::Radios,
    email_codes: super::Radios,
}

#[derive(Debug, Default, Deserialize)]
pub struct OrganisationFormData {
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    email_domains: String,
    #[serde(default)]
    min_password_length: String,
    #[serde(default)]
    second_factor: String,
    #[serde(default)]
    email_codes: String,
}

fn new_organisation_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    form: &OrganisationFormData,
    errors: FormErrors,
) -> NewOrganisationPage<'a> {
    NewOrganisationPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, "Register an organisation").with_errors(&errors),
        name: Field::new("name", "Organisation name", &form.name, &errors).kind("text", "organization"),
        kinds: OrganisationKind::ALL
            .iter()
            .map(|k| KindChoice { value: k.as_str(), label: k.label(), checked: form.kind == k.as_str() })
            .collect(),
        email_domains: form.email_domains.clone(),
        min_password_length: form.min_password_length.clone(),
        second_factor: second_factor_radios(state, &form.second_factor, &errors),
        email_codes: email_code_radios(state, &form.email_codes, &errors),
        errors,
    }
}

pub async fn new_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
) -> Result<Response, PageError> {
    usher_app::authz::Operator::check(who)?;
    html(
        StatusCode::OK,
        &new_organisation_page(&state, &frame, &OrganisationFormData::default(), FormErrors::default()),
    )
}

pub async fn new_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    form: Result<Form<OrganisationFormData>, FormRejection>,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let form = read_form(form)?;
    let answers = OrganisationForm {
        name: form.name.clone(),
        kind: form.kind.clone(),
        email_domains: form.email_domains.clone(),
        min_password_length: form.min_password_length.clone(),
        second_factor: form.second_factor.clone(),
        email_codes: form.email_codes.clone(),
    };
    match state.app.register_organisation(operator, &answers, &frame.context(), frame.now).await {
        Ok(o) => Ok(Redirect::to(&format!("/operator/organisations/{}?done=registered", o.id)).into_response()),
        Err(e) if e.code == ErrorCode::InvalidInput => {
            html(StatusCode::BAD_REQUEST, &new_organisation_page(&state, &frame, &form, FormErrors::from_error(&e)))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "organisation.html")]
struct OrganisationPage<'a> {
    layout: Layout<'a>,
    banner: Option<&'static str>,
    id: String,
    name: String,
    kind: &'static str,
    domains: String,
    created: String,
    people: Vec<PersonRow>,
    table_caption: &'static str,
    second_factor: super::Radios,
    email_codes: super::Radios,
    /// Administrators who can sign in: (ID, name), for resetting their second factors.
    resettable: Vec<(String, String)>,
}

pub async fn show(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let view = state.app.organisation_view(operator, &id).await?;
    let o = &view.organisation;
    let banner = match done.done.as_deref() {
        Some("registered") => Some("Organisation registered. Now invite its first administrator."),
        Some("invited") => Some("Administrator invited. We have emailed them an activation link."),
        Some("second_factors") => Some("Second factor rules saved. They apply from each person's next sign-in."),
        Some("factors") => Some("Second factors reset. They will set up a new one when they next sign in."),
        _ => None,
    };
    let page = OrganisationPage {
        layout: Layout::new(&state, Some(&frame), &frame.nonce, &o.name),
        banner,
        id: o.id.to_string(),
        name: o.name.clone(),
        kind: o.kind.label(),
        domains: o.email_domains.list().join(", "),
        created: o.created_at.human_date(),
        people: view.administrators.iter().map(|l| PersonRow::of(l, frame.now, None)).collect(),
        table_caption: "Administrators",
        second_factor: second_factor_radios(
            &state,
            &current(o.mfa_required, "required", "optional"),
            &FormErrors::default(),
        ),
        email_codes: email_code_radios(
            &state,
            &current(o.email_codes_allowed, "allowed", "not_allowed"),
            &FormErrors::default(),
        ),
        resettable: view
            .administrators
            .iter()
            .filter(|l| matches!(l.user.status, AccountStatus::Active | AccountStatus::Locked))
            .map(|l| (l.user.id.to_string(), l.user.full_name.clone()))
            .collect(),
    };
    html(StatusCode::OK, &page)
}

/// The stored choice as the radios' value.
fn current(choice: Option<bool>, yes: &'static str, no: &'static str) -> String {
    match choice {
        None => "default".into(),
        Some(true) => yes.into(),
        Some(false) => no.into(),
    }
}

fn second_factor_radios(state: &AppState, value: &str, errors: &FormErrors) -> super::Radios {
    let required = state.app.config.mfa.required;
    super::Radios::new(
        "second_factor",
        "Must its people use a second factor when they sign in?",
        &[
            ("default", format!("This service's default ({})", if required { "required" } else { "optional" })),
            ("required", "Required".into()),
            ("optional", "Optional".into()),
        ],
        value,
        errors,
    )
    .hint("If required, each person sets one up the first time they sign in.")
}

fn email_code_radios(state: &AppState, value: &str, errors: &FormErrors) -> super::Radios {
    let allowed = state.app.config.mfa.email_codes;
    super::Radios::new(
        "email_codes",
        "May its people use codes sent by email as their second factor?",
        &[
            ("default", format!("This service's default ({})", if allowed { "allowed" } else { "not allowed" })),
            ("allowed", "Allowed, for people who cannot use an authenticator app".into()),
            ("not_allowed", "Not allowed: authenticator apps only".into()),
        ],
        value,
        errors,
    )
}

#[derive(Debug, Deserialize)]
pub struct SecondFactorRulesData {
    #[serde(default)]
    second_factor: String,
    #[serde(default)]
    email_codes: String,
}

pub async fn second_factor_rules(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    Path(id): Path<String>,
    form: Result<Form<SecondFactorRulesData>, FormRejection>,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let form = read_form(form)?;
    let o = state
        .app
        .set_second_factor_rules(operator, &id, &form.second_factor, &form.email_codes, &frame.context(), frame.now)
        .await?;
    Ok(Redirect::to(&format!("/operator/organisations/{}?done=second_factors", o.id)).into_response())
}

#[derive(Template)]
#[template(path = "person_new.html")]
pub(crate) struct NewPersonPage<'a> {
    pub layout: Layout<'a>,
    pub errors: FormErrors,
    pub back: String,
    pub organisation: String,
    pub heading: &'static str,
    pub button: &'static str,
    pub full_name: Field,
    pub email: Field,
    pub mobile: Field,
}

#[derive(Debug, Default, Deserialize)]
pub struct PersonFormData {
    #[serde(default)]
    pub full_name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub mobile: String,
}

impl PersonFormData {
    pub fn person(&self) -> NewPerson {
        NewPerson { full_name: self.full_name.clone(), email: self.email.clone(), mobile: self.mobile.clone() }
    }
}

pub(crate) fn person_fields(form: &PersonFormData, errors: &FormErrors) -> (Field, Field, Field) {
    (
        Field::new("full_name", "Full name", &form.full_name, errors).kind("text", "off"),
        Field::new("email", "Email address", &form.email, errors).kind("email", "off"),
        Field::new("mobile", "Mobile phone number", &form.mobile, errors)
            .kind("tel", "off")
            .hint("A UK number like 07700 900 982, or an international one starting with +")
            .width("govuk-input--width-20"),
    )
}

fn invite_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    id: &str,
    org: &str,
    form: &PersonFormData,
    errors: FormErrors,
) -> NewPersonPage<'a> {
    let (full_name, email, mobile) = person_fields(form, &errors);
    NewPersonPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, "Invite an administrator").with_errors(&errors),
        errors,
        back: format!("/operator/organisations/{id}"),
        organisation: org.to_owned(),
        heading: "Invite an administrator",
        button: "Send invitation",
        full_name,
        email,
        mobile,
    }
}

pub async fn invite_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let view = state.app.organisation_view(operator, &id).await?;
    let page =
        invite_page(&state, &frame, &id, &view.organisation.name, &PersonFormData::default(), FormErrors::default());
    html(StatusCode::OK, &page)
}

pub async fn invite_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    Path(id): Path<String>,
    form: Result<Form<PersonFormData>, FormRejection>,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let form = read_form(form)?;
    match state.app.invite_administrator(operator, &id, &form.person(), &frame.context(), frame.now).await {
        Ok(_) => Ok(Redirect::to(&format!("/operator/organisations/{id}?done=invited")).into_response()),
        Err(e) if e.code == ErrorCode::InvalidInput => {
            let view = state.app.organisation_view(operator, &id).await?;
            let page = invite_page(&state, &frame, &id, &view.organisation.name, &form, FormErrors::from_error(&e));
            html(StatusCode::BAD_REQUEST, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "terms_edit.html")]
struct TermsPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    banner: Option<String>,
    version: i64,
    published: String,
    body: String,
}

#[derive(Debug, Deserialize)]
pub struct TermsFormData {
    #[serde(default)]
    body: String,
}

pub async fn terms_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
) -> Result<Response, PageError> {
    usher_app::authz::Operator::check(who)?;
    let terms = state.app.current_terms().await?;
    let page = TermsPage {
        layout: Layout::new(&state, Some(&frame), &frame.nonce, "Terms and conditions"),
        errors: FormErrors::default(),
        banner: None,
        version: terms.version,
        published: if terms.published_at.unix() == 0 {
            "with this server".to_owned()
        } else {
            terms.published_at.human()
        },
        body: terms.body,
    };
    html(StatusCode::OK, &page)
}

pub async fn terms_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    form: Result<Form<TermsFormData>, FormRejection>,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let form = read_form(form)?;
    let (errors, banner) = match state.app.publish_terms(operator, &form.body, &frame.context(), frame.now).await {
        Ok(version) => (
            FormErrors::default(),
            Some(format!("Version {version} is published. People activating from now on agree to it.")),
        ),
        Err(e) if matches!(e.code, ErrorCode::InvalidInput | ErrorCode::Conflict) => {
            let mut errors = FormErrors::from_error(&e);
            if errors.is_empty() {
                errors.list.push(usher_domain::error::FieldError { field: "body", message: e.message.to_string() });
            }
            (errors, None)
        }
        Err(e) => return Err(e.into()),
    };
    let terms = state.app.current_terms().await?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = TermsPage {
        layout: Layout::new(&state, Some(&frame), &frame.nonce, "Terms and conditions").with_errors(&errors),
        body: if errors.is_empty() { terms.body.clone() } else { form.body },
        errors,
        banner,
        version: terms.version,
        published: terms.published_at.human(),
    };
    html(status, &page)
}

pub async fn reset_administrator_factors(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let user = state.app.reset_administrator_factors(operator, &id, &frame.context(), frame.now).await?;
    let org = user.organisation_id.map(|o| o.to_string()).unwrap_or_default();
    Ok(Redirect::to(&format!("/operator/organisations/{org}?done=factors")).into_response())
}
