//! The keys that sign tokens, sealed under the secret key, and the provider's other sealed
//! secrets. A key is published from its creation; it signs only once `signs_from` is set (the
//! next key waits, published, so caches hold it before it is used); a retired key stays
//! published until `unpublish_at`, when every token it signed has expired.

use sqlx::Row as _;
use sqlx::any::AnyRow;
use usher_domain::Timestamp;
use usher_domain::oidc::SigningAlg;

use super::{decode_error, opt_time, time};
use crate::keys::sealed_key_id_sql;
use crate::{Result, Tx};

#[derive(Debug, Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: SigningAlg,
    /// The private key (PKCS#8), sealed.
    pub private_key: String,
    /// The public key as a JWK (JSON).
    pub public_jwk: String,
    pub created_at: Timestamp,
    pub signs_from: Option<Timestamp>,
    pub retired_at: Option<Timestamp>,
    pub unpublish_at: Option<Timestamp>,
}

const COLUMNS: &str = "kid, alg, private_key, public_jwk, created_at, signs_from, retired_at, unpublish_at";

fn from_row(row: &AnyRow) -> Result<SigningKeyRecord> {
    let alg: String = row.try_get("alg")?;
    Ok(SigningKeyRecord {
        kid: row.try_get("kid")?,
        alg: SigningAlg::parse(&alg).ok_or_else(|| decode_error("signing key algorithm"))?,
        private_key: row.try_get("private_key")?,
        public_jwk: row.try_get("public_jwk")?,
        created_at: time(row, "created_at")?,
        signs_from: opt_time(row, "signs_from")?,
        retired_at: opt_time(row, "retired_at")?,
        unpublish_at: opt_time(row, "unpublish_at")?,
    })
}

impl Tx {
    pub async fn insert_signing_key(&mut self, k: &SigningKeyRecord) -> Result<()> {
        sqlx::query(&format!("INSERT INTO oidc_signing_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
            .bind(&k.kid)
            .bind(k.alg.as_str())
            .bind(&k.private_key)
            .bind(&k.public_jwk)
            .bind(k.created_at.unix())
            .bind(k.signs_from.map(Timestamp::unix))
            .bind(k.retired_at.map(Timestamp::unix))
            .bind(k.unpublish_at.map(Timestamp::unix))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Every key of `alg` not yet unpublished at `now`, oldest first.
    pub async fn signing_keys(&mut self, alg: Option<SigningAlg>, now: Timestamp) -> Result<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM oidc_signing_keys WHERE (unpublish_at IS NULL OR unpublish_at > $1) \
             AND ($2 = '' OR alg = $2) ORDER BY created_at, kid"
        ))
        .bind(now.unix())
        .bind(alg.map_or("", SigningAlg::as_str))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The key of `alg` that signs now: the newest one with `signs_from` set and not retired.
    pub async fn active_signing_key(&mut self, alg: SigningAlg) -> Result<Option<SigningKeyRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM oidc_signing_keys WHERE alg = $1 AND signs_from IS NOT NULL AND retired_at IS NULL \
             ORDER BY signs_from DESC, kid LIMIT 1"
        ))
        .bind(alg.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Retires the active key of `alg` (still published until `unpublish_at`) and lets `next`
    /// sign from `now`. False when another node rotated first (the active key is not `active`).
    pub async fn promote_signing_key(
        &mut self,
        active: &str,
        next: &str,
        unpublish_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let retired = sqlx::query(
            "UPDATE oidc_signing_keys SET retired_at = $1, unpublish_at = $2 WHERE kid = $3 AND retired_at IS NULL",
        )
        .bind(now.unix())
        .bind(unpublish_at.unix())
        .bind(active)
        .execute(&mut *self.tx)
        .await?;
        if retired.rows_affected() != 1 {
            return Ok(false);
        }
        let promoted = sqlx::query(
            "UPDATE oidc_signing_keys SET signs_from = $1 WHERE kid = $2 AND signs_from IS NULL AND retired_at IS NULL",
        )
        .bind(now.unix())
        .bind(next)
        .execute(&mut *self.tx)
        .await?;
        Ok(promoted.rows_affected() == 1)
    }

    /// Replaces a key's sealed private part after a secret-key rotation, if unchanged since read.
    pub async fn reseal_signing_key(&mut self, kid: &str, old: &str, new: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE oidc_signing_keys SET private_key = $1 WHERE kid = $2 AND private_key = $3")
            .bind(new)
            .bind(kid)
            .bind(old)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every signing key, for resealing.
    pub async fn all_signing_keys(&mut self) -> Result<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM oidc_signing_keys ORDER BY created_at, kid"))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// A sealed provider secret by name.
    pub async fn oidc_secret(&mut self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT sealed FROM oidc_secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| Ok(r.try_get("sealed")?)).transpose()
    }

    /// Stores a sealed provider secret unless one of that name exists (another node made it).
    pub async fn insert_oidc_secret(&mut self, name: &str, sealed: &str, now: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO oidc_secrets (name, sealed, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(sealed)
        .bind(now.unix())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn reseal_oidc_secret(&mut self, name: &str, old: &str, new: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE oidc_secrets SET sealed = $1 WHERE name = $2 AND sealed = $3")
            .bind(new)
            .bind(name)
            .bind(old)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every (name, sealed) provider secret, for resealing.
    pub async fn all_oidc_secrets(&mut self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT name, sealed FROM oidc_secrets ORDER BY name").fetch_all(&mut *self.tx).await?;
        rows.iter().map(|r| Ok((r.try_get("name")?, r.try_get("sealed")?))).collect()
    }
}

/// The key IDs named by the provider's sealed values, for the key check.
pub(crate) fn sealed_key_ids_sql() -> String {
    format!(
        "SELECT DISTINCT {} AS k FROM oidc_signing_keys UNION SELECT DISTINCT {} AS k FROM oidc_secrets",
        sealed_key_id_sql("private_key"),
        sealed_key_id_sql("sealed")
    )
}
