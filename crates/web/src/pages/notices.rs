//! System notifications (the public page, the banner and its dismissal, the operator's pages)
//! and the page on recognising phishing emails.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use usher_app::notifications::{NotificationForm, NotificationView};
use usher_domain::ErrorCode;
use usher_domain::notification::{Importance, Part};
use usher_domain::organisation::OrganisationKind;

use super::date_input::{DateProblem, DateTimeAnswer, DateTimeField, DateTimeInput};
use super::{Done, Field, FormErrors, Layout, html, read_form};
use crate::AppState;
use crate::error::PageError;
use crate::frame::Frame;
use crate::groups::{self};
use crate::session::{cookie_value, set_cookie};

/// The cookie listing the notifications this browser has dismissed.
pub const DISMISSED_COOKIE: &str = "__Host-usher-dismissed";

/// A notification ready for a template.
pub struct Notice {
    pub id: String,
    pub title: String,
    pub paragraphs: Vec<Vec<Part>>,
    pub importance: &'static str,
    pub tag_class: &'static str,
    pub from: String,
    pub until: String,
    pub audience: String,
    pub status: &'static str,
    pub email: &'static str,
}

impl Notice {
    fn of(v: &NotificationView) -> Self {
        Self {
            id: v.id.clone(),
            title: v.title.clone(),
            paragraphs: v.paragraphs.clone(),
            importance: v.importance.label(),
            tag_class: match v.importance {
                Importance::Information => "govuk-tag--blue",
                Importance::Warning => "govuk-tag--yellow",
                Importance::Urgent => "govuk-tag--red",
            },
            from: v.publish_from.human(),
            until: v.publish_until.map_or_else(|| "Until ended".to_owned(), |u| u.human()),
            audience: v.audience.describe(),
            status: if v.published { "Published" } else { "Not showing" },
            email: match (v.email, v.emailed_done) {
                (false, _) => "Not emailed",
                (true, false) => "Being emailed",
                (true, true) => "Emailed",
            },
        }
    }
}

/// The IDs this browser has dismissed.
pub fn dismissed(headers: &HeaderMap) -> Vec<String> {
    cookie_value(headers, DISMISSED_COOKIE)
        .map(|v| {
            v.split('.')
                .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The banner for the sign-in and home pages.
pub async fn banner(state: &AppState, frame: &Frame, headers: &HeaderMap) -> Result<Option<Notice>, PageError> {
    let viewer = frame.user.as_ref().map(|u| &u.user);
    Ok(state.app.banner_for(viewer, &dismissed(headers), frame.now).await?.as_ref().map(Notice::of))
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage<'a> {
    layout: Layout<'a>,
    notices: Vec<Notice>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    let viewer = frame.user.as_ref().map(|u| &u.user);
    let notices = state.app.notifications_for(viewer, frame.now).await?.iter().map(Notice::of).collect();
    html(
        StatusCode::OK,
        &NotificationsPage { layout: Layout::new(&state, Some(&frame), &frame.nonce, "System notifications"), notices },
    )
}

#[derive(Debug, Deserialize)]
pub struct DismissData {
    #[serde(default)]
    back: String,
}

/// Hides a banner in this browser (until the cookie goes); the notification stays on the
/// notifications page.
pub async fn dismiss(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<DismissData>, FormRejection>,
) -> Result<Response, PageError> {
    let form = read_form(form)?;
    let back = if form.back == "/home" { "/home" } else { "/sign-in" };
    let mut ids = dismissed(&headers);
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !ids.contains(&id) {
        ids.push(id);
    }
    let keep = ids.len().saturating_sub(20);
    let value = ids[keep..].join(".");
    let mut response = Redirect::to(back).into_response();
    set_cookie(response.headers_mut(), DISMISSED_COOKIE, &value, "Lax", Some(90 * 86_400), state.secure_cookies);
    Ok(response)
}

#[derive(Template)]
#[template(path = "phishing.html")]
struct PhishingPage<'a> {
    layout: Layout<'a>,
}

pub async fn phishing(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
) -> Result<Response, PageError> {
    html(
        StatusCode::OK,
        &PhishingPage { layout: Layout::new(&state, Some(&frame), &frame.nonce, "Recognising phishing emails") },
    )
}

#[derive(Template)]
#[template(path = "operator_notifications.html")]
struct OperatorNotificationsPage<'a> {
    layout: Layout<'a>,
    banner: Option<&'static str>,
    notices: Vec<Notice>,
}

pub async fn operator_list(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    axum::extract::Query(done): axum::extract::Query<Done>,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let notices = state.app.all_notifications(operator, frame.now).await?.iter().map(Notice::of).collect();
    let banner = match done.done.as_deref() {
        Some("published") => Some("Notification saved. It shows from its start time to its end."),
        Some("ended") => Some("Notification ended: it no longer shows, and any emailing has stopped."),
        _ => None,
    };
    html(
        StatusCode::OK,
        &OperatorNotificationsPage {
            layout: Layout::new(&state, Some(&frame), &frame.nonce, "System notifications").crumbs(&[]),
            banner,
            notices,
        },
    )
}

struct Choice {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "notification_new.html")]
struct NewNotificationPage<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    title: Field,
    body: String,
    importance: super::Radios,
    publish_from: DateTimeInput,
    publish_until: DateTimeInput,
    kinds: Vec<Choice>,
    email: bool,
    base_url: &'a str,
}

