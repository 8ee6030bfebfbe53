//! The JSON API for organisations, their people and activation: the same use cases as the
//! pages, for API clients. Writes need `Content-Type: application/json` and, with a session
//! cookie, the `X-CSRF-Token` header.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use usher_app::activation::ActivationView;
use usher_app::members::NewPerson;
use usher_app::organisations::OrganisationForm;
use usher_app::{Organisation, Terms, UserListing};
use usher_domain::Timestamp;
use usher_domain::account::MemberStatus;
use usher_domain::phone::MobileNumber;
use usher_domain::secret::SecretString;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::frame::Frame;
use crate::groups::{self};

/// An organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationOut {
    pub id: String,
    pub name: String,
    /// law_firm, chambers, police, prosecutor, court or other.
    pub kind: String,
    /// The domains its people's email addresses must have; empty means any.
    pub email_domains: Vec<String>,
    pub min_password_length: Option<i64>,
    /// The organisation's own choice; absent: the deployment's default applies.
    pub second_factor_required: Option<bool>,
    pub email_codes_allowed: Option<bool>,
    pub created_at: String,
}

impl From<&Organisation> for OrganisationOut {
    fn from(o: &Organisation) -> Self {
        Self {
            id: o.id.to_string(),
            name: o.name.clone(),
            kind: o.kind.as_str().to_owned(),
            email_domains: o.email_domains.list().to_vec(),
            min_password_length: o.min_password_length,
            second_factor_required: o.mfa_required,
            email_codes_allowed: o.email_codes_allowed,
            created_at: o.created_at.rfc3339(),
        }
    }
}

/// A new organisation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationIn {
    pub name: String,
    /// law_firm, chambers, police, prosecutor, court or other.
    pub kind: String,
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// A longer minimum password length than the deployment's, if the organisation wants one.
    #[serde(default)]
    pub min_password_length: Option<i64>,
    /// Whether a second factor is required: `required`, `optional`, or absent for the
    /// deployment's default.
    #[serde(default)]
    pub second_factor: Option<String>,
    /// Whether emailed codes may be a second factor: `allowed`, `not_allowed`, or absent for the
    /// deployment's default.
    #[serde(default)]
    pub email_codes: Option<String>,
}

/// A person as their administrator (or the operator) sees them. Never a secret; only the last
/// 4 digits of the mobile number.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOut {
    pub id: String,
    pub full_name: String,
    pub email: String,
    pub mobile_last_four: String,
    /// organisation_administrator or user.
    pub role: String,
    /// invited, activation_expired, active, locked or deregistered.
    pub status: String,
    pub last_sign_in_at: Option<String>,
    pub activation_expires_at: Option<String>,
}

pub(crate) fn member(l: &UserListing, now: Timestamp) -> MemberOut {
    let u = &l.user;
    MemberOut {
        id: u.id.to_string(),
        full_name: u.full_name.clone(),
        email: u.email.to_string(),
        mobile_last_four: u
            .phone
            .clone()
            .map(|p| MobileNumber::from_trusted(p).last_four().to_owned())
            .unwrap_or_default(),
        role: u.role.as_str().to_owned(),
        status: MemberStatus::of(u.status, l.activation_expires_at, now).as_str().to_owned(),
        last_sign_in_at: u.last_sign_in_at.map(Timestamp::rfc3339),
        activation_expires_at: l.activation_expires_at.map(Timestamp::rfc3339),
    }
}

/// Someone to add: they are emailed an activation link, valid for as long as the policy says (28 days by default).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonIn {
    pub full_name: String,
    pub email: String,
    /// A UK mobile (07700 900982) or an international one (+33 6 12 34 56 78).
    pub mobile: String,
}

impl PersonIn {
    fn person(self) -> NewPerson {
        NewPerson { full_name: self.full_name, email: self.email, mobile: self.mobile }
    }
}

/// An organisation and its administrators.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationDetail {
    pub organisation: OrganisationOut,
    pub administrators: Vec<MemberOut>,
}

