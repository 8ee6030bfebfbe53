//! The operator's pages for services that sign people in with Usher (OpenID Connect clients):
//! the list, registering one (its secret shown once), its details, a new secret with an
//! overlap, and disabling it.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use usher_app::oidc::clients::{ClientForm, OidcClient, Registrar, SECRET_OVERLAP_DEFAULT, SECRET_OVERLAP_MAX};
use usher_app::oidc::endpoints;
use usher_domain::ErrorCode;
use usher_domain::duration::Span;
use usher_domain::error::FieldError;
use usher_domain::oidc::client::Lifetimes;
use usher_domain::oidc::{AuthMethod, Scope, SubjectType};
use usher_domain::organisation::OrganisationKind;

use super::client_logouts::LogoutSection;
use super::components::Radios;
use super::{Done, Field, FormErrors, Layout, html, read_form};
use crate::AppState;
use crate::error::PageError;
use crate::frame::Frame;
use crate::groups;

/// How each way of proving the client is put to the operator.
fn auth_label(m: AuthMethod) -> &'static str {
    match m {
        AuthMethod::SecretBasic => "A secret, sent in the Authorization header (client_secret_basic; most libraries)",
        AuthMethod::SecretPost => "A secret, sent in the request body (client_secret_post)",
        AuthMethod::PrivateKeyJwt => "Signed with the service's own key (private_key_jwt)",
        AuthMethod::None => "None: a public client, such as an app in a browser, proven by PKCE alone",
    }
}

const AUTH_METHODS: [AuthMethod; 4] =
    [AuthMethod::SecretBasic, AuthMethod::SecretPost, AuthMethod::PrivateKeyJwt, AuthMethod::None];

/// What a scope lets the service see, for the form.
fn scope_label(s: Scope) -> &'static str {
    match s {
        Scope::OpenId => "Who the person is (openid; always included)",
        Scope::Profile => "Their name (profile)",
        Scope::Email => "Their email address (email)",
        Scope::Phone => "Their mobile number (phone)",
        Scope::Organisation => "Their organisation and role (organisation)",
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

fn admission_text(c: &OidcClient) -> String {
    let a = &c.admission;
    if a.kinds.is_empty() && a.organisation_ids.is_empty() {
        return "Every organisation".to_owned();
    }
    let mut parts: Vec<String> = a.kinds.iter().map(|k| k.label().to_owned()).collect();
    if !a.organisation_ids.is_empty() {
        parts.push(format!("{} named organisation(s)", a.organisation_ids.len()));
    }
    parts.join(", ")
}

struct ClientRow {
    id: String,
    name: String,
    auth: &'static str,
    admits: String,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "clients.html")]
struct ClientsPage<'a> {
    layout: Layout<'a>,
    clients: Vec<ClientRow>,
    issuer: String,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let clients = state
        .app
        .clients(Registrar::Operator(operator))
        .await?
        .iter()
        .map(|c| ClientRow {
            id: c.id.to_string(),
            name: c.name.clone(),
            auth: c.auth_method.as_str(),
            admits: admission_text(c),
            disabled: c.disabled_at.is_some(),
        })
        .collect();
    html(
        StatusCode::OK,
        &ClientsPage {
            layout: Layout::new(&state, Some(&frame), &frame.nonce, "Services that sign in with Usher"),
            clients,
            issuer: state.app.issuer(),
        },
    )
}

/// The registration form as posted: checkboxes repeat their name, so it is read as pairs.
#[derive(Debug, Default)]
struct ClientFormData {
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    backchannel_logout_uri: String,
    auth_method: String,
    jwks: String,
    scopes: Vec<String>,
    organisation_kinds: Vec<String>,
    organisation_ids: String,
    second_factor: String,
    subject_type: String,
    sector: String,
    id_token_alg: String,
    access_token_seconds: String,
    id_token_seconds: String,
    refresh_token_seconds: String,
}

