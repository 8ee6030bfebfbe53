//! The audit trail: checking its hash chain, and viewing, filtering and exporting it (the
//! operator sees everything; an organisation administrator only their organisation's events).

use std::collections::HashMap;

use usher_domain::audit::{GENESIS, chain_hash};
use usher_domain::email::EmailAddress;
use usher_domain::ids::OrganisationId;
use usher_domain::{Error, Timestamp};
use usher_store::{AuditFilter, StoredAuditEvent};

use crate::authz::{Operator, OrganisationAdmin};
use crate::{App, RequestContext, store_error};

/// Whose view of the trail.
#[derive(Debug, Clone, Copy)]
pub enum AuditScope<'a> {
    Everything(Operator<'a>),
    Organisation(OrganisationAdmin<'a>),
}

/// The filter as typed: organisation ID, a person (email address or ID), an action or family
/// (`mfa`), and a day range (`YYYY-MM-DD`, both ends included).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub organisation: String,
    pub user: String,
    pub action: String,
    pub from: String,
    pub to: String,
}

/// One page of the trail, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub events: Vec<StoredAuditEvent>,
    /// Names of the people and organisations the events mention.
    pub names: HashMap<String, String>,
    /// Pass as `before` for the next (older) page.
    pub older: Option<i64>,
}

/// How an administrator sees someone who is not of their organisation.
pub const OUTSIDER: &str = "Someone outside your organisation";

/// Most events one export holds.
pub const EXPORT_LIMIT: i64 = 100_000;

