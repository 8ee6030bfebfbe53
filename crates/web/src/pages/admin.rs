//! An organisation administrator's pages: their people, adding one, correcting a mobile
//! number, resending an activation email.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use usher_app::authz::OrganisationAdmin;
use usher_domain::ErrorCode;
use usher_domain::account::{AccountStatus, MemberStatus, Role};
use usher_domain::phone::MobileNumber;

use super::operator::{NewPersonPage, PersonFormData, person_fields};
use super::{Done, Field, FormErrors, Layout, PersonRow, html, read_form};
use crate::AppState;
use crate::error::PageError;
use crate::frame::Frame;
use crate::groups::{self};

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage<'a> {
    layout: Layout<'a>,
    organisation: String,
    search: String,
    people: Vec<PersonRow>,
    table_caption: &'static str,
}

#[derive(Debug, Deserialize)]
pub struct Search {
    q: Option<String>,
}

async fn organisation_name(state: &AppState, admin: OrganisationAdmin<'_>) -> String {
    state.app.organisation_name(admin).await.unwrap_or_default()
}

pub async fn list(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    Query(search): Query<Search>,
) -> Result<Response, PageError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let search: String = search.q.unwrap_or_default().chars().take(100).collect();
    let people = state
        .app
        .members(admin, &search)
        .await?
        .iter()
        .map(|l| PersonRow::of(l, frame.now, Some(format!("/admin/users/{}", l.user.id))))
        .collect();
    let page = UsersPage {
        layout: Layout::new(&state, Some(&frame), &frame.nonce, "People").crumbs(&[]),
        organisation: organisation_name(&state, admin).await,
        search,
        people,
        table_caption: "Users",
    };
    html(StatusCode::OK, &page)
}

fn add_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    org: String,
    form: &PersonFormData,
    errors: FormErrors,
) -> NewPersonPage<'a> {
    let (full_name, email, mobile) = person_fields(form, &errors);
    NewPersonPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, "Add a user").with_errors(&errors),
        errors,
        back: "/admin/users".to_owned(),
        organisation: org,
        heading: "Add a user",
        button: "Add user",
        full_name,
        email,
        mobile,
    }
}

pub async fn add_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
) -> Result<Response, PageError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let org = organisation_name(&state, admin).await;
    html(StatusCode::OK, &add_page(&state, &frame, org, &PersonFormData::default(), FormErrors::default()))
}

pub async fn add_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    form: Result<Form<PersonFormData>, FormRejection>,
) -> Result<Response, PageError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let form = read_form(form)?;
    match state.app.add_member(admin, &form.person(), &frame.context(), frame.now).await {
        Ok(l) => Ok(Redirect::to(&format!("/admin/users/{}?done=added", l.user.id)).into_response()),
        Err(e) if e.code == ErrorCode::InvalidInput => {
            let org = organisation_name(&state, admin).await;
            html(StatusCode::BAD_REQUEST, &add_page(&state, &frame, org, &form, FormErrors::from_error(&e)))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage<'a> {
    layout: Layout<'a>,
    banner: Option<&'static str>,
    id: String,
    name: String,
    email: String,
    mobile: String,
    role: &'static str,
    status: &'static str,
    tag_class: &'static str,
    last_sign_in: String,
    activation_expires: Option<String>,
    can_resend: bool,
    can_unlock: bool,
    lock_after: i64,
    can_reset_factors: bool,
    /// Deregistered: when it will be deleted unless reregistered.
    deletion_due: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let l = state.app.member(admin, &id, &frame.context(), frame.now).await?;
    let u = &l.user;
    let status = MemberStatus::of(u.status, l.activation_expires_at, frame.now);
    let banner = match done.done.as_deref() {
        Some("added") => Some("User added. We have emailed them a link to activate their account."),
        Some("resent") => Some("Activation email sent. The previous link no longer works."),
        Some("mobile") => Some("Mobile number changed. We have emailed them to say so."),
        Some("unlocked") => Some("Account unlocked. They can sign in again."),
        Some("factors") => Some("Second factors reset. They will set up a new one when they next sign in."),
        Some("reregistered") => Some("Account reregistered. We have emailed them: they can sign in again."),
        _ => None,
    };
    let activation_expires = (u.status == AccountStatus::Invited).then(|| match l.activation_expires_at {
        Some(at) if frame.now <= at => format!("Works until {}", at.human()),
        Some(at) => format!("Expired on {}", at.human()),
        None => "Expired".to_owned(),
    });
    let page = UserPage {
        layout: Layout::new(&state, Some(&frame), &frame.nonce, &u.full_name),
        banner,
        id: u.id.to_string(),
        name: u.full_name.clone(),
        email: u.email.to_string(),
        mobile: u
            .phone
            .clone()
            .map(|p| format!("Ends {}", MobileNumber::from_trusted(p).last_four()))
            .unwrap_or_default(),
        role: if u.role == Role::OrganisationAdministrator { "Organisation administrator" } else { "User" },
        status: status.label(),
        tag_class: status.tag_class(),
        last_sign_in: u.last_sign_in_at.map_or_else(|| "Never".to_owned(), |t| t.human()),
        activation_expires,
        can_resend: u.status == AccountStatus::Invited,
        can_unlock: u.status == AccountStatus::Locked,
        lock_after: state.app.policy.lock_after_wrong_passwords,
        can_reset_factors: matches!(u.status, AccountStatus::Active | AccountStatus::Locked) && u.id != admin.user().id,
        deletion_due: (u.status == AccountStatus::Deregistered).then(|| {
            u.deregistered_at.map(|at| at.plus(state.app.config.lifecycle.delete_after).human()).unwrap_or_default()
        }),
    };
    html(StatusCode::OK, &page)
}

pub async fn resend(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let l = state.app.resend_activation(admin, &id, &frame.context(), frame.now).await?;
    Ok(Redirect::to(&format!("/admin/users/{}?done=resent", l.user.id)).into_response())
}

#[derive(Template)]
#[template(path = "user_mobile.html")]
struct MobilePage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    id: String,
    name: String,
    last_four: String,
    mobile: Field,
}

