//! Authorization requests waiting for a person, and the codes they end in. A code is taken by
//! one compare-and-set update, so it works once on any number of nodes.

use sqlx::Row as _;
use sqlx::any::AnyRow;
use usher_domain::Timestamp;
use usher_domain::ids::{AuthRequestId, ClientId, SessionId, UserId};
use usher_domain::secret::TokenHash;

use super::{opt_time, time};
use crate::{Result, Tx};

/// A checked authorization request, kept while the person signs in.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub id: AuthRequestId,
    pub client_id: ClientId,
    /// The request's parameters, as the app wrote them (JSON).
    pub request: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub done_at: Option<Timestamp>,
}

/// An authorization code as stored: only its hash, and what it was bound to.
#[derive(Debug, Clone)]
pub struct StoredAuthCode {
    pub code_hash: TokenHash,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub session_id: SessionId,
    /// The `sid` the client's ID tokens carry for that session.
    pub sid: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub auth_time: Timestamp,
    /// How the session was proven, in `Evidence::stored` form.
    pub evidence: String,
    pub acr: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

/// What happened when a code was presented.
#[derive(Debug)]
pub enum CodeUse {
    /// Unknown: never issued, or already cleaned away.
    Unknown,
    /// Taken now, by this request.
    Taken(StoredAuthCode),
    /// Taken before: a replay.
    Replayed(StoredAuthCode),
}

const CODE_COLUMNS: &str = "code_hash, client_id, user_id, session_id, redirect_uri, code_challenge, scope, nonce, \
    auth_time, evidence, acr, created_at, expires_at, used_at, sid";

fn code_from_row(row: &AnyRow) -> Result<StoredAuthCode> {
    Ok(StoredAuthCode {
        code_hash: TokenHash::from_stored(row.try_get("code_hash")?),
        client_id: ClientId::from_trusted(row.try_get("client_id")?),
        user_id: UserId::from_trusted(row.try_get("user_id")?),
        session_id: SessionId::from_trusted(row.try_get("session_id")?),
        redirect_uri: row.try_get("redirect_uri")?,
        code_challenge: row.try_get("code_challenge")?,
        scope: row.try_get("scope")?,
        nonce: row.try_get("nonce")?,
        auth_time: time(row, "auth_time")?,
        evidence: row.try_get("evidence")?,
        acr: row.try_get("acr")?,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
        used_at: opt_time(row, "used_at")?,
        sid: row.try_get("sid")?,
    })
}

impl Tx {
    pub async fn insert_auth_request(&mut self, r: &AuthRequest) -> Result<()> {
        sqlx::query(
            "INSERT INTO oidc_requests (id, client_id, request, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(r.id.as_str())
        .bind(r.client_id.as_str())
        .bind(&r.request)
        .bind(r.created_at.unix())
        .bind(r.expires_at.unix())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn auth_request(&mut self, id: &AuthRequestId) -> Result<Option<AuthRequest>> {
        let row = sqlx::query(
            "SELECT id, client_id, request, created_at, expires_at, done_at FROM oidc_requests WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|row| {
            Ok(AuthRequest {
                id: AuthRequestId::from_trusted(row.try_get("id")?),
                client_id: ClientId::from_trusted(row.try_get("client_id")?),
                request: row.try_get("request")?,
                created_at: time(&row, "created_at")?,
                expires_at: time(&row, "expires_at")?,
                done_at: opt_time(&row, "done_at")?,
            })
        })
        .transpose()
    }

    /// Ends a waiting request (continued or cancelled). False when it had ended already.
    pub async fn finish_auth_request(&mut self, id: &AuthRequestId, now: Timestamp) -> Result<bool> {
        let done = sqlx::query("UPDATE oidc_requests SET done_at = $1 WHERE id = $2 AND done_at IS NULL")
            .bind(now.unix())
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_auth_code(&mut self, c: &StoredAuthCode) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO oidc_codes ({CODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(c.code_hash.as_str())
        .bind(c.client_id.as_str())
        .bind(c.user_id.as_str())
        .bind(c.session_id.as_str())
        .bind(&c.redirect_uri)
        .bind(&c.code_challenge)
        .bind(&c.scope)
        .bind(c.nonce.clone())
        .bind(c.auth_time.unix())
        .bind(&c.evidence)
        .bind(&c.acr)
        .bind(c.created_at.unix())
        .bind(c.expires_at.unix())
        .bind(c.used_at.map(Timestamp::unix))
        .bind(&c.sid)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Takes a code: marks it used if it was not, in one update.
    pub async fn take_auth_code(&mut self, hash: &TokenHash, now: Timestamp) -> Result<CodeUse> {
        let taken = sqlx::query("UPDATE oidc_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL")
            .bind(now.unix())
            .bind(hash.as_str())
            .execute(&mut *self.tx)
            .await?
            .rows_affected()
            == 1;
        let row = sqlx::query(&format!("SELECT {CODE_COLUMNS} FROM oidc_codes WHERE code_hash = $1"))
            .bind(hash.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(match row {
            None => CodeUse::Unknown,
            Some(row) if taken => CodeUse::Taken(code_from_row(&row)?),
            Some(row) => CodeUse::Replayed(code_from_row(&row)?),
        })
    }

    /// Removes requests and codes that ended before `before` (they are of no use after).
    pub async fn purge_oidc_flow(&mut self, before: Timestamp) -> Result<u64> {
        let requests = sqlx::query("DELETE FROM oidc_requests WHERE expires_at < $1")
            .bind(before.unix())
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        // A code replayed this late finds nothing, and is refused as unknown.
        let codes = sqlx::query("DELETE FROM oidc_codes WHERE expires_at < $1")
            .bind(before.unix())
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        Ok(requests + codes)
    }
}