#[utoipa::path(get, path = "/api/v1/organisations", tag = "organisations",
    responses((status = 200, body = [OrganisationOut]), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`forbidden`: only the operator may do this.", body = Problem)))]
pub async fn organisations(
    State(state): State<AppState>,
    groups::Operator(ref who): groups::Operator,
) -> Result<Json<Vec<OrganisationOut>>, ApiError> {
    let operator = usher_app::authz::Operator::check(who)?;
    Ok(Json(state.app.organisations(operator).await?.iter().map(OrganisationOut::from).collect()))
}

#[utoipa::path(post, path = "/api/v1/organisations", tag = "organisations", request_body = OrganisationIn,
    responses((status = 201, body = OrganisationOut), (status = 400, description = "`invalid_input`, with a message for each field", body = Problem), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`forbidden`: only the operator may do this.", body = Problem)))]
pub async fn register_organisation(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    ApiJson(b): ApiJson<OrganisationIn>,
) -> Result<(StatusCode, Json<OrganisationOut>), ApiError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let form = OrganisationForm {
        name: b.name,
        kind: b.kind,
        email_domains: b.email_domains.join(","),
        min_password_length: b.min_password_length.map(|n| n.to_string()).unwrap_or_default(),
        second_factor: b.second_factor.unwrap_or_default(),
        email_codes: b.email_codes.unwrap_or_default(),
    };
    let o = state.app.register_organisation(operator, &form, &frame.context(), frame.now).await?;
    Ok((StatusCode::CREATED, Json(OrganisationOut::from(&o))))
}

#[utoipa::path(get, path = "/api/v1/organisations/{id}", tag = "organisations",
    responses((status = 200, body = OrganisationDetail), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`forbidden`: only the operator may do this.", body = Problem), (status = 404, description = "`not_found`: no such organisation", body = Problem)))]
pub async fn organisation(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<OrganisationDetail>, ApiError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let view = state.app.organisation_view(operator, &id).await?;
    Ok(Json(OrganisationDetail {
        organisation: OrganisationOut::from(&view.organisation),
        administrators: view.administrators.iter().map(|l| member(l, frame.now)).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/organisations/{id}/administrators", tag = "organisations", request_body = PersonIn,
    responses((status = 201, body = MemberOut), (status = 400, description = "`invalid_input`, with a message for each field", body = Problem), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`forbidden`: only the operator may do this.", body = Problem), (status = 404, description = "`not_found`: no such organisation", body = Problem)))]
pub async fn invite_administrator(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<PersonIn>,
) -> Result<(StatusCode, Json<MemberOut>), ApiError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let person = b.person();
    let l = state.app.invite_administrator(operator, &id, &person, &frame.context(), frame.now).await?;
    Ok((StatusCode::CREATED, Json(member(&l, frame.now))))
}

/// The terms and conditions in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct TermsOut {
    pub version: i64,
    pub body: String,
    pub published_at: String,
}

impl From<&Terms> for TermsOut {
    fn from(t: &Terms) -> Self {
        Self { version: t.version, body: t.body.clone(), published_at: t.published_at.rfc3339() }
    }
}

/// New terms: plain paragraphs separated by a blank line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TermsIn {
    pub body: String,
}

#[utoipa::path(get, path = "/api/v1/terms", tag = "organisations", responses((status = 200, body = TermsOut)))]
pub async fn terms(State(state): State<AppState>) -> Result<Json<TermsOut>, ApiError> {
    Ok(Json(TermsOut::from(&state.app.current_terms().await?)))
}

#[utoipa::path(post, path = "/api/v1/terms", tag = "organisations", request_body = TermsIn,
    responses((status = 201, body = TermsOut), (status = 400, body = Problem), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`forbidden`: only the operator may do this.", body = Problem), (status = 409, description = "`conflict`: these are the terms already in force", body = Problem)))]
pub async fn publish_terms(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    ApiJson(b): ApiJson<TermsIn>,
) -> Result<(StatusCode, Json<TermsOut>), ApiError> {
    let operator = usher_app::authz::Operator::check(who)?;
    state.app.publish_terms(operator, &b.body, &frame.context(), frame.now).await?;
    Ok((StatusCode::CREATED, Json(TermsOut::from(&state.app.current_terms().await?))))
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(("q" = Option<String>, Query, description = "Part of a name or email address")),
    responses((status = 200, body = [MemberOut]), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`forbidden`: only an organisation administrator may do this.", body = Problem)))]
pub async fn users(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<Vec<MemberOut>>, ApiError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let people = state.app.members(admin, q.q.as_deref().unwrap_or("")).await?;
    Ok(Json(people.iter().map(|l| member(l, frame.now)).collect()))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = PersonIn,
    responses((status = 201, body = MemberOut), (status = 400, description = "`invalid_input`, with a message for each field", body = Problem), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`forbidden`: only an organisation administrator may do this.", body = Problem)))]
pub async fn add_user(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    ApiJson(b): ApiJson<PersonIn>,
) -> Result<(StatusCode, Json<MemberOut>), ApiError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let person = b.person();
    let l = state.app.add_member(admin, &person, &frame.context(), frame.now).await?;
    Ok((StatusCode::CREATED, Json(member(&l, frame.now))))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    responses((status = 200, body = MemberOut), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`forbidden`: only an organisation administrator may do this.", body = Problem), (status = 404, description = "`not_found`: no such person in your organisation", body = Problem)))]
pub async fn user(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MemberOut>, ApiError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let l = state.app.member(admin, &id, &frame.context(), frame.now).await?;
    Ok(Json(member(&l, frame.now)))
}

/// A corrected mobile number.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MobileIn {
    pub mobile: String,
}

#[utoipa::path(post, path = "/api/v1/users/{id}/mobile", tag = "users", request_body = MobileIn,
    responses((status = 200, body = MemberOut), (status = 400, body = Problem), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`forbidden`: only an organisation administrator may do this, and not to themselves.", body = Problem), (status = 404, description = "`not_found`: no such person in your organisation", body = Problem)))]
pub async fn correct_mobile(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<MobileIn>,
) -> Result<Json<MemberOut>, ApiError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let l = state.app.correct_mobile(admin, &id, &b.mobile, &frame.context(), frame.now).await?;
    Ok(Json(member(&l, frame.now)))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/activation-email", tag = "users",
    responses((status = 200, description = "A new link was emailed; the old one is dead", body = MemberOut), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = "`forbidden`: only an organisation administrator may do this.", body = Problem), (status = 404, description = "`not_found`: no such person in your organisation", body = Problem), (status = 409, description = "`conflict`: already activated", body = Problem)))]
pub async fn resend_activation(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MemberOut>, ApiError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let l = state.app.resend_activation(admin, &id, &frame.context(), frame.now).await?;
    Ok(Json(member(&l, frame.now)))
}

/// Where an activation stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivationOut {
    /// terms, confirm_mobile, enter_code or password.
    pub step: String,
    pub full_name: String,
    pub email: String,
    pub organisation: String,
    /// Who to ask for help (a new link, a corrected number).
    pub administrator: String,
    pub mobile_last_four: String,
    pub link_expires_at: String,
    pub terms: TermsOut,
    pub password_rules: Vec<String>,
}

fn activation_out(v: &ActivationView) -> ActivationOut {
    ActivationOut {
        step: serde_json::to_value(v.step).ok().and_then(|s| s.as_str().map(str::to_owned)).unwrap_or_default(),
        full_name: v.user.full_name.clone(),
        email: v.user.email.to_string(),
        organisation: v.organisation.clone(),
        administrator: v.administrator.clone(),
        mobile_last_four: v.mobile_last_four.clone(),
        link_expires_at: v.expires_at.rfc3339(),
        terms: TermsOut::from(&v.terms),
        password_rules: v.password_rules.clone(),
    }
}

#[utoipa::path(get, path = "/api/v1/activations/{token}", tag = "activation",
    responses((status = 200, body = ActivationOut), (status = 404, description = "`not_found`: not a link we sent", body = Problem), (status = 410, description = "`link_expired` or `link_used`: the link has expired, been used or been replaced by a newer one", body = Problem)))]
pub async fn activation(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    ApiPath(token): ApiPath<String>,
) -> Result<Json<ActivationOut>, ApiError> {
    Ok(Json(activation_out(&state.app.open_activation(&token, frame.now).await?)))
}

/// Agreement to one version of the terms.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreeIn {
    pub agree: bool,
    pub version: i64,
}

#[utoipa::path(post, path = "/api/v1/activations/{token}/terms", tag = "activation", request_body = AgreeIn,
    responses((status = 200, body = ActivationOut), (status = 400, body = Problem), (status = 404, description = "`not_found`: not a link we sent", body = Problem), (status = 410, description = "`link_expired` or `link_used`: the link has expired, been used or been replaced by a newer one", body = Problem)))]
pub async fn activation_terms(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    ApiPath(token): ApiPath<String>,
    ApiJson(b): ApiJson<AgreeIn>,
) -> Result<Json<ActivationOut>, ApiError> {
    let v = state.app.accept_terms(&token, b.agree, b.version, &frame.context(), frame.now).await?;
    Ok(Json(activation_out(&v)))
}

#[utoipa::path(post, path = "/api/v1/activations/{token}/code-requests", tag = "activation",
    responses((status = 200, description = "A code was texted to the registered mobile", body = ActivationOut), (status = 400, description = "`invalid_input`: texts cannot be sent to the registered number", body = Problem), (status = 404, description = "`not_found`: not a link we sent", body = Problem), (status = 409, description = "`conflict`: not at this step", body = Problem), (status = 410, description = "`link_expired` or `link_used`: the link has expired, been used or been replaced by a newer one", body = Problem), (status = 429, description = "`rate_limited`: a code was sent moments ago, or too many have been sent", body = Problem)))]
