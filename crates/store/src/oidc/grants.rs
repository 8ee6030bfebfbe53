//! Grants (what one code issued) and their refresh tokens. Only hashes of refresh tokens are
//! stored; each is spent by one compare-and-set update, and revoking a grant ends the whole
//! family at once.

use sqlx::Row as _;
use sqlx::any::AnyRow;
use usher_domain::Timestamp;
use usher_domain::ids::{ClientId, GrantId, SessionId, UserId};
use usher_domain::secret::TokenHash;

use super::{opt_time, time};
use crate::{Result, Tx};

#[derive(Debug, Clone)]
pub struct Grant {
    pub id: GrantId,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub session_id: SessionId,
    /// The `sid` the client's ID tokens carry for that session.
    pub sid: String,
    pub code_hash: TokenHash,
    pub scope: String,
    pub auth_time: Timestamp,
    /// How the session was proven, in `Evidence::stored` form.
    pub evidence: String,
    pub acr: String,
    pub created_at: Timestamp,
    /// The refresh family ends here, however often it is refreshed.
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub revoked_because: Option<String>,
}

impl Grant {
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// What happened when a refresh token was presented.
#[derive(Debug)]
pub enum RefreshUse {
    Unknown,
    /// Spent now by this request.
    Spent(Grant),
    /// Spent before, at the time given: a reuse (or a retry after a lost answer).
    SpentBefore(Grant, Timestamp),
}

const COLUMNS: &str = "id, client_id, user_id, session_id, code_hash, scope, auth_time, evidence, acr, created_at, \
    expires_at, revoked_at, revoked_because, sid";

fn from_row(row: &AnyRow) -> Result<Grant> {
    Ok(Grant {
        id: GrantId::from_trusted(row.try_get("id")?),
        client_id: ClientId::from_trusted(row.try_get("client_id")?),
        user_id: UserId::from_trusted(row.try_get("user_id")?),
        session_id: SessionId::from_trusted(row.try_get("session_id")?),
        code_hash: TokenHash::from_stored(row.try_get("code_hash")?),
        scope: row.try_get("scope")?,
        auth_time: time(row, "auth_time")?,
        evidence: row.try_get("evidence")?,
        acr: row.try_get("acr")?,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
        revoked_because: row.try_get("revoked_because")?,
        sid: row.try_get("sid")?,
    })
}

impl Tx {
    /// Records a grant. Fails with a unique violation when its code issued one already.
    pub async fn insert_grant(&mut self, g: &Grant) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO oidc_grants ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(g.id.as_str())
        .bind(g.client_id.as_str())
        .bind(g.user_id.as_str())
        .bind(g.session_id.as_str())
        .bind(g.code_hash.as_str())
        .bind(&g.scope)
        .bind(g.auth_time.unix())
        .bind(&g.evidence)
        .bind(&g.acr)
        .bind(g.created_at.unix())
        .bind(g.expires_at.unix())
        .bind(g.revoked_at.map(Timestamp::unix))
        .bind(g.revoked_because.clone())
        .bind(&g.sid)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn grant(&mut self, id: &GrantId) -> Result<Option<Grant>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM oidc_grants WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Revokes one grant. False when it was revoked already.
    pub async fn revoke_grant(&mut self, id: &GrantId, because: &str, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE oidc_grants SET revoked_at = $1, revoked_because = $2 WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now.unix())
        .bind(because)
        .bind(id.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes whatever a code issued (it was presented twice). Returns the grants revoked.
    pub async fn revoke_grants_of_code(&mut self, code: &TokenHash, now: Timestamp) -> Result<Vec<GrantId>> {
        let rows = sqlx::query("SELECT id FROM oidc_grants WHERE code_hash = $1 AND revoked_at IS NULL")
            .bind(code.as_str())
            .fetch_all(&mut *self.tx)
            .await?;
        let mut revoked = Vec::new();
        for row in rows {
            let id = GrantId::from_trusted(row.try_get("id")?);
            if self.revoke_grant(&id, "code replayed", now).await? {
                revoked.push(id);
            }
        }
        Ok(revoked)
    }

    /// Revokes every live grant of a person (their sessions all ended: sign-out everywhere,
    /// lock, password reset, factor reset, deregistration, deletion). Returns how many.
    /// Whether the person has ever continued to this client (a grant, live or not).
    pub async fn has_continued_to(&mut self, user: &UserId, client: &ClientId) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM oidc_grants WHERE user_id = $1 AND client_id = $2 LIMIT 1")
            .bind(user.as_str())
            .bind(client.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.is_some())
    }

