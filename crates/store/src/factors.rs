//! Second factors (authenticator apps and email codes), recovery codes and the recovery phone.
//! Every single-use rule moves by compare-and-set, so it holds across nodes.

use sqlx::Row as _;
use sqlx::any::AnyRow;
use usher_domain::Timestamp;
use usher_domain::ids::{MessageId, UserId};

use crate::{Result, StoreError, Tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorKind {
    /// An authenticator app (TOTP).
    App,
    /// Codes sent to the account's email address.
    Email,
}

impl FactorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::App, Self::Email].into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub struct Factor {
    pub id: String,
    pub user_id: UserId,
    pub kind: FactorKind,
    /// The sealed TOTP secret (apps only).
    pub secret: Option<String>,
    pub created_at: Timestamp,
    pub confirmed_at: Option<Timestamp>,
    /// The session that began an unconfirmed set-up.
    pub session_id: Option<String>,
    pub superseded_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

const COLUMNS: &str = "id, user_id, kind, secret, created_at, confirmed_at, session_id, superseded_at, last_used_at";

fn from_row(row: &AnyRow) -> Result<Factor> {
    let kind: String = row.try_get("kind")?;
    let opt = |name: &str| -> Result<Option<Timestamp>> {
        Ok(row.try_get::<Option<i64>, _>(name)?.map(Timestamp::from_unix))
    };
    Ok(Factor {
        id: row.try_get("id")?,
        user_id: UserId::from_trusted(row.try_get("user_id")?),
        kind: FactorKind::parse(&kind)
            .ok_or_else(|| StoreError::Query(sqlx::Error::Decode("unknown factor kind".into())))?,
        secret: row.try_get("secret")?,
        created_at: Timestamp::from_unix(row.try_get("created_at")?),
        confirmed_at: opt("confirmed_at")?,
        session_id: row.try_get("session_id")?,
        superseded_at: opt("superseded_at")?,
        last_used_at: opt("last_used_at")?,
    })
}

impl Tx {
    /// A person's confirmed factors that have not been removed, oldest first.
    pub async fn factors(&mut self, user: &UserId) -> Result<Vec<Factor>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM factors WHERE user_id = $1 AND confirmed_at IS NOT NULL AND removed_at IS NULL \
             ORDER BY created_at, id"
        ))
        .bind(user.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Unconfirmed set-ups of one kind begun in a session, newest first.
    pub async fn pending_factors(&mut self, user: &UserId, session: &str, kind: FactorKind) -> Result<Vec<Factor>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM factors WHERE user_id = $1 AND session_id = $2 AND kind = $3 \
             AND confirmed_at IS NULL AND removed_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 10"
        ))
        .bind(user.as_str())
        .bind(session)
        .bind(kind.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Starts a set-up; every earlier unconfirmed one of the person and kind is superseded, so
    /// only the newest can be confirmed.
    pub async fn begin_factor(
        &mut self,
        id: &str,
        user: &UserId,
        kind: FactorKind,
        secret: Option<&str>,
        session: &str,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE factors SET superseded_at = $1 WHERE user_id = $2 AND kind = $3 AND confirmed_at IS NULL \
             AND superseded_at IS NULL",
        )
        .bind(now.unix())
        .bind(user.as_str())
        .bind(kind.as_str())
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "INSERT INTO factors (id, user_id, kind, secret, created_at, session_id) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(user.as_str())
        .bind(kind.as_str())
        .bind(secret.map(str::to_owned))
        .bind(now.unix())
        .bind(session)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Confirms the newest set-up; false when it was superseded or confirmed meanwhile.
    pub async fn confirm_factor(&mut self, id: &str, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE factors SET confirmed_at = $1, last_used_at = $1 WHERE id = $2 AND confirmed_at IS NULL \
             AND superseded_at IS NULL AND removed_at IS NULL",
        )
        .bind(now.unix())
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn touch_factor(&mut self, id: &str, now: Timestamp) -> Result<()> {
        sqlx::query("UPDATE factors SET last_used_at = $1 WHERE id = $2")
            .bind(now.unix())
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Replaces a factor's sealed secret (after a key rotation).
    pub async fn reseal_factor(&mut self, id: &str, old: &str, new: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE factors SET secret = $1 WHERE id = $2 AND secret = $3")
            .bind(new)
            .bind(id)
            .bind(old)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every app factor's sealed secret, for re-sealing under a new key, in pages.
    pub async fn sealed_secrets_after(&mut self, after: &str, limit: i64) -> Result<Vec<Factor>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM factors WHERE id > $1 AND secret IS NOT NULL AND removed_at IS NULL ORDER BY id LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Removes one factor of a person; false when it was not theirs or already gone.
    pub async fn remove_factor(&mut self, user: &UserId, id: &str, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE factors SET removed_at = $1, secret = NULL WHERE id = $2 AND user_id = $3 AND removed_at IS NULL",
        )
        .bind(now.unix())
        .bind(id)
        .bind(user.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes every factor and recovery code of a person; returns how many factors went.
    pub async fn remove_all_factors(&mut self, user: &UserId, now: Timestamp) -> Result<u64> {
        let done =
            sqlx::query("UPDATE factors SET removed_at = $1, secret = NULL WHERE user_id = $2 AND removed_at IS NULL")
                .bind(now.unix())
                .bind(user.as_str())
                .execute(&mut *self.tx)
                .await?;
        self.revoke_recovery_codes(user, now).await?;
        Ok(done.rows_affected())
    }

    /// Accepts a TOTP step for a person if it is later than every step accepted before, on any
    /// node; false for a replay (S9).
    pub async fn accept_totp_step(&mut self, user: &UserId, step: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(user.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts a wrong second factor, also on a locked account (a reset link may be guessing
    /// at it); returns the count, or `None` when the account is neither active nor locked. At
    /// `lock_at` an active account locks.
    pub async fn count_failed_second_factor(&mut self, user: &UserId, lock_at: i64) -> Result<Option<i64>> {
        let row = sqlx::query(
            "UPDATE users SET failed_second_factors = failed_second_factors + 1, \
             status = CASE WHEN failed_second_factors + 1 >= $1 THEN 'locked' ELSE status END \
             WHERE id = $2 AND status IN ('active', 'locked') RETURNING failed_second_factors",
        )
        .bind(lock_at)
        .bind(user.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|r| r.try_get("failed_second_factors")).transpose()?)
    }

    pub async fn clear_failed_second_factors(&mut self, user: &UserId) -> Result<()> {
        sqlx::query("UPDATE users SET failed_second_factors = 0 WHERE id = $1 AND failed_second_factors <> 0")
            .bind(user.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct StoredRecoveryCode {
    pub id: String,
    pub code_hash: String,
}

impl Tx {
    /// Replaces a person's recovery codes with a new set (hashes only).
    pub async fn replace_recovery_codes(&mut self, user: &UserId, hashes: &[String], now: Timestamp) -> Result<()> {
        self.revoke_recovery_codes(user, now).await?;
        for hash in hashes {
            sqlx::query("INSERT INTO recovery_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)")
                .bind(MessageId::generate().as_str())
                .bind(user.as_str())
                .bind(hash)
                .bind(now.unix())
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    async fn revoke_recovery_codes(&mut self, user: &UserId, now: Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE recovery_codes SET revoked_at = $1 WHERE user_id = $2 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now.unix())
        .bind(user.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// A person's unused recovery codes.
    pub async fn unused_recovery_codes(&mut self, user: &UserId) -> Result<Vec<StoredRecoveryCode>> {
        let rows = sqlx::query(
            "SELECT id, code_hash FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(user.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok(StoredRecoveryCode { id: r.try_get("id")?, code_hash: r.try_get("code_hash")? }))
            .collect()
    }

    /// Uses a recovery code once; false when another request used it first.
    pub async fn use_recovery_code(&mut self, id: &str, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now.unix())
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Tx {
    /// Sets (or, with `None`, removes) a person's proven recovery phone.
    pub async fn set_recovery_phone(&mut self, user: &UserId, phone: Option<&str>, now: Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE users SET recovery_phone = $1, recovery_phone_verified_at = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(phone.map(str::to_owned))
        .bind(phone.map(|_| now.unix()))
        .bind(now.unix())
        .bind(user.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