pub async fn activation_send_code(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    ApiPath(token): ApiPath<String>,
) -> Result<Json<ActivationOut>, ApiError> {
    let v = state.app.send_activation_code(&token, &frame.context(), frame.now).await?;
    Ok(Json(activation_out(&v)))
}

/// The code from the text message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeIn {
    pub code: String,
}

#[utoipa::path(post, path = "/api/v1/activations/{token}/code", tag = "activation", request_body = CodeIn,
    responses((status = 200, body = ActivationOut), (status = 400, description = "Wrong, expired or replaced code", body = Problem), (status = 404, description = "`not_found`: not a link we sent", body = Problem), (status = 409, description = "`conflict`: not at this step", body = Problem), (status = 410, description = "`link_expired` or `link_used`: the link has expired, been used or been replaced by a newer one", body = Problem)))]
pub async fn activation_code(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    ApiPath(token): ApiPath<String>,
    ApiJson(b): ApiJson<CodeIn>,
) -> Result<Json<ActivationOut>, ApiError> {
    let v = state.app.verify_activation_code(&token, &b.code, &frame.context(), frame.now).await?;
    Ok(Json(activation_out(&v)))
}

/// The new password, typed twice.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordIn {
    #[schema(value_type = String)]
    pub password: SecretString,
    #[schema(value_type = String)]
    pub confirm_password: SecretString,
}

/// The activated account.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivatedOut {
    pub email: String,
    /// Where to sign in.
    pub sign_in_url: String,
}

#[utoipa::path(post, path = "/api/v1/activations/{token}/password", tag = "activation", request_body = PasswordIn,
    responses((status = 200, body = ActivatedOut), (status = 400, description = "Each password rule broken, with its message", body = Problem), (status = 404, description = "`not_found`: not a link we sent", body = Problem), (status = 409, description = "`conflict`: the mobile number is still to be confirmed", body = Problem), (status = 410, description = "`link_expired` or `link_used`: the link has expired, been used or been replaced by a newer one", body = Problem)))]
pub async fn activation_password(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    ApiPath(token): ApiPath<String>,
    ApiJson(b): ApiJson<PasswordIn>,
) -> Result<Json<ActivatedOut>, ApiError> {
    let user =
        state.app.complete_activation(&token, &b.password, &b.confirm_password, &frame.context(), frame.now).await?;
    Ok(Json(ActivatedOut {
        email: user.email.to_string(),
        sign_in_url: format!("{}/sign-in", state.app.config.base_url()),
    }))
}