impl App {
    async fn audit_filter(&self, scope: AuditScope<'_>, q: &AuditQuery) -> Result<AuditFilter, Error> {
        let mut fields = Vec::new();
        let day = |text: &str, field: &'static str, fields: &mut Vec<usher_domain::error::FieldError>| {
            if text.trim().is_empty() {
                return None;
            }
            let parsed = Timestamp::parse_date(text);
            if parsed.is_none() {
                fields.push(usher_domain::error::FieldError { field, message: "Enter a date like 2026-11-23".into() });
            }
            parsed
        };
        let from = day(&q.from, "from", &mut fields);
        let until = day(&q.to, "to", &mut fields).map(|t| t.plus(usher_domain::duration::Span::days(1)));
        let action = q.action.trim();
        if action.len() > 64 || !action.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c == '.') {
            fields.push(usher_domain::error::FieldError {
                field: "action",
                message: "Enter an action such as sign_in or mfa, in lower case".into(),
            });
        }
        if !fields.is_empty() {
            return Err(Error::invalid(fields));
        }
        let user = q.user.trim();
        let user_id = if user.contains('@') {
            let mut tx = self.store.begin_read().await.map_err(store_error)?;
            match EmailAddress::parse(user) {
                Ok(email) => tx
                    .user_by_email(&email)
                    .await
                    .map_err(store_error)?
                    .map_or_else(|| "-".to_owned(), |u| u.id.to_string()),
                Err(_) => "-".to_owned(),
            }
        } else {
            user.chars().take(64).collect()
        };
        let organisation_id = match scope {
            AuditScope::Organisation(admin) => admin.organisation().to_string(),
            AuditScope::Everything(_) => match q.organisation.trim() {
                "" => String::new(),
                id => OrganisationId::parse(id).map_or_else(|| "-".to_owned(), |o| o.to_string()),
            },
        };
        Ok(AuditFilter { organisation_id, user_id, action: action.to_owned(), from, until })
    }

    /// A page of the trail as the viewer may see it.
    pub async fn audit_page(
        &self,
        scope: AuditScope<'_>,
        q: &AuditQuery,
        before: Option<i64>,
        limit: i64,
    ) -> Result<AuditPage, Error> {
        let filter = self.audit_filter(scope, q).await?;
        let mut events = self.store.audit_events_filtered(&filter, before, limit + 1).await.map_err(store_error)?;
        let older = (events.len() as i64 > limit).then(|| {
            events.truncate(usize::try_from(limit).unwrap_or(0));
            events.last().map_or(0, |e| e.seq)
        });
        let mut ids: Vec<String> =
            events.iter().flat_map(|e| [e.event.actor_id.clone(), e.event.subject_id.clone()]).flatten().collect();
        ids.sort();
        ids.dedup();
        let people = self.store.user_names(&ids).await.map_err(store_error)?;
        let mut names = HashMap::new();
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        match scope {
            AuditScope::Everything(_) => {
                names.extend(people.into_iter().map(|(id, (name, _))| (id, name)));
                for o in tx.organisations().await.map_err(store_error)? {
                    names.insert(o.id.to_string(), o.name);
                }
            }
            AuditScope::Organisation(admin) => {
                // Only their own organisation's people are named; anyone else (a person of
                // another organisation, the operator) is not, and their address is not shown.
                let own = admin.organisation().to_string();
                for (id, (name, org)) in people {
                    names.insert(id, if org.as_deref() == Some(own.as_str()) { name } else { OUTSIDER.to_owned() });
                }
                names.insert(
                    own.clone(),
                    tx.organisation(admin.organisation())
                        .await
                        .map_err(store_error)?
                        .map(|o| o.name)
                        .unwrap_or_default(),
                );
                for e in &mut events {
                    let actor_outside =
                        e.event.actor_id.as_ref().is_some_and(|a| names.get(a).is_none_or(|n| n == OUTSIDER));
                    if actor_outside {
                        e.event.ip = None;
                        e.event.user_agent = None;
                    }
                }
            }
        }
        Ok(AuditPage { events, names, older })
    }

    /// Every event the viewer may see that matches, newest first, up to [`EXPORT_LIMIT`]. The
    /// export itself is audited.
    pub async fn audit_export(
        &self,
        scope: AuditScope<'_>,
        q: &AuditQuery,
        format: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Vec<StoredAuditEvent>, Error> {
        let filter = self.audit_filter(scope, q).await?;
        let mut events = self.store.audit_events_filtered(&filter, None, EXPORT_LIMIT).await.map_err(store_error)?;
        if let AuditScope::Organisation(admin) = scope {
            let mut ids: Vec<String> = events.iter().filter_map(|e| e.event.actor_id.clone()).collect();
            ids.sort();
            ids.dedup();
            let people = self.store.user_names(&ids).await.map_err(store_error)?;
            let own = admin.organisation().to_string();
            for e in &mut events {
                let inside = e
                    .event
                    .actor_id
                    .as_ref()
                    .is_some_and(|a| people.get(a).is_some_and(|(_, o)| o.as_deref() == Some(own.as_str())));
                if !inside {
                    e.event.ip = None;
                    e.event.user_agent = None;
                }
            }
        }
        let (actor, organisation) = match scope {
            AuditScope::Everything(o) => (o.user().id.to_string(), None),
            AuditScope::Organisation(a) => (a.user().id.to_string(), Some(a.organisation().to_string())),
        };
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let mut event = ctx.event("audit.exported", "success");
        event.actor_id = Some(actor);
        event.organisation_id = organisation;
        event.detail = Some(format!(
            "{} events as {format:.8}; filter organisation={:.40} user={:.40} action={:.64} from={:.10} to={:.10}",
            events.len(),
            filter.organisation_id,
            filter.user_id,
            filter.action,
            q.from,
            q.to
        ));
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(events)
    }
}

/// The result of `usher audit verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    /// Every event links to the one before and matches its hash.
    Intact { events: i64 },
    /// The first event whose stored hash or link does not match.
    Broken { seq: i64, reason: &'static str },
}

impl App {
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, Error> {
        let (head_seq, head_hash) = self.store.audit_chain_head().await.map_err(store_error)?;
        let mut previous = GENESIS.to_owned();
        let mut expected_seq = 1;
        loop {
            let batch = self.store.audit_events_after(expected_seq - 1, 1000).await.map_err(store_error)?;
            if batch.is_empty() {
                let count = expected_seq - 1;
                // Events removed from the end leave the chain head pointing past them.
                if count != head_seq || previous != head_hash {
                    return Ok(ChainReport::Broken {
                        seq: count + 1,
                        reason: "events are missing from the end of the trail",
                    });
                }
                return Ok(ChainReport::Intact { events: count });
            }
            for e in &batch {
                if e.seq != expected_seq {
                    return Ok(ChainReport::Broken { seq: expected_seq, reason: "missing event" });
                }
                if e.prev_hash != previous {
                    return Ok(ChainReport::Broken { seq: e.seq, reason: "does not link to the event before it" });
                }
                if chain_hash(&previous, &e.fields()) != e.hash {
                    return Ok(ChainReport::Broken { seq: e.seq, reason: "its content does not match its hash" });
                }
                previous.clone_from(&e.hash);
                expected_seq += 1;
            }
        }
    }
}
