//! Signed-in sessions. The cookie holds a 256-bit token; only its hash is stored here.

use std::sync::LazyLock;

use sqlx::Row as _;
use usher_domain::Timestamp;
use usher_domain::account::SessionStage;
use usher_domain::evidence::Evidence;
use usher_domain::ids::{SessionId, UserId};
use usher_domain::secret::TokenHash;

use crate::oidc::EndedSessions;
use crate::{Result, Tx};

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub stage: SessionStage,
    /// When the password was last re-entered in this session (for changes to factors and
    /// phones, S24).
    pub reauthenticated_at: Option<Timestamp>,
    /// What the session has proven and when, and its last full authentication.
    pub evidence: Evidence,
}

const COLUMNS: &str =
    "id, user_id, created_at, last_seen_at, ip, user_agent, stage, reauthenticated_at, evidence, authenticated_at";

/// The names a session's columns have in a row: their own, or prefixed in the join with users,
/// whose columns share some names. Fixed strings: every request reads a session.
struct Names([&'static str; 10]);

const PLAIN: Names = Names([
    "id",
    "user_id",
    "created_at",
    "last_seen_at",
    "ip",
    "user_agent",
    "stage",
    "reauthenticated_at",
    "evidence",
    "authenticated_at",
]);
const JOINED: Names = Names([
    "s_id",
    "s_user_id",
    "s_created_at",
    "s_last_seen_at",
    "s_ip",
    "s_user_agent",
    "s_stage",
    "s_reauthenticated_at",
    "s_evidence",
    "s_authenticated_at",
]);

fn from_row(row: &sqlx::any::AnyRow) -> Result<SessionRecord> {
    from_named_row(row, &PLAIN)
}

fn from_named_row(row: &sqlx::any::AnyRow, names: &Names) -> Result<SessionRecord> {
    let [id, user_id, created_at, last_seen_at, ip, user_agent, stage, reauthenticated_at, evidence, authenticated_at] =
        names.0;
    Ok(SessionRecord {
        id: SessionId::from_trusted(row.try_get(id)?),
        user_id: UserId::from_trusted(row.try_get(user_id)?),
        created_at: Timestamp::from_unix(row.try_get(created_at)?),
        last_seen_at: Timestamp::from_unix(row.try_get(last_seen_at)?),
        ip: row.try_get(ip)?,
        user_agent: row.try_get(user_agent)?,
        stage: SessionStage::parse(&row.try_get::<String, _>(stage)?)
            .ok_or_else(|| crate::StoreError::Query(sqlx::Error::Decode("unknown session stage".into())))?,
        reauthenticated_at: row.try_get::<Option<i64>, _>(reauthenticated_at)?.map(Timestamp::from_unix),
        evidence: Evidence::from_stored(
            &row.try_get::<String, _>(evidence)?,
            row.try_get::<Option<i64>, _>(authenticated_at)?.map(Timestamp::from_unix),
        ),
    })
}

impl crate::Store {
    /// A session that has not been ended, whatever its age (the caller applies the timeouts),
    /// and its account, in one statement outside any transaction: every
    /// request asks this, so it costs one round trip to the database instead of four.
    pub async fn live_session_with_user(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(SessionRecord, Option<crate::users::User>)>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            let session_columns: Vec<String> =
                PLAIN.0.iter().zip(JOINED.0).map(|(c, alias)| format!("s.{c} AS {alias}")).collect();
            let user_columns: Vec<String> =
                crate::users::COLUMNS.split(", ").map(|c| format!("u.{c} AS {c}", c = c.trim())).collect();
            format!(
                "SELECT {}, {} FROM sessions s LEFT JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1 AND s.ended_at IS NULL",
                session_columns.join(", "),
                user_columns.join(", ")
            )
        });
        let Some(row) = sqlx::query(SQL.as_str()).bind(hash.as_str()).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let session = from_named_row(&row, &JOINED)?;
        let user = match row.try_get::<Option<String>, _>("id")? {
            Some(_) => Some(crate::users::from_row(&row)?),
            None => None,
        };
        Ok(Some((session, user)))
    }
}

