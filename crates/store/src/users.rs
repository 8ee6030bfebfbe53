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
    /// The administrator (or operator) who added this person.
    pub added_by: Option<UserId>,
    pub phone_verified_at: Option<Timestamp>,
    pub activated_at: Option<Timestamp>,
    /// When the current stretch of use began: the last sign-in, activation or reregistration.
    pub active_since: Option<Timestamp>,
    pub deregistered_at: Option<Timestamp>,
    /// A proven number for recovery by text message (E.164).
    pub recovery_phone: Option<String>,
    pub failed_second_factors: i64,
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
    pub added_by: Option<UserId>,
}

pub(crate) const COLUMNS: &str = "id, role, organisation_id, full_name, email, phone, status, password_hash, \
     password_changed_at, failed_sign_ins, last_sign_in_at, created_at, added_by, phone_verified_at, activated_at, recovery_phone, failed_second_factors, active_since, deregistered_at";

pub(crate) fn from_row(row: &AnyRow) -> Result<User> {
    let corrupt = |what: &str| StoreError::Query(sqlx::Error::Decode(format!("unknown {what} in users").into()));
    let role: String = row.try_get("role")?;
    let status: String = row.try_get("status")?;
    Ok(User {
        id: UserId::from_trusted(row.try_get("id")?),
        role: Role::parse(&role).ok_or_else(|| corrupt("role"))?,
        organisation_id: row.try_get::<Option<String>, _>("organisation_id")?.map(OrganisationId::from_trusted),
        full_name: row.try_get("full_name")?,
        email: EmailAddress::from_trusted(row.try_get("email")?),
        phone: row.try_get("phone")?,
        status: AccountStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        password_hash: row.try_get("password_hash")?,
        password_changed_at: row.try_get::<Option<i64>, _>("password_changed_at")?.map(Timestamp::from_unix),
        failed_sign_ins: row.try_get("failed_sign_ins")?,
        last_sign_in_at: row.try_get::<Option<i64>, _>("last_sign_in_at")?.map(Timestamp::from_unix),
        created_at: Timestamp::from_unix(row.try_get("created_at")?),
        added_by: row.try_get::<Option<String>, _>("added_by")?.map(UserId::from_trusted),
        phone_verified_at: row.try_get::<Option<i64>, _>("phone_verified_at")?.map(Timestamp::from_unix),
        activated_at: row.try_get::<Option<i64>, _>("activated_at")?.map(Timestamp::from_unix),
        active_since: row.try_get::<Option<i64>, _>("active_since")?.map(Timestamp::from_unix),
        deregistered_at: row.try_get::<Option<i64>, _>("deregistered_at")?.map(Timestamp::from_unix),
        recovery_phone: row.try_get("recovery_phone")?,
        failed_second_factors: row.try_get("failed_second_factors")?,
    })
}