impl ClientFormData {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut f = Self::default();
        for (k, v) in pairs {
            match k.as_str() {
                "name" => f.name = v,
                "redirect_uris" => f.redirect_uris = v,
                "post_logout_redirect_uris" => f.post_logout_redirect_uris = v,
                "backchannel_logout_uri" => f.backchannel_logout_uri = v,
                "auth_method" => f.auth_method = v,
                "jwks" => f.jwks = v,
                "scopes" => f.scopes.push(v),
                "organisation_kinds" => f.organisation_kinds.push(v),
                "organisation_ids" => f.organisation_ids = v,
                "second_factor" => f.second_factor = v,
                "subject_type" => f.subject_type = v,
                "sector" => f.sector = v,
                "id_token_alg" => f.id_token_alg = v,
                "access_token_seconds" => f.access_token_seconds = v,
                "id_token_seconds" => f.id_token_seconds = v,
                "refresh_token_seconds" => f.refresh_token_seconds = v,
                _ => {}
            }
        }
        f
    }

    /// The registration: a number that is not one is passed on as an impossible lifetime, so
    /// that the one check (in the app) words the message.
    fn registration(&self) -> ClientForm {
        let seconds = |text: &str| match text.trim() {
            "" => None,
            t => Some(t.parse::<i64>().unwrap_or(-1)),
        };
        let mut scopes = vec![Scope::OpenId.as_str().to_owned()];
        scopes.extend(self.scopes.iter().filter(|s| s.as_str() != Scope::OpenId.as_str()).cloned());
        ClientForm {
            name: self.name.clone(),
            redirect_uris: lines(&self.redirect_uris),
            post_logout_redirect_uris: lines(&self.post_logout_redirect_uris),
            backchannel_logout_uri: Some(self.backchannel_logout_uri.clone()),
            auth_method: Some(self.auth_method.clone()),
            jwks: Some(self.jwks.clone()),
            scopes: Some(scopes.join(" ")),
            organisation_kinds: self.organisation_kinds.clone(),
            organisation_ids: lines(&self.organisation_ids),
            second_factor_required: Some(self.second_factor != "no"),
            subject_type: Some(self.subject_type.clone()),
            sector: Some(self.sector.clone()),
            id_token_alg: Some(self.id_token_alg.clone()),
            access_token_seconds: seconds(&self.access_token_seconds),
            id_token_seconds: seconds(&self.id_token_seconds),
            refresh_token_seconds: seconds(&self.refresh_token_seconds),
        }
    }
}

struct Check {
    name: &'static str,
    id: String,
    value: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "client_new.html")]
struct NewClientPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    form: ClientFormData,
    name: Field,
    auth_method: Radios,
    scopes: Vec<Check>,
    kinds: Vec<Check>,
    second_factor: Radios,
    subject_type: Radios,
    sector: Field,
    id_token_alg: Radios,
    lifetimes: Vec<Field>,
}

fn new_client_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    form: ClientFormData,
    errors: FormErrors,
) -> NewClientPage<'a> {
    let auth: Vec<(&'static str, String)> =
        AUTH_METHODS.iter().map(|m| (m.as_str(), auth_label(*m).to_owned())).collect();
    let fresh = form.name.is_empty() && form.redirect_uris.is_empty() && errors.is_empty();
    let scopes = Scope::ALL
        .iter()
        .filter(|s| **s != Scope::OpenId)
        .enumerate()
        .map(|(i, s)| Check {
            name: "scopes",
            id: if i == 0 { "scopes".to_owned() } else { format!("scopes-{}", s.as_str()) },
            value: s.as_str(),
            label: scope_label(*s),
            checked: fresh || form.scopes.iter().any(|v| v == s.as_str()),
        })
        .collect();
    let kinds = OrganisationKind::ALL
        .iter()
        .enumerate()
        .map(|(i, k)| Check {
            name: "organisation_kinds",
            id: if i == 0 { "organisation_kinds".to_owned() } else { format!("organisation_kinds-{}", k.as_str()) },
            value: k.as_str(),
            label: k.label(),
            checked: form.organisation_kinds.iter().any(|v| v == k.as_str()),
        })
        .collect();
    let lifetime = |name: &'static str, label: &'static str, value: &str, default: Span, max: Span| {
        Field::new(name, label, value, &errors)
            .hint(format!(
                "In seconds. Leave empty for {} ({}); from {} to {}.",
                default.seconds(),
                default.describe(),
                Lifetimes::MIN.seconds(),
                max.seconds()
            ))
            .width("govuk-input--width-5")
    };
    let lifetimes = vec![
        lifetime(
            "access_token_seconds",
            "How long an access token works",
            &form.access_token_seconds,
            Lifetimes::ACCESS_DEFAULT,
            Lifetimes::ACCESS_MAX,
        ),
        lifetime(
            "id_token_seconds",
            "How long an ID token is valid",
            &form.id_token_seconds,
            Lifetimes::ID_DEFAULT,
            Lifetimes::ID_MAX,
        ),
        lifetime(
            "refresh_token_seconds",
            "How long refresh tokens work after a sign-in",
            &form.refresh_token_seconds,
            Lifetimes::REFRESH_DEFAULT,
            Lifetimes::REFRESH_MAX,
        ),
    ];
    NewClientPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, "Register a service").with_errors(&errors),
        name: Field::new("name", "Service name", &form.name, &errors)
            .hint("People see this name when they sign in to the service, so use the one they know it by."),
        auth_method: Radios::new("auth_method", "How does the service prove it is itself?", &auth, &form.auth_method, &errors)
            .hint("Choose what the service's OpenID Connect library supports. A secret is shown once, when you register."),
        scopes,
        kinds,
        second_factor: Radios::new(
            "second_factor",
            "Must people have used a second factor to sign in to it?",
            &[("yes", "Yes (recommended)".to_owned()), ("no", "No: a password alone is enough".to_owned())],
            &form.second_factor,
            &errors,
        ),
        subject_type: Radios::new(
            "subject_type",
            "Which identifier does the service get for each person?",
            &[
                (SubjectType::Pairwise.as_str(), "One of its own, which no other service can match (recommended)".to_owned()),
                (SubjectType::Public.as_str(), "Their Usher account ID, the same for every such service".to_owned()),
            ],
            &form.subject_type,
            &errors,
        ),
        sector: Field::new("sector", "Shared identifier group (optional)", &form.sector, &errors).hint(
            "A host name, such as court.example.org. Services given the same one see the same identifier for a person. Leave empty for most services.",
        ),
        id_token_alg: Radios::new(
            "id_token_alg",
            "How are its ID tokens signed?",
            &[
                ("ES256", "ES256 (recommended)".to_owned()),
                ("RS256", "RS256, for a library that only knows RSA".to_owned()),
                ("PS256", "PS256 (RSA with PSS)".to_owned()),
            ],
            &form.id_token_alg,
            &errors,
        ),
        lifetimes,
        form,
        errors,
    }
}