impl Tx {
    pub async fn insert_session(&mut self, hash: &TokenHash, s: &SessionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, id, user_id, created_at, last_seen_at, ip, user_agent, stage, \
             reauthenticated_at, evidence, authenticated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(hash.as_str())
        .bind(s.id.as_str())
        .bind(s.user_id.as_str())
        .bind(s.created_at.unix())
        .bind(s.last_seen_at.unix())
        .bind(s.ip.clone())
        .bind(s.user_agent.clone())
        .bind(s.stage.as_str())
        .bind(s.reauthenticated_at.map(Timestamp::unix))
        .bind(s.evidence.stored())
        .bind(s.evidence.auth_time().map(Timestamp::unix))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn touch_session(&mut self, id: &SessionId, now: Timestamp) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND ended_at IS NULL")
            .bind(now.unix())
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Ends a session, with what that does to the services it signed in to.
    pub async fn end_session(&mut self, id: &SessionId, because: &str, now: Timestamp) -> Result<EndedSessions> {
        let rows = sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL RETURNING id")
            .bind(now.unix())
            .bind(id.as_str())
            .fetch_all(&mut *self.tx)
            .await?;
        self.ended(rows, because, now).await
    }

    /// Ends every session of a person, and every grant (refresh tokens, access tokens) issued
    /// to other services from them (S23), with what that does to the services they signed in to.
    pub async fn end_all_sessions(&mut self, user: &UserId, because: &str, now: Timestamp) -> Result<EndedSessions> {
        let rows =
            sqlx::query("UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL RETURNING id")
                .bind(now.unix())
                .bind(user.as_str())
                .fetch_all(&mut *self.tx)
                .await?;
        let ended = self.ended(rows, because, now).await?;
        self.revoke_grants_of_user(user, because, now).await?;
        Ok(ended)
    }

    async fn ended(&mut self, rows: Vec<sqlx::any::AnyRow>, because: &str, now: Timestamp) -> Result<EndedSessions> {
        let ids = rows.iter().map(|r| r.try_get::<String, _>("id")).collect::<Result<Vec<_>, _>>()?;
        self.sessions_ended(&ids, because, now).await
    }
}

impl Tx {
    /// A person's live sessions, newest first.
    pub async fn sessions_of(&mut self, user: &UserId) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 AND ended_at IS NULL AND stage = 'full' \
             ORDER BY created_at DESC, id"
        ))
        .bind(user.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Ends one of a person's sessions; none ended when it was not theirs or had ended.
    pub async fn end_session_of(&mut self, user: &UserId, id: &SessionId, now: Timestamp) -> Result<EndedSessions> {
        let rows = sqlx::query(
            "UPDATE sessions SET ended_at = $1 WHERE id = $2 AND user_id = $3 AND ended_at IS NULL RETURNING id",
        )
        .bind(now.unix())
        .bind(id.as_str())
        .bind(user.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        self.ended(rows, "session signed out", now).await
    }

    /// Ends every session of a person but one.
    pub async fn end_other_sessions(
        &mut self,
        user: &UserId,
        keep: &SessionId,
        now: Timestamp,
    ) -> Result<EndedSessions> {
        let rows = sqlx::query(
            "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND id <> $3 AND ended_at IS NULL RETURNING id",
        )
        .bind(now.unix())
        .bind(user.as_str())
        .bind(keep.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        self.ended(rows, "other sessions signed out", now).await
    }
}

impl Tx {
    /// True while a session has not been ended.
    pub async fn session_is_live(&mut self, id: &SessionId) -> Result<bool> {
        let row = sqlx::query("SELECT id FROM sessions WHERE id = $1 AND ended_at IS NULL")
            .bind(id.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.is_some())
    }
}

impl Tx {
    /// Ends a session if it is still live; false when another request (on any node) ended it
    /// first. Moving a session on (second factor proven, password re-entered) ends the old one
    /// this way, so only one request can move it; its services move with it
    /// ([`Tx::move_session_services`]), so nothing is told.
    pub async fn end_session_once(&mut self, id: &SessionId, now: Timestamp) -> Result<bool> {
        let done = sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
            .bind(now.unix())
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_names_match_the_column_list() {
        assert_eq!(PLAIN.0.join(", "), COLUMNS);
        assert!(PLAIN.0.iter().zip(JOINED.0).all(|(plain, joined)| joined == format!("s_{plain}")));
    }
}