/// When a notification shows: from (empty for now) and until (empty until it is ended).
const SHOW_FROM: DateTimeField = DateTimeField {
    name: "publish_from",
    ids: ["publish_from", "publish_from-month", "publish_from-year", "publish_from-time"],
    legend: "Show from (optional)",
    label: "Show from",
};
const SHOW_UNTIL: DateTimeField = DateTimeField {
    name: "publish_until",
    ids: ["publish_until", "publish_until-month", "publish_until-year", "publish_until-time"],
    legend: "Show until (optional)",
    label: "Show until",
};

/// The two dates as typed, with what is wrong with each.
#[derive(Debug, Default)]
struct Dates {
    from: (DateTimeAnswer, Option<DateProblem>),
    until: (DateTimeAnswer, Option<DateProblem>),
}

fn new_page<'a>(
    state: &'a AppState,
    frame: &'a Frame,
    form: &NotificationForm,
    dates: &Dates,
    errors: FormErrors,
) -> NewNotificationPage<'a> {
    NewNotificationPage {
        layout: Layout::new(state, Some(frame), &frame.nonce, "Write a system notification").with_errors(&errors),
        title: Field::new("title", "Title", &form.title, &errors).width("govuk-!-width-two-thirds"),
        body: form.body.clone(),
        importance: super::Radios::new(
            "importance",
            "How important is it?",
            &Importance::ALL.map(|i| (i.as_str(), i.label().to_owned())),
            &form.importance,
            &errors,
        )
        .hint("Warnings and urgent notifications also show as a banner on the sign-in and home pages."),
        publish_from: SHOW_FROM.view(&dates.from.0, dates.from.1.as_ref(), &errors),
        publish_until: SHOW_UNTIL.view(&dates.until.0, dates.until.1.as_ref(), &errors),
        kinds: OrganisationKind::ALL
            .iter()
            .map(|k| Choice {
                value: k.as_str(),
                label: k.label(),
                checked: form.audience.iter().any(|a| a == k.as_str()),
            })
            .collect(),
        email: form.email,
        base_url: state.app.config.base_url(),
        errors,
    }
}

pub async fn new_form(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
) -> Result<Response, PageError> {
    usher_app::authz::Operator::check(who)?;
    let form = NotificationForm { importance: "information".into(), ..NotificationForm::default() };
    html(StatusCode::OK, &new_page(&state, &frame, &form, &Dates::default(), FormErrors::default()))
}

pub async fn new_submit(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    // Read by hand: `audience` comes once per ticked box.
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let first = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let read = |field: &DateTimeField| {
        let answer = field.answer(&pairs);
        let parsed = field.parse(&answer);
        // A date that cannot be read is passed on as such, so the use case refuses the form
        // (and reports any other field) without publishing; its message is replaced below.
        let text = parsed.clone().unwrap_or_else(|_| "unreadable".to_owned());
        (text, (answer, parsed.err()))
    };
    let (publish_from, from) = read(&SHOW_FROM);
    let (publish_until, until) = read(&SHOW_UNTIL);
    let dates = Dates { from, until };
    let form = NotificationForm {
        title: first("title"),
        body: first("body"),
        importance: first("importance"),
        publish_from,
        publish_until,
        audience: pairs.iter().filter(|(k, _)| k == "audience").map(|(_, v)| v.clone()).collect(),
        email: first("email") == "yes",
    };
    match state.app.publish_notification(operator, &form, &frame.context(), frame.now).await {
        Ok(_) => Ok(Redirect::to("/operator/notifications?done=published").into_response()),
        Err(e) if e.code == ErrorCode::InvalidInput => {
            let mut errors = FormErrors::from_error(&e);
            for (field, problem) in [(&SHOW_FROM, &dates.from.1), (&SHOW_UNTIL, &dates.until.1)] {
                if let Some(problem) = problem {
                    match errors.list.iter().position(|f| f.field == field.name) {
                        Some(i) => errors.list[i] = problem.field_error(field),
                        None => errors.list.push(problem.field_error(field)),
                    }
                }
            }
            html(StatusCode::BAD_REQUEST, &new_page(&state, &frame, &form, &dates, errors))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn end(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let operator = usher_app::authz::Operator::check(who)?;
    state.app.end_notification(operator, &id, &frame.context(), frame.now).await?;
    Ok(Redirect::to("/operator/notifications?done=ended").into_response())
}