    /// Revokes every grant of a person, and spends their codes not yet exchanged (a code made
    /// just before a password reset must not become a grant after it).
    pub async fn revoke_grants_of_user(&mut self, user: &UserId, because: &str, now: Timestamp) -> Result<u64> {
        sqlx::query("UPDATE oidc_codes SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
            .bind(now.unix())
            .bind(user.as_str())
            .execute(&mut *self.tx)
            .await?;
        let done = sqlx::query(
            "UPDATE oidc_grants SET revoked_at = $1, revoked_because = $2 WHERE user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now.unix())
        .bind(because)
        .bind(user.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn insert_refresh_token(&mut self, hash: &TokenHash, grant: &GrantId, now: Timestamp) -> Result<()> {
        sqlx::query("INSERT INTO oidc_refresh_tokens (token_hash, grant_id, created_at) VALUES ($1, $2, $3)")
            .bind(hash.as_str())
            .bind(grant.as_str())
            .bind(now.unix())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Spends a refresh token: marks it spent if it was not, in one update.
    /// Spends a refresh token of `client`'s (compare-and-set). Another client's token is not
    /// spent: it is answered as unknown, so a client holding a leaked token cannot make the
    /// owner's next refresh look like a reuse.
    pub async fn spend_refresh_token(
        &mut self,
        hash: &TokenHash,
        client: &ClientId,
        now: Timestamp,
    ) -> Result<RefreshUse> {
        let owner = sqlx::query(
            "SELECT g.client_id FROM oidc_refresh_tokens r JOIN oidc_grants g ON g.id = r.grant_id WHERE r.token_hash = $1",
        )
        .bind(hash.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        match owner {
            Some(row) if row.try_get::<String, _>("client_id")? == client.as_str() => {}
            _ => return Ok(RefreshUse::Unknown),
        }
        let spent =
            sqlx::query("UPDATE oidc_refresh_tokens SET spent_at = $1 WHERE token_hash = $2 AND spent_at IS NULL")
                .bind(now.unix())
                .bind(hash.as_str())
                .execute(&mut *self.tx)
                .await?
                .rows_affected()
                == 1;
        let row = sqlx::query("SELECT grant_id, spent_at FROM oidc_refresh_tokens WHERE token_hash = $1")
            .bind(hash.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        let Some(row) = row else { return Ok(RefreshUse::Unknown) };
        let grant_id = GrantId::from_trusted(row.try_get("grant_id")?);
        let spent_at = opt_time(&row, "spent_at")?.unwrap_or(now);
        let Some(grant) = self.grant(&grant_id).await? else { return Ok(RefreshUse::Unknown) };
        Ok(if spent { RefreshUse::Spent(grant) } else { RefreshUse::SpentBefore(grant, spent_at) })
    }

    /// Spends every unspent refresh token of a grant (a retry replaces the one issued before).
    pub async fn spend_refresh_tokens_of(&mut self, grant: &GrantId, now: Timestamp) -> Result<()> {
        sqlx::query("UPDATE oidc_refresh_tokens SET spent_at = $1 WHERE grant_id = $2 AND spent_at IS NULL")
            .bind(now.unix())
            .bind(grant.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

impl Tx {
    /// The grant of a refresh token, spent or not, without spending it.
    pub async fn refresh_token_grant(&mut self, hash: &TokenHash) -> Result<Option<Grant>> {
        let row = sqlx::query("SELECT grant_id FROM oidc_refresh_tokens WHERE token_hash = $1")
            .bind(hash.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let id = GrantId::from_trusted(row.try_get("grant_id")?);
        self.grant(&id).await
    }

    /// Whether a refresh token has been spent (unknown tokens count as spent).
    pub async fn refresh_token_spent(&mut self, hash: &TokenHash) -> Result<bool> {
        let row = sqlx::query("SELECT spent_at FROM oidc_refresh_tokens WHERE token_hash = $1")
            .bind(hash.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(match row {
            Some(row) => row.try_get::<Option<i64>, _>("spent_at")?.is_some(),
            None => true,
        })
    }
}
