//! The append-only, hash-chained audit trail. Appending takes the chain head's row lock
//! (PostgreSQL) or the write lock (SQLite) for the rest of the transaction, so events from
//! several servers form one chain.

use sqlx::Row as _;
use usher_domain::Timestamp;
use usher_domain::audit::{AuditFields, chain_hash};

use crate::{Result, Store, Tx};

/// What a use case records. Text from requests is cleaned of control characters first.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEvent {
    pub actor_id: Option<String>,
    pub subject_id: Option<String>,
    pub organisation_id: Option<String>,
    pub action: String,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub detail: Option<String>,
}

pub type AuditEvent = NewAuditEvent;

#[derive(Debug, Clone)]
pub struct StoredAuditEvent {
    pub seq: i64,
    pub at: Timestamp,
    pub event: NewAuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredAuditEvent {
    pub fn fields(&self) -> AuditFields<'_> {
        let e = &self.event;
        AuditFields {
            seq: self.seq,
            at: self.at.unix(),
            actor_id: e.actor_id.as_deref(),
            subject_id: e.subject_id.as_deref(),
            organisation_id: e.organisation_id.as_deref(),
            action: &e.action,
            outcome: &e.outcome,
            ip: e.ip.as_deref(),
            user_agent: e.user_agent.as_deref(),
            request_id: e.request_id.as_deref(),
            detail: e.detail.as_deref(),
        }
    }
}

impl Tx {
    pub async fn append_audit(&mut self, e: &NewAuditEvent, now: Timestamp) -> Result<i64> {
        let head = sqlx::query("UPDATE audit_chain_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
            .fetch_one(&mut *self.tx)
            .await?;
        let seq: i64 = head.try_get("seq")?;
        let prev_hash: String = head.try_get("hash")?;
        let stored = StoredAuditEvent { seq, at: now, event: e.clone(), prev_hash, hash: String::new() };
        let hash = chain_hash(&stored.prev_hash, &stored.fields());
        sqlx::query("UPDATE audit_chain_head SET hash = $1 WHERE id = 1").bind(&hash).execute(&mut *self.tx).await?;
        sqlx::query(
            "INSERT INTO audit_events (seq, at, actor_id, subject_id, organisation_id, action, outcome, ip, user_agent, \
             request_id, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(seq)
        .bind(now.unix())
        .bind(e.actor_id.clone())
        .bind(e.subject_id.clone())
        .bind(e.organisation_id.clone())
        .bind(&e.action)
        .bind(&e.outcome)
        .bind(e.ip.clone())
        .bind(e.user_agent.clone())
        .bind(e.request_id.clone())
        .bind(e.detail.clone())
        .bind(&stored.prev_hash)
        .bind(&hash)
        .execute(&mut *self.tx)
        .await?;
        Ok(seq)
    }
}

impl Store {
    /// The chain head: the number of events appended and the last one's hash.
    pub async fn audit_chain_head(&self) -> Result<(i64, String)> {
        let row = sqlx::query("SELECT seq, hash FROM audit_chain_head WHERE id = 1").fetch_one(&self.pool).await?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
    }

    /// Events with `seq` greater than `after`, oldest first, at most `limit` of them.
    pub async fn audit_events_after(&self, after: i64, limit: i64) -> Result<Vec<StoredAuditEvent>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor_id, subject_id, organisation_id, action, outcome, ip, user_agent, request_id, detail, \
             prev_hash, hash FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_event).collect()
    }
}

/// What to show of the audit trail. Empty strings and `None` mean "any".
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub organisation_id: String,
    /// Events where this person acted or was acted upon.
    pub user_id: String,
    /// An action (`sign_in`) or a family of them (`mfa` matches `mfa.app_added`).
    pub action: String,
    pub from: Option<Timestamp>,
    /// Up to, not including.
    pub until: Option<Timestamp>,
}

impl Store {
    /// Events matching `filter`, newest first, older than `before` (a `seq`) when given.
    pub async fn audit_events_filtered(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StoredAuditEvent>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor_id, subject_id, organisation_id, action, outcome, ip, user_agent, request_id, detail, \
             prev_hash, hash FROM audit_events \
             WHERE ($1 = '' OR organisation_id = $1) \
             AND ($2 = '' OR actor_id = $2 OR subject_id = $2) \
             AND ($3 = '' OR action = $3 OR action LIKE $4 ESCAPE '\\') \
             AND at >= $5 AND at < $6 AND seq < $7 \
             ORDER BY seq DESC LIMIT $8",
        )
        .bind(&filter.organisation_id)
        .bind(&filter.user_id)
        .bind(&filter.action)
        .bind(format!("{}.%", filter.action.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")))
        .bind(filter.from.map_or(i64::MIN, Timestamp::unix))
        .bind(filter.until.map_or(i64::MAX, Timestamp::unix))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_event).collect()
    }
}

fn stored_event(r: &sqlx::any::AnyRow) -> Result<StoredAuditEvent> {
    Ok(StoredAuditEvent {
        seq: r.try_get("seq")?,
        at: Timestamp::from_unix(r.try_get("at")?),
        event: NewAuditEvent {
            actor_id: r.try_get("actor_id")?,
            subject_id: r.try_get("subject_id")?,
            organisation_id: r.try_get("organisation_id")?,
            action: r.try_get("action")?,
            outcome: r.try_get("outcome")?,
            ip: r.try_get("ip")?,
            user_agent: r.try_get("user_agent")?,
            request_id: r.try_get("request_id")?,
            detail: r.try_get("detail")?,
        },
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}
