//! The audit trail for people: the operator sees every event, an organisation administrator
//! only their organisation's. Filter by organisation, person, action and days; export the
//! filtered events as CSV or JSON lines.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use usher_app::StoredAuditEvent;
use usher_app::audit::{AuditQuery, AuditScope};
use usher_app::authz::{Operator, OrganisationAdmin};
use usher_domain::{Error, ErrorCode};

use super::audit_words::{ACTIONS, FAMILIES, action_words, outcome_words};
use super::{FormErrors, Layout, html};
use crate::AppState;
use crate::error::PageError;
use crate::frame::Frame;
use crate::groups;
use usher_app::sessions::Authenticated;

/// Events on one page.
const PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct AuditParams {
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    before: Option<i64>,
    format: Option<String>,
}

impl AuditParams {
    fn query(&self) -> AuditQuery {
        AuditQuery {
            organisation: self.organisation.clone(),
            user: self.user.clone(),
            action: self.action.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
        }
    }

    /// The filter as a query string, for the next page and the export links.
    fn encoded(&self) -> String {
        let enc = |v: &str| percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string();
        format!(
            "organisation={}&user={}&action={}&from={}&to={}",
            enc(&self.organisation),
            enc(&self.user),
            enc(&self.action),
            enc(&self.from),
            enc(&self.to)
        )
    }
}

struct Row {
    at: String,
    /// What happened in words, and the raw action under it.
    words: String,
    code: String,
    outcome: &'static str,
    outcome_tag: &'static str,
    actor: String,
    subject: String,
    organisation: String,
    ip: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPageView<'a> {
    layout: Layout<'a>,
    errors: FormErrors,
    base: &'static str,
    is_operator: bool,
    /// The organisations the operator may filter by: (ID, name, chosen).
    organisations: Vec<(String, String, bool)>,
    /// The kinds of event and single events the filter offers: (action, words, chosen).
    families: Vec<(&'static str, &'static str, bool)>,
    actions: Vec<(&'static str, &'static str, bool)>,
    /// The chosen action when it is neither a kind nor a single event listed (an old link).
    other_action: Option<String>,
    user: String,
    from: String,
    to: String,
    rows: Vec<Row>,
    older: Option<String>,
    export: String,
}

/// Which trail a route serves: `/operator/audit` only to operators, `/admin/audit` only to
/// organisation administrators (their own organisation's).
#[derive(Debug, Clone, Copy)]
enum Area {
    Operator,
    Administrator,
}

fn scope(who: &Authenticated, area: Area) -> Result<(AuditScope<'_>, &'static str), PageError> {
    Ok(match area {
        Area::Operator => (AuditScope::Everything(Operator::check(who)?), "/operator/audit"),
        Area::Administrator => (AuditScope::Organisation(OrganisationAdmin::check(who)?), "/admin/audit"),
    })
}

pub async fn operator_view(
    state: State<AppState>,
    frame: Extension<Arc<Frame>>,
    groups::Operator(who): groups::Operator,
    params: Query<AuditParams>,
) -> Result<Response, PageError> {
    view(state, frame, params, &who, Area::Operator).await
}

pub async fn admin_view(
    state: State<AppState>,
    frame: Extension<Arc<Frame>>,
    groups::OrgAdmin(who): groups::OrgAdmin,
    params: Query<AuditParams>,
) -> Result<Response, PageError> {
    view(state, frame, params, &who, Area::Administrator).await
}

pub async fn operator_export(
    state: State<AppState>,
    frame: Extension<Arc<Frame>>,
    groups::Operator(who): groups::Operator,
    headers: axum::http::HeaderMap,
    params: Query<AuditParams>,
) -> Result<Response, PageError> {
    export(state, frame, headers, params, &who, Area::Operator).await
}

pub async fn admin_export(
    state: State<AppState>,
    frame: Extension<Arc<Frame>>,
    groups::OrgAdmin(who): groups::OrgAdmin,
    headers: axum::http::HeaderMap,
    params: Query<AuditParams>,
) -> Result<Response, PageError> {
    export(state, frame, headers, params, &who, Area::Administrator).await
}

fn name(names: &std::collections::HashMap<String, String>, id: Option<&str>) -> String {
    match id {
        None => String::new(),
        Some(id) => {
            names.get(id).map_or_else(|| id.to_owned(), |n| format!("{n} ({})", id.chars().take(8).collect::<String>()))
        }
    }
}

