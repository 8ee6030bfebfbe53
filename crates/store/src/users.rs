//! Accounts.

use sqlx::Row as _;
use sqlx::any::AnyRow;
use usher_domain::Timestamp;
use usher_domain::account::{AccountStatus, Role};
use usher_domain::email::EmailAddress;
use usher_domain::ids::{OrganisationId, UserId};

use crate::{Result, StoreError, Tx};

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub role: Role,
    pub organisation_id: Option<OrganisationId>,
    pub full_name: String,
    pub email: EmailAddress,
    pub phone: Option<String>,
    pub status: AccountStatus,
    /// PHC string; `None` until the account is set up.
    pub password_hash: Option<String>,
    pub password_changed_at: Option<Timestamp>,
    pub failed_sign_ins: i64,
    pub last_sign_in_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub role: Role,
    pub organisation_id: Option<OrganisationId>,
    pub full_name: String,
    pub email: EmailAddress,
    pub phone: Option<String>,
    pub status: AccountStatus,
}

const COLUMNS: &str = "id, role, organisation_id, full_name, email, phone, status, password_hash, \
     password_changed_at, failed_sign_ins, last_sign_in_at, created_at";

fn from_row(row: &AnyRow) -> Result<User> {
    let corrupt = |what: &str| {
        StoreError::Query(sqlx::Error::Decode(
            format!("unknown {what} in users").into(),
        ))
    };
    let role: String = row.try_get("role")?;
    let status: String = row.try_get("status")?;
    Ok(User {
        id: UserId::from_trusted(row.try_get("id")?),
        role: Role::parse(&role).ok_or_else(|| corrupt("role"))?,
        organisation_id: row
            .try_get::<Option<String>, _>("organisation_id")?
            .map(OrganisationId::from_trusted),
        full_name: row.try_get("full_name")?,
        email: EmailAddress::from_trusted(row.try_get("email")?),
        phone: row.try_get("phone")?,
        status: AccountStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        password_hash: row.try_get("password_hash")?,
        password_changed_at: row
            .try_get::<Option<i64>, _>("password_changed_at")?
            .map(Timestamp::from_unix),
        failed_sign_ins: row.try_get("failed_sign_ins")?,
        last_sign_in_at: row
            .try_get::<Option<i64>, _>("last_sign_in_at")?
            .map(Timestamp::from_unix),
        created_at: Timestamp::from_unix(row.try_get("created_at")?),
    })
}

impl Tx {
    pub async fn insert_user(&mut self, u: &NewUser, now: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (id, role, organisation_id, full_name, email, phone, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(u.id.as_str())
        .bind(u.role.as_str())
        .bind(u.organisation_id.as_ref().map(|o| o.as_str().to_owned()))
        .bind(&u.full_name)
        .bind(u.email.as_str())
        .bind(u.phone.clone())
        .bind(u.status.as_str())
        .bind(now.unix())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn user(&mut self, id: &UserId) -> Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn user_by_email(&mut self, email: &EmailAddress) -> Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
        let row = sqlx::query(&sql)
            .bind(email.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn count_users_with_role(&mut self, role: Role) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE role = $1")
            .bind(role.as_str())
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get("n")?)
    }

    pub async fn users_with_role(&mut self, role: Role) -> Result<Vec<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE role = $1 ORDER BY created_at, id");
        let rows = sqlx::query(&sql)
            .bind(role.as_str())
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Sets a new password, activates the account and clears the failure count.
    pub async fn set_password(
        &mut self,
        id: &UserId,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2, status = $3, \
             failed_sign_ins = 0, updated_at = $2 WHERE id = $4",
        )
        .bind(password_hash)
        .bind(now.unix())
        .bind(AccountStatus::Active.as_str())
        .bind(id.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn update_user_identity(
        &mut self,
        id: &UserId,
        full_name: &str,
        email: &EmailAddress,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query("UPDATE users SET full_name = $1, email = $2, updated_at = $3 WHERE id = $4")
            .bind(full_name)
            .bind(email.as_str())
            .bind(now.unix())
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn record_sign_in(&mut self, id: &UserId, now: Timestamp) -> Result<()> {
        sqlx::query("UPDATE users SET last_sign_in_at = $1, failed_sign_ins = 0, updated_at = $1 WHERE id = $2")
            .bind(now.unix())
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

impl Tx {
    /// Counts a wrong password for an active account, locking it when the count reaches
    /// `limit`. One statement, so concurrent attempts on any node cannot count past the limit.
    /// Returns the new count, or `None` when the account was not active.
    pub async fn count_failed_sign_in(
        &mut self,
        id: &UserId,
        limit: i64,
        now: Timestamp,
    ) -> Result<Option<(i64, AccountStatus)>> {
        let row = sqlx::query(
            "UPDATE users SET failed_sign_ins = failed_sign_ins + 1, \
             status = CASE WHEN failed_sign_ins + 1 >= $1 THEN 'locked' ELSE status END, updated_at = $2 \
             WHERE id = $3 AND status = 'active' RETURNING failed_sign_ins, status",
        )
        .bind(limit)
        .bind(now.unix())
        .bind(id.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("status")?;
        Ok(Some((
            row.try_get("failed_sign_ins")?,
            AccountStatus::parse(&status).unwrap_or(AccountStatus::Locked),
        )))
    }

    /// Records a successful sign-in if the account is still active and its password is still
    /// the one just checked (a change on another node in between wins); false otherwise.
    /// `new_hash` replaces the stored hash when the configured cost has risen.
    pub async fn record_sign_in_if_active(
        &mut self,
        id: &UserId,
        verified_hash: &str,
        new_hash: Option<&str>,
        now: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET last_sign_in_at = $1, failed_sign_ins = 0, updated_at = $1, \
             password_hash = COALESCE($4, password_hash) \
             WHERE id = $2 AND status = 'active' AND password_hash = $3",
        )
        .bind(now.unix())
        .bind(id.as_str())
        .bind(verified_hash)
        .bind(new_hash)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
