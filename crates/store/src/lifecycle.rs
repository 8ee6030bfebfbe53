//! The account lifecycle's queries: accounts due for a reminder, deregistration or deletion,
//! taken in batches in ID order. On PostgreSQL a batch's rows are locked with `SKIP LOCKED`, so
//! two servers running the jobs share the work instead of queueing; every change is also a
//! compare-and-set, so each account is reminded, deregistered and deleted exactly once.

use usher_domain::Timestamp;
use usher_domain::ids::UserId;

use crate::users::{COLUMNS, from_row};
use crate::{Engine, Result, Tx, User};

impl Tx {
    fn skip_locked(&self) -> &'static str {
        if self.engine == Engine::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" }
    }

    /// Active or locked accounts (never operators) unused since `unused_since` or earlier, after
    /// `after` in ID order.
    pub async fn unused_accounts(&mut self, unused_since: Timestamp, after: &str, limit: i64) -> Result<Vec<User>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE status IN ('active', 'locked') AND role <> 'operator' \
             AND active_since IS NOT NULL AND active_since <= $1 AND id > $2 ORDER BY id LIMIT $3{}",
            self.skip_locked()
        );
        let rows = sqlx::query(&sql).bind(unused_since.unix()).bind(after).bind(limit).fetch_all(&mut *self.tx).await?;
        rows.iter().map(from_row).collect()
    }

    /// Deregistered accounts deregistered at `before` or earlier, after `after` in ID order.
    pub async fn deregistered_accounts(&mut self, before: Timestamp, after: &str, limit: i64) -> Result<Vec<User>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE status = 'deregistered' AND deregistered_at <= $1 AND id > $2 \
             ORDER BY id LIMIT $3{}",
            self.skip_locked()
        );
        let rows = sqlx::query(&sql).bind(before.unix()).bind(after).bind(limit).fetch_all(&mut *self.tx).await?;
        rows.iter().map(from_row).collect()
    }

    /// Records a lifecycle notice for one stretch of use; false when it was already recorded
    /// (by this or another server), in which case nothing is to be sent.
    pub async fn record_notice(
        &mut self,
        user: &UserId,
        kind: &str,
        period_start: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO lifecycle_notices (user_id, kind, period_start, sent_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, kind, period_start) DO NOTHING",
        )
        .bind(user.as_str())
        .bind(kind)
        .bind(period_start.unix())
        .bind(now.unix())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deregisters an account if it is still unused since `unused_since`; false otherwise.
    pub async fn deregister(&mut self, user: &UserId, unused_since: Timestamp, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET status = 'deregistered', deregistered_at = $1, updated_at = $1 \
             WHERE id = $2 AND status IN ('active', 'locked') AND active_since <= $3",
        )
        .bind(now.unix())
        .bind(user.as_str())
        .bind(unused_since.unix())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Reregisters a deregistered account: it is active again and its stretch of use starts
    /// now. The password and factors are as they were.
    pub async fn reregister(&mut self, user: &UserId, deregistered_after: Timestamp, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET status = 'active', deregistered_at = NULL, active_since = $1, failed_sign_ins = 0, \
             failed_second_factors = 0, updated_at = $1 WHERE id = $2 AND status = 'deregistered' AND deregistered_at > $3",
        )
        .bind(now.unix())
        .bind(user.as_str())
        .bind(deregistered_after.unix())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes an account deregistered at `before` or earlier: its personal data (name, email,
    /// phone numbers, password and its history, factors, recovery codes, sessions, links) is
    /// erased, messages to it are blanked, and only the ID remains for the audit trail.
    /// Returns None when the account was not deleted, else what ending its sessions did (there
    /// should be none left: deregistration ended them).
    pub async fn delete_account(
        &mut self,
        user: &User,
        before: Timestamp,
        now: Timestamp,
    ) -> Result<Option<crate::oidc::EndedSessions>> {
        let id = user.id.as_str();
        let done = sqlx::query(
            "UPDATE users SET status = 'deleted', deleted_at = $1, updated_at = $1, full_name = 'Deleted account', \
             email = $2, phone = NULL, recovery_phone = NULL, recovery_phone_verified_at = NULL, password_hash = NULL, \
             search_key = '', totp_last_step = NULL \
             WHERE id = $3 AND status = 'deregistered' AND deregistered_at <= $4",
        )
        .bind(now.unix())
        .bind(format!("deleted-{id}@deleted.invalid"))
        .bind(id)
        .bind(before.unix())
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        self.remove_all_factors(&user.id, now).await?;
        let ended = self.end_all_sessions(&user.id, "account deleted", now).await?;
        for sql in [
            "DELETE FROM password_history WHERE user_id = $1",
            "DELETE FROM recovery_codes WHERE user_id = $1",
            "UPDATE factors SET secret = NULL WHERE user_id = $1",
            "UPDATE sessions SET ip = NULL, user_agent = NULL WHERE user_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *self.tx).await?;
        }
        sqlx::query(
            "UPDATE one_time_links SET used_at = COALESCE(used_at, $1), phone_confirmed = NULL WHERE user_id = $2",
        )
        .bind(now.unix())
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        let recipients: Vec<String> = [Some(user.email.to_string()), user.phone.clone(), user.recovery_phone.clone()]
            .into_iter()
            .flatten()
            .collect();
        // Emails are the person's alone; a phone number may be shared, so only messages that
        // are finished are blanked for it.
        for (i, r) in recipients.into_iter().enumerate() {
            let finished_only = if i == 0 { "" } else { " AND status <> 'pending'" };
            sqlx::query(&format!(
                "UPDATE outbox SET recipient = '[deleted]', subject = '', body = '', last_error = NULL, \
                 status = CASE WHEN status = 'pending' THEN 'dropped' ELSE status END WHERE recipient = $1{finished_only}"
            ))
            .bind(r)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(Some(ended))
    }
}

impl Tx {
    /// Gives accounts that have no stretch of use yet (those from before the lifecycle existed)
    /// one that starts at their last use, but no earlier than `earliest`, so that nobody is
    /// deregistered without the reminders first.
    pub async fn start_missing_stretches(&mut self, earliest: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE users SET active_since = CASE WHEN COALESCE(last_sign_in_at, activated_at, 0) > $1 \
             THEN COALESCE(last_sign_in_at, activated_at) ELSE $1 END \
             WHERE active_since IS NULL AND status IN ('active', 'locked')",
        )
        .bind(earliest.unix())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected())
    }

    /// Forgets rate-limit windows that ended long ago (none is longer than a day).
    pub async fn purge_rate_limits(&mut self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
            .bind(before.unix())
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
    }
}
