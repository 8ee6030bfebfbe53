//! One-time codes and the flows they belong to. A flow (an activation, a sign-in) counts the
//! codes sent and the wrong guesses, so asking for a new code never resets the count. Every
//! counter moves by compare-and-set, so the limits hold across nodes.

use sqlx::Row as _;
use usher_domain::Timestamp;
use usher_domain::ids::MessageId;

use crate::{Result, Tx};

#[derive(Debug, Clone)]
pub struct CodeFlow {
    pub flow: String,
    pub sends: i64,
    pub failures: i64,
    pub last_sent_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct StoredCode {
    pub id: String,
    pub code_hash: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub superseded_at: Option<Timestamp>,
}

impl Tx {
    pub async fn code_flow(&mut self, flow: &str) -> Result<Option<CodeFlow>> {
        let row = sqlx::query("SELECT flow, sends, failures, last_sent_at FROM code_flows WHERE flow = $1")
            .bind(flow)
            .fetch_optional(&mut *self.tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(CodeFlow {
            flow: row.try_get("flow")?,
            sends: row.try_get("sends")?,
            failures: row.try_get("failures")?,
            last_sent_at: row.try_get::<Option<i64>, _>("last_sent_at")?.map(Timestamp::from_unix),
        }))
    }

    /// Counts a send if the flow is under its limits and the last code is old enough; then
    /// supersedes every earlier code and stores the new one. False when refused.
    #[allow(clippy::too_many_arguments)]
    pub async fn issue_code(
        &mut self,
        flow: &str,
        user_id: &str,
        purpose: &str,
        code_hash: &str,
        max_sends: i64,
        max_failures: i64,
        resend_after_seconds: i64,
        lifetime_seconds: i64,
        now: Timestamp,
    ) -> Result<bool> {
        sqlx::query(
            "INSERT INTO code_flows (flow, user_id, purpose, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (flow) DO NOTHING",
        )
        .bind(flow)
        .bind(user_id)
        .bind(purpose)
        .bind(now.unix())
        .execute(&mut *self.tx)
        .await?;
        let counted = sqlx::query(
            "UPDATE code_flows SET sends = sends + 1, last_sent_at = $1 WHERE flow = $2 AND sends < $3 AND failures < $4 \
             AND (last_sent_at IS NULL OR last_sent_at <= $5)",
        )
        .bind(now.unix())
        .bind(flow)
        .bind(max_sends)
        .bind(max_failures)
        .bind(now.unix().saturating_sub(resend_after_seconds))
        .execute(&mut *self.tx)
        .await?;
        if counted.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE one_time_codes SET superseded_at = $1 WHERE flow = $2 AND used_at IS NULL AND superseded_at IS NULL")
            .bind(now.unix())
            .bind(flow)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO one_time_codes (id, flow, code_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(MessageId::generate().as_str())
        .bind(flow)
        .bind(code_hash)
        .bind(now.unix())
        .bind(now.unix().saturating_add(lifetime_seconds))
        .execute(&mut *self.tx)
        .await?;
        Ok(true)
    }

    /// Every code of a flow, newest first.
    pub async fn codes(&mut self, flow: &str) -> Result<Vec<StoredCode>> {
        let rows = sqlx::query(
            "SELECT id, code_hash, created_at, expires_at, used_at, superseded_at FROM one_time_codes WHERE flow = $1 \
             ORDER BY created_at DESC, id DESC LIMIT 100",
        )
        .bind(flow)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredCode {
                    id: r.try_get("id")?,
                    code_hash: r.try_get("code_hash")?,
                    created_at: Timestamp::from_unix(r.try_get("created_at")?),
                    expires_at: Timestamp::from_unix(r.try_get("expires_at")?),
                    used_at: r.try_get::<Option<i64>, _>("used_at")?.map(Timestamp::from_unix),
                    superseded_at: r.try_get::<Option<i64>, _>("superseded_at")?.map(Timestamp::from_unix),
                })
            })
            .collect()
    }

    /// Counts a wrong guess unless the flow is already at its limit; false when it was.
    pub async fn count_code_failure(&mut self, flow: &str, max_failures: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE code_flows SET failures = failures + 1 WHERE flow = $1 AND failures < $2")
            .bind(flow)
            .bind(max_failures)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Uses a code once; false when it was already used or replaced.
    pub async fn use_code(&mut self, id: &str, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE one_time_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND superseded_at IS NULL",
        )
        .bind(now.unix())
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
