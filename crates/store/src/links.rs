//! One-time links (operator set-up, activation, password reset). Only the hash of each link's
//! token is stored; a link is used by an update that succeeds only once.

use sqlx::Row as _;
use usher_domain::Timestamp;
use usher_domain::ids::UserId;
use usher_domain::secret::TokenHash;

use crate::{Result, StoreError, Tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// The first operator's set-up, printed by `usher serve` while no operator exists.
    OperatorSetup,
    /// A locked-out operator's new password, printed by `usher operator recover`.
    OperatorRecovery,
    /// A new account's one-time activation, emailed when an administrator adds someone.
    Activation,
    /// A forgotten password's reset, emailed on request; valid for an hour.
    PasswordReset,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OperatorSetup => "operator_setup",
            Self::OperatorRecovery => "operator_recovery",
            Self::Activation => "activation",
            Self::PasswordReset => "password_reset",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "operator_setup" => Some(Self::OperatorSetup),
            "operator_recovery" => Some(Self::OperatorRecovery),
            "activation" => Some(Self::Activation),
            "password_reset" => Some(Self::PasswordReset),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OneTimeLink {
    pub token_hash: TokenHash,
    pub purpose: LinkPurpose,
    pub user_id: Option<UserId>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    /// Activation progress: the terms version agreed to, and when the mobile was confirmed.
    pub terms_version: Option<i64>,
    pub phone_confirmed_at: Option<Timestamp>,
    /// The E.164 number that was confirmed.
    pub phone_confirmed: Option<String>,
    /// A reset link's second factor, once proven.
    pub second_factor_at: Option<Timestamp>,
}

impl OneTimeLink {
    /// A new, unused link for `token_hash`, valid from `now` until `expires_at`.
    pub fn new(
        token_hash: TokenHash,
        purpose: LinkPurpose,
        user_id: Option<UserId>,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Self {
        Self {
            token_hash,
            purpose,
            user_id,
            created_at: now,
            expires_at,
            used_at: None,
            terms_version: None,
            phone_confirmed_at: None,
            phone_confirmed: None,
            second_factor_at: None,
        }
    }
}

impl Tx {
    /// Stores a new link and kills every unused earlier link of the same purpose for the same
    /// person (or, for links without a person, of the same purpose).
    pub async fn replace_link(&mut self, link: &OneTimeLink) -> Result<()> {
        let user = link.user_id.as_ref().map(|u| u.as_str().to_owned());
        sqlx::query(
            "UPDATE one_time_links SET used_at = $1 WHERE purpose = $2 AND used_at IS NULL \
             AND (user_id = $3 OR (user_id IS NULL AND $3 IS NULL))",
        )
        .bind(link.created_at.unix())
        .bind(link.purpose.as_str())
        .bind(user.clone())
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "INSERT INTO one_time_links (token_hash, purpose, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(link.token_hash.as_str())
        .bind(link.purpose.as_str())
        .bind(user)
        .bind(link.created_at.unix())
        .bind(link.expires_at.unix())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn link(&mut self, hash: &TokenHash) -> Result<Option<OneTimeLink>> {
        let row = sqlx::query(
            "SELECT token_hash, purpose, user_id, created_at, expires_at, used_at, terms_version, phone_confirmed_at, phone_confirmed, \
             second_factor_at \
             FROM one_time_links WHERE token_hash = $1",
        )
        .bind(hash.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let purpose: String = row.try_get("purpose")?;
        Ok(Some(OneTimeLink {
            token_hash: TokenHash::from_stored(row.try_get("token_hash")?),
            purpose: LinkPurpose::parse(&purpose)
                .ok_or_else(|| StoreError::Query(sqlx::Error::Decode("unknown link purpose".into())))?,
            user_id: row.try_get::<Option<String>, _>("user_id")?.map(UserId::from_trusted),
            created_at: Timestamp::from_unix(row.try_get("created_at")?),
            expires_at: Timestamp::from_unix(row.try_get("expires_at")?),
            used_at: row.try_get::<Option<i64>, _>("used_at")?.map(Timestamp::from_unix),
            terms_version: row.try_get("terms_version")?,
            phone_confirmed_at: row.try_get::<Option<i64>, _>("phone_confirmed_at")?.map(Timestamp::from_unix),
            phone_confirmed: row.try_get("phone_confirmed")?,
            second_factor_at: row.try_get::<Option<i64>, _>("second_factor_at")?.map(Timestamp::from_unix),
        }))
    }

    /// Marks a link used. Returns false when it was already used (by a concurrent request).
    pub async fn use_link(&mut self, hash: &TokenHash, now: Timestamp) -> Result<bool> {
        let done = sqlx::query("UPDATE one_time_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL")
            .bind(now.unix())
            .bind(hash.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Tx {
    pub async fn record_link_terms(&mut self, hash: &TokenHash, version: i64) -> Result<()> {
        sqlx::query("UPDATE one_time_links SET terms_version = $1 WHERE token_hash = $2 AND used_at IS NULL")
            .bind(version)
            .bind(hash.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Records that the holder of a live link has proven a second factor.
    pub async fn record_link_second_factor(&mut self, hash: &TokenHash, now: Timestamp) -> Result<()> {
        sqlx::query("UPDATE one_time_links SET second_factor_at = $1 WHERE token_hash = $2 AND used_at IS NULL")
            .bind(now.unix())
            .bind(hash.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn record_link_phone_confirmed(&mut self, hash: &TokenHash, phone: &str, now: Timestamp) -> Result<()> {
        sqlx::query("UPDATE one_time_links SET phone_confirmed_at = $1, phone_confirmed = $3 WHERE token_hash = $2 AND used_at IS NULL")
            .bind(now.unix())
            .bind(hash.as_str())
            .bind(phone)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Forgets a confirmed mobile on every unused link of a person (their number changed).
    pub async fn reset_link_phone_confirmation(&mut self, user: &UserId) -> Result<()> {
        sqlx::query("UPDATE one_time_links SET phone_confirmed_at = NULL, phone_confirmed = NULL WHERE user_id = $1 AND used_at IS NULL")
            .bind(user.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

impl Tx {
    /// Kills every unused link of one purpose for a person (a new password kills reset links).
    pub async fn kill_links(&mut self, user: &UserId, purpose: LinkPurpose, now: Timestamp) -> Result<()> {
        sqlx::query("UPDATE one_time_links SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL")
            .bind(now.unix())
            .bind(user.as_str())
            .bind(purpose.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
