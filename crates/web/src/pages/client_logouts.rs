//! The part of a service's page that shows how telling it of sign-outs goes: how many logout
//! tokens wait, are being retried, were given up or delivered, and the newest not delivered.

use usher_app::authz::Operator;
use usher_app::oidc::clients::{LogoutDelivery, OidcClient, Registrar};

use crate::AppState;
use crate::api::clients::delivery_status;
use crate::error::PageError;

/// The newest undelivered logout tokens a service's page lists.
const SHOWN: i64 = 20;

/// What the page shows; None for a service with no logout address and nothing sent.
#[derive(Debug, Clone)]
pub(crate) struct LogoutSection {
    pub pending: i64,
    pub retrying: i64,
    pub given_up: i64,
    pub delivered: i64,
    pub rows: Vec<LogoutRow>,
}

#[derive(Debug, Clone)]
pub(crate) struct LogoutRow {
    pub ended: String,
    pub status: &'static str,
    /// The tag's colour class.
    pub tag: &'static str,
    pub attempts: i64,
    pub next: String,
    pub error: String,
}

fn row(d: &LogoutDelivery) -> LogoutRow {
    let (status, tag, next) = match delivery_status(d) {
        "pending" => ("Waiting", "govuk-tag--grey", d.next_attempt_at.human()),
        "retrying" => ("Trying again", "govuk-tag--yellow", d.next_attempt_at.human()),
        _ => ("Given up", "govuk-tag--red", "Not tried again".to_owned()),
    };
    LogoutRow {
        ended: d.session_ended_at.human(),
        status,
        tag,
        attempts: d.attempts,
        next,
        error: d.last_error.clone().unwrap_or_default(),
    }
}

impl LogoutSection {
    pub(crate) async fn of(state: &AppState, by: Operator<'_>, c: &OidcClient) -> Result<Option<Self>, PageError> {
        let (counts, undelivered) = state.app.logout_deliveries(Registrar::Operator(by), c.id.as_str(), SHOWN).await?;
        let any = counts.pending + counts.retrying + counts.given_up + counts.delivered > 0;
        if c.backchannel_logout_uri.is_none() && !any {
            return Ok(None);
        }
        Ok(Some(Self {
            pending: counts.pending,
            retrying: counts.retrying,
            given_up: counts.given_up,
            delivered: counts.delivered,
            rows: undelivered.iter().map(row).collect(),
        }))
    }
}