pub async fn new_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
) -> Result<Response, PageError> {
    usher_app::authz::Operator::check(who)?;
    html(StatusCode::OK, &new_client_page(&state, &frame, ClientFormData::default(), FormErrors::default()))
}

#[derive(Template)]
#[template(path = "client_secret.html")]
struct SecretPage<'a> {
    layout: Layout<'a>,
    heading: &'static str,
    id: String,
    name: String,
    secret: Option<String>,
    issuer: String,
    discovery: String,
    old_until: Option<String>,
}

/// The page that shows a client's ID and, this once, its secret.
fn secret_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    heading: &'static str,
    c: &OidcClient,
    secret: Option<String>,
    old_until: Option<String>,
) -> SecretPage<'a> {
    let issuer = state.app.issuer();
    SecretPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, heading),
        heading,
        id: c.id.to_string(),
        name: c.name.clone(),
        secret,
        discovery: format!("{issuer}{}", endpoints::DISCOVERY),
        issuer,
        old_until,
    }
}

pub async fn new_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let form = ClientFormData::from_pairs(read_form(form)?);
    match state
        .app
        .register_client(Registrar::Operator(operator), &form.registration(), &frame.context(), frame.now)
        .await
    {
        Ok(made) => {
            let secret = made.secret.as_ref().map(|s| s.expose().to_owned());
            let page = secret_page(&state, &frame, "Service registered", &made.client, secret, None);
            html(StatusCode::CREATED, &page)
        }
        Err(e) if e.code == ErrorCode::InvalidInput => {
            html(StatusCode::BAD_REQUEST, &new_client_page(&state, &frame, form, FormErrors::from_error(&e)))
        }
        Err(e) => Err(e.into()),
    }
}

struct Row {
    key: &'static str,
    values: Vec<String>,
}

impl Row {
    fn one(key: &'static str, value: impl Into<String>) -> Self {
        Self { key, values: vec![value.into()] }
    }

    fn list(key: &'static str, values: &[String]) -> Self {
        Self { key, values: if values.is_empty() { vec!["None".to_owned()] } else { values.to_vec() } }
    }
}

#[derive(Template)]
#[template(path = "client.html")]
struct ClientPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    banner: Option<&'static str>,
    id: String,
    name: String,
    rows: Vec<Row>,
    uses_secret: bool,
    disabled: bool,
    overlap: Field,
    logouts: Option<LogoutSection>,
}