impl Tx {
    pub async fn insert_user(&mut self, u: &NewUser, now: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (id, role, organisation_id, full_name, email, phone, status, created_at, updated_at, added_by, \
             search_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)",
        )
        .bind(u.id.as_str())
        .bind(u.role.as_str())
        .bind(u.organisation_id.as_ref().map(|o| o.as_str().to_owned()))
        .bind(&u.full_name)
        .bind(u.email.as_str())
        .bind(u.phone.clone())
        .bind(u.status.as_str())
        .bind(now.unix())
        .bind(u.added_by.as_ref().map(|a| a.as_str().to_owned()))
        .bind(search_key(&u.full_name, &u.email))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn user(&mut self, id: &UserId) -> Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(&sql).bind(id.as_str()).fetch_optional(&mut *self.tx).await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn user_by_email(&mut self, email: &EmailAddress) -> Result<Option<User>> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
        let row = sqlx::query(&sql).bind(email.as_str()).fetch_optional(&mut *self.tx).await?;
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
        let rows = sqlx::query(&sql).bind(role.as_str()).fetch_all(&mut *self.tx).await?;
        rows.iter().map(from_row).collect()
    }

    /// Sets a new password, activates the account and clears the failure count.
    pub async fn set_password(&mut self, id: &UserId, password_hash: &str, now: Timestamp) -> Result<()> {
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
        sqlx::query("UPDATE users SET full_name = $1, email = $2, updated_at = $3, search_key = $5 WHERE id = $4")
            .bind(full_name)
            .bind(email.as_str())
            .bind(now.unix())
            .bind(id.as_str())
            .bind(search_key(full_name, email))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn record_sign_in(&mut self, id: &UserId, now: Timestamp) -> Result<()> {
        sqlx::query("UPDATE users SET last_sign_in_at = $1, active_since = $1, failed_sign_ins = 0, updated_at = $1 WHERE id = $2")
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
             status = CASE WHEN status = 'active' AND failed_sign_ins + 1 >= $1 THEN 'locked' ELSE status END, \
             updated_at = $2 WHERE id = $3 AND status IN ('active', 'deregistered') RETURNING failed_sign_ins, status",
        )
        .bind(limit)
        .bind(now.unix())
        .bind(id.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("status")?;
        Ok(Some((row.try_get("failed_sign_ins")?, AccountStatus::parse(&status).unwrap_or(AccountStatus::Locked))))
    }

    /// Counts a sign-in to another service (through Usher's OpenID Connect provider) as use of
    /// the account, for the inactivity rule, if it is still active.
    pub async fn record_activity(&mut self, id: &UserId, now: Timestamp) -> Result<()> {
        sqlx::query("UPDATE users SET active_since = $1, updated_at = $1 WHERE id = $2 AND status = 'active'")
            .bind(now.unix())
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Records a proven password if the account is still active and its password is still the
    /// one just checked (a change on another node in between wins); false otherwise. The
    /// sign-in itself is recorded (`record_sign_in`) once the session is full.
    /// `new_hash` replaces the stored hash when the configured cost has risen.
    pub async fn record_sign_in_if_active(
        &mut self,
        id: &UserId,
        verified_hash: &str,
        new_hash: Option<&str>,
        now: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET failed_sign_ins = 0, updated_at = $1, password_hash = COALESCE($4, password_hash) \
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

/// A person in an administrator's list, with what the list needs to show their state.
#[derive(Debug, Clone)]
pub struct UserListing {
    pub user: User,
    /// When the newest unused activation link expires (invited people only).
    pub activation_expires_at: Option<Timestamp>,
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_pattern(search: &str) -> String {
    let mut p = String::from("%");
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl Tx {
    /// The people of one organisation whose name or email contains `search` (all when empty),
    /// by name. Matching and order use the application-made `search_key`, so both engines agree.
    pub async fn users_of_organisation(
        &mut self,
        org: &OrganisationId,
        search: &str,
        limit: i64,
    ) -> Result<Vec<UserListing>> {
        self.listings(
            "organisation_id = $1 AND status <> 'deleted' AND ($2 = '' OR search_key LIKE $3 ESCAPE '\\') AND $4 = $4",
            org,
            search,
            "",
            limit,
        )
        .await
    }

    /// One person of one organisation.
    pub async fn user_listing(&mut self, org: &OrganisationId, id: &UserId) -> Result<Option<UserListing>> {
        Ok(self
            .listings(
                "organisation_id = $1 AND status <> 'deleted' AND $2 = $2 AND $3 = $3 AND id = $4",
                org,
                "",
                id.as_str(),
                1,
            )
            .await?
            .pop())
    }

    /// The administrators of one organisation.
    pub async fn administrators_of(&mut self, org: &OrganisationId) -> Result<Vec<UserListing>> {
        let role = Role::OrganisationAdministrator.as_str();
        self.listings("organisation_id = $1 AND $2 = $2 AND $3 = $3 AND role = $4", org, "", role, 1000).await
    }

    async fn listings(
        &mut self,
        filter: &str,
        org: &OrganisationId,
        search: &str,
        extra: &str,
        limit: i64,
    ) -> Result<Vec<UserListing>> {
        let sql = format!(
            "SELECT {COLUMNS}, (SELECT MAX(l.expires_at) FROM one_time_links l WHERE l.user_id = users.id \
             AND l.purpose = 'activation' AND l.used_at IS NULL) AS activation_expires_at \
             FROM users WHERE {filter} ORDER BY search_key, id LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(org.as_str())
            .bind(search.trim())
            .bind(like_pattern(search.trim()))
            .bind(extra)
            .bind(limit)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(UserListing {
                    user: from_row(r)?,
                    activation_expires_at: r
                        .try_get::<Option<i64>, _>("activation_expires_at")?
                        .map(Timestamp::from_unix),
                })
            })
            .collect()
    }

    pub async fn update_phone(&mut self, id: &UserId, phone: &str, now: Timestamp) -> Result<()> {
        sqlx::query("UPDATE users SET phone = $1, phone_verified_at = NULL, updated_at = $2 WHERE id = $3")
            .bind(phone)
            .bind(now.unix())
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Completes activation: the password is set, the mobile number is proven, and activation
    /// counts as the first sign-in. Only an invited account whose number is still the one that
    /// was confirmed can be activated.
    pub async fn activate(
        &mut self,
        id: &UserId,
        password_hash: &str,
        confirmed_phone: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2, status = 'active', activated_at = $2, \
             phone_verified_at = $2, last_sign_in_at = $2, active_since = $2, failed_sign_ins = 0, updated_at = $2 \
             WHERE id = $3 AND status = 'invited' AND phone = $4",
        )
        .bind(password_hash)
        .bind(now.unix())
        .bind(id.as_str())
        .bind(confirmed_phone)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Name and email lower-cased by Rust, for searching and sorting alike on both engines.
fn search_key(full_name: &str, email: &EmailAddress) -> String {
    format!("{} {}", full_name.to_lowercase(), email.as_str())
}

impl Tx {
    /// Records a password in the history (every password set, including the current one).
    pub async fn remember_password(&mut self, id: &UserId, password_hash: &str, now: Timestamp) -> Result<()> {
        sqlx::query("INSERT INTO password_history (user_id, password_hash, set_at) VALUES ($1, $2, $3)")
            .bind(id.as_str())
            .bind(password_hash)
            .bind(now.unix())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The newest `n` password hashes of a person, newest first.
    pub async fn recent_passwords(&mut self, id: &UserId, n: i64) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT password_hash FROM password_history WHERE user_id = $1 ORDER BY set_at DESC LIMIT $2")
                .bind(id.as_str())
                .bind(n)
                .fetch_all(&mut *self.tx)
                .await?;
        rows.iter().map(|r| r.try_get("password_hash").map_err(Into::into)).collect()
    }

    /// Forgets consecutive wrong passwords (a later correct one was given).
    pub async fn clear_failed_sign_ins(&mut self, id: &UserId) -> Result<()> {
        sqlx::query("UPDATE users SET failed_sign_ins = 0 WHERE id = $1 AND failed_sign_ins <> 0")
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Unlocks a locked account (the failure count starts again).
    pub async fn unlock(&mut self, id: &UserId, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET status = 'active', failed_sign_ins = 0, failed_second_factors = 0, updated_at = $1 WHERE id = $2 AND status = 'locked'",
        )
        .bind(now.unix())
        .bind(id.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A password set by a reset: it also unlocks the account. Only active or locked accounts.
    pub async fn reset_password(&mut self, id: &UserId, password_hash: &str, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2, status = 'active', failed_sign_ins = 0, failed_second_factors = 0, \
             updated_at = $2 WHERE id = $3 AND status IN ('active', 'locked')",
        )
        .bind(password_hash)
        .bind(now.unix())
        .bind(id.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Tx {
    /// A password change by its owner: only if the account is still active and the password is
    /// still the one they proved they know (a reset or another change on any node wins). The
    /// status is never touched, so a change cannot unlock an account.
    pub async fn change_password_if_current(
        &mut self,
        id: &UserId,
        verified: &str,
        new_hash: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2, failed_sign_ins = 0, updated_at = $2 \
             WHERE id = $3 AND status = 'active' AND password_hash = $4",
        )
        .bind(new_hash)
        .bind(now.unix())
        .bind(id.as_str())
        .bind(verified)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl crate::Store {
    /// Names of people by ID with their organisation, for showing who did what (deleted
    /// accounts are named as such).
    pub async fn user_names(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, (String, Option<String>)>> {
        let mut names = std::collections::HashMap::new();
        for chunk in ids.chunks(100) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql =
                format!("SELECT id, full_name, organisation_id FROM users WHERE id IN ({})", placeholders.join(", "));
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(&self.pool).await? {
                names.insert(row.try_get("id")?, (row.try_get("full_name")?, row.try_get("organisation_id")?));
            }
        }
        Ok(names)
    }
}