async fn view(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    Query(p): Query<AuditParams>,
    who: &Authenticated,
    area: Area,
) -> Result<Response, PageError> {
    let (scope, base) = scope(who, area)?;
    let (rows, older, errors) = match state.app.audit_page(scope, &p.query(), p.before, PAGE).await {
        Ok(page) => {
            let rows = page
                .events
                .iter()
                .map(|e| Row {
                    at: e.at.human(),
                    words: action_words(
                        &e.event.action,
                        &e.event.outcome,
                        e.event.detail.as_deref().unwrap_or_default(),
                    ),
                    code: e.event.action.clone(),
                    outcome: outcome_words(&e.event.outcome).0,
                    outcome_tag: outcome_words(&e.event.outcome).1,
                    actor: name(&page.names, e.event.actor_id.as_deref()),
                    subject: name(&page.names, e.event.subject_id.as_deref()),
                    organisation: e
                        .event
                        .organisation_id
                        .as_deref()
                        .map(|o| page.names.get(o).cloned().unwrap_or_else(|| o.to_owned()))
                        .unwrap_or_default(),
                    ip: e.event.ip.clone().unwrap_or_default(),
                    detail: e.event.detail.clone().unwrap_or_default(),
                })
                .collect();
            (rows, page.older.map(|seq| format!("{base}?{}&before={seq}", p.encoded())), FormErrors::default())
        }
        Err(e) if e.code == ErrorCode::InvalidInput => (Vec::new(), None, FormErrors::from_error(&e)),
        Err(e) => return Err(e.into()),
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let organisations = match scope {
        AuditScope::Everything(operator) => state
            .app
            .organisations(operator)
            .await?
            .into_iter()
            .map(|o| {
                let id = o.id.to_string();
                let chosen = id == p.organisation.trim();
                (id, o.name, chosen)
            })
            .collect(),
        AuditScope::Organisation(_) => Vec::new(),
    };
    let chosen = p.action.trim();
    let listed =
        |list: &[(&'static str, &'static str)]| list.iter().map(|(a, w)| (*a, *w, *a == chosen)).collect::<Vec<_>>();
    let (families, actions) = (listed(FAMILIES), listed(ACTIONS));
    let other_action =
        (!chosen.is_empty() && !families.iter().chain(&actions).any(|(_, _, c)| *c)).then(|| chosen.to_owned());
    let page = AuditPageView {
        layout: Layout::new(&state, Some(&frame), &frame.nonce, "Audit trail").crumbs(&[]).with_errors(&errors),
        errors,
        base,
        is_operator: matches!(scope, AuditScope::Everything(_)),
        organisations,
        families,
        actions,
        other_action,
        user: p.user.clone(),
        from: p.from.clone(),
        to: p.to.clone(),
        rows,
        older,
        export: format!("{base}/export?{}", p.encoded()),
    };
    html(status, &page)
}

/// The same filter's events as CSV (`format=csv`) or JSON lines (`format=jsonl`).
async fn export(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    headers: axum::http::HeaderMap,
    Query(p): Query<AuditParams>,
    who: &Authenticated,
    area: Area,
) -> Result<Response, PageError> {
    let (scope, _) = scope(who, area)?;
    // An export is recorded in the trail (the one GET that changes state, by design: see the
    // README), so another site may not start one.
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site")
    {
        return Err(PageError(Error::new(ErrorCode::CsrfRejected, "Start the download from the audit trail page.")));
    }
    let format = match p.format.as_deref() {
        Some("csv") => "csv",
        Some("jsonl") => "jsonl",
        _ => return Err(PageError(Error::field("format", "Choose CSV or JSON lines"))),
    };
    let events = state.app.audit_export(scope, &p.query(), format, &frame.context(), frame.now).await?;
    let (body, content_type) = if format == "csv" {
        (to_csv(&events)?, "text/csv; charset=utf-8")
    } else {
        (to_jsonl(&events)?, "application/x-ndjson")
    };
    let filename = format!(
        "usher-audit-{}.{}",
        frame.now.rfc3339().get(..10).unwrap_or("export"),
        if format == "csv" { "csv" } else { "jsonl" }
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response())
}

const COLUMNS: [&str; 12] = [
    "seq",
    "at",
    "actor_id",
    "subject_id",
    "organisation_id",
    "action",
    "outcome",
    "ip",
    "user_agent",
    "request_id",
    "detail",
    "hash",
];

fn values(e: &StoredAuditEvent) -> [String; 12] {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let ev = &e.event;
    [
        e.seq.to_string(),
        e.at.rfc3339(),
        o(&ev.actor_id),
        o(&ev.subject_id),
        o(&ev.organisation_id),
        ev.action.clone(),
        ev.outcome.clone(),
        o(&ev.ip),
        o(&ev.user_agent),
        o(&ev.request_id),
        o(&ev.detail),
        e.hash.clone(),
    ]
}

/// CSV with every cell that a spreadsheet would read as a formula made inert.
fn to_csv(events: &[StoredAuditEvent]) -> Result<String, PageError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| PageError(Error::internal(e));
    w.write_record(COLUMNS).map_err(fail)?;
    for e in events {
        let row = values(e).map(|v| if v.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{v}") } else { v });
        w.write_record(&row).map_err(fail)?;
    }
    let bytes = w.into_inner().map_err(|e| PageError(Error::internal(e)))?;
    String::from_utf8(bytes).map_err(|e| PageError(Error::internal(e)))
}

fn to_jsonl(events: &[StoredAuditEvent]) -> Result<String, PageError> {
    let mut out = String::new();
    for e in events {
        let map: serde_json::Map<String, serde_json::Value> =
            COLUMNS.iter().zip(values(e)).map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v))).collect();
        out.push_str(&serde_json::to_string(&map).map_err(|e| PageError(Error::internal(e)))?);
        out.push('\n');
    }
    Ok(out)
}