fn client_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    c: &OidcClient,
    banner: Option<&'static str>,
    overlap_days: &str,
    errors: FormErrors,
    logouts: Option<LogoutSection>,
) -> ClientPage<'a> {
    let rows = vec![
        Row::one("Client ID", c.id.to_string()),
        Row::one("Status", c.disabled_at.map_or_else(|| "In use".to_owned(), |t| format!("Disabled on {}", t.human()))),
        Row::one("Proves itself with", auth_label(c.auth_method)),
        Row::list("Redirect URIs", &c.redirect_uris),
        Row::list("After signing out", &c.post_logout_redirect_uris),
        Row::one(
            "Told of sign-outs at",
            c.backchannel_logout_uri.clone().unwrap_or_else(|| "Not told (no back-channel logout URI)".to_owned()),
        ),
        Row::one("May ask for", c.scopes.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")),
        Row::one("Who may use it", admission_text(c)),
        Row::one("Second factor", if c.second_factor_required { "Required" } else { "Not required" }),
        Row::one(
            "Identifier it gets",
            match c.subject_type {
                SubjectType::Pairwise => "Its own for each person",
                SubjectType::Public => "The Usher account ID",
            },
        ),
        Row::one("ID tokens signed with", c.id_token_alg.as_str()),
        Row::list(
            "Token lifetimes",
            &[
                format!("Access token: {}", Span::seconds_(c.access_token_seconds).describe()),
                format!("ID token: {}", Span::seconds_(c.id_token_seconds).describe()),
                format!("Refresh token: {}", Span::seconds_(c.refresh_token_seconds).describe()),
            ],
        ),
        Row::one("Registered", c.created_at.human()),
    ];
    ClientPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, &c.name).with_errors(&errors),
        overlap: overlap_field(overlap_days, &errors),
        errors,
        banner,
        id: c.id.to_string(),
        name: c.name.clone(),
        rows,
        uses_secret: c.auth_method.uses_secret(),
        disabled: c.disabled_at.is_some(),
        logouts,
    }
}

fn overlap_field(value: &str, errors: &FormErrors) -> Field {
    Field::new("overlap_days", "How many days should the old secret keep working?", value, errors)
        .hint(format!(
            "So the service can change over without a gap. 0 stops it at once. Usually {}.",
            SECRET_OVERLAP_DEFAULT.seconds() / 86_400
        ))
        .width("govuk-input--width-3")
}

pub async fn show(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let c = state.app.client(Registrar::Operator(operator), &id).await?;
    let logouts = LogoutSection::of(&state, operator, &c).await?;
    let banner = match done.done.as_deref() {
        Some("disabled") => {
            Some("Service disabled. It can no longer sign anyone in, and what it holds has stopped working.")
        }
        _ => None,
    };
    let days = (SECRET_OVERLAP_DEFAULT.seconds() / 86_400).to_string();
    html(StatusCode::OK, &client_page(&state, &frame, &c, banner, &days, FormErrors::default(), logouts))
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    overlap_days: String,
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    Path(id): Path<String>,
    form: Result<Form<RotateForm>, FormRejection>,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let form = read_form(form)?;
    let c = state.app.client(Registrar::Operator(operator), &id).await?;
    let logouts = LogoutSection::of(&state, operator, &c).await?;
    let refused = |message: String| {
        let errors = FormErrors { list: vec![FieldError { field: "overlap_days", message }] };
        let page = client_page(&state, &frame, &c, None, &form.overlap_days, errors, logouts.clone());
        html(StatusCode::BAD_REQUEST, &page)
    };
    let max_days = SECRET_OVERLAP_MAX.seconds() / 86_400;
    let days = match form.overlap_days.trim().parse::<i64>() {
        Ok(d) if (0..=max_days).contains(&d) => d,
        _ => return refused(format!("Enter a number of days from 0 (the old secret stops at once) to {max_days}.")),
    };
    let overlap = Span::days(days);
    match state.app.rotate_client_secret(Registrar::Operator(operator), &id, overlap, &frame.context(), frame.now).await
    {
        Ok(secret) => {
            let until = Some(frame.now.plus(overlap).human());
            let page = secret_page(&state, &frame, "New secret", &c, Some(secret.expose().to_owned()), until);
            html(StatusCode::OK, &page)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn disable(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    match state.app.disable_client(Registrar::Operator(operator), &id, &frame.context(), frame.now).await {
        Ok(_) => Ok(Redirect::to(&format!("/operator/clients/{id}?done=disabled")).into_response()),
        // Disabled already (a second tab): the page says so.
        Err(e) if e.code == ErrorCode::Conflict => Ok(Redirect::to(&format!("/operator/clients/{id}")).into_response()),
        Err(e) => Err(e.into()),
    }
}