#[derive(Debug, Default, Deserialize)]
pub struct MobileFormData {
    #[serde(default)]
    mobile: String,
}

pub async fn mobile_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let l = state.app.member(admin, &id, &frame.context(), frame.now).await?;
    html(StatusCode::OK, &mobile_page(&state, &frame, &l.user, "", FormErrors::default()))
}

fn mobile_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    u: &usher_app::User,
    value: &str,
    errors: FormErrors,
) -> MobilePage<'a> {
    MobilePage {
        layout: Layout::new(state, Some(frame), &frame.nonce, "Correct the mobile number").with_errors(&errors),
        id: u.id.to_string(),
        name: u.full_name.clone(),
        last_four: u.phone.clone().map(|p| MobileNumber::from_trusted(p).last_four().to_owned()).unwrap_or_default(),
        mobile: Field::new("mobile", "New mobile phone number", value, &errors)
            .kind("tel", "off")
            .hint("A UK number like 07700 900 982, or an international one starting with +")
            .width("govuk-input--width-20"),
        errors,
    }
}

pub async fn mobile_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    Path(id): Path<String>,
    form: Result<Form<MobileFormData>, FormRejection>,
) -> Result<Response, PageError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let form = read_form(form)?;
    match state.app.correct_mobile(admin, &id, &form.mobile, &frame.context(), frame.now).await {
        Ok(l) => Ok(Redirect::to(&format!("/admin/users/{}?done=mobile", l.user.id)).into_response()),
        Err(e) if e.code == ErrorCode::InvalidInput => {
            let l = state.app.member(admin, &id, &frame.context(), frame.now).await?;
            html(
                StatusCode::BAD_REQUEST,
                &mobile_page(&state, &frame, &l.user, &form.mobile, FormErrors::from_error(&e)),
            )
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn unlock(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let l = state.app.unlock_member(admin, &id, &frame.context(), frame.now).await?;
    Ok(Redirect::to(&format!("/admin/users/{}?done=unlocked", l.user.id)).into_response())
}

pub async fn reset_factors(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let l = state.app.reset_member_factors(admin, &id, &frame.context(), frame.now).await?;
    Ok(Redirect::to(&format!("/admin/users/{}?done=factors", l.user.id)).into_response())
}

pub async fn reregister(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::OrgAdmin(ref who): groups::OrgAdmin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let admin = usher_app::authz::OrganisationAdmin::check(who)?;
    let l = state.app.reregister_member(admin, &id, &frame.context(), frame.now).await?;
    Ok(Redirect::to(&format!("/admin/users/{}?done=reregistered", l.user.id)).into_response())
}
