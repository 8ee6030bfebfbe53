//! What the database knows of the secret key: a check value per key (a known text sealed under
//! it), and whether anything sealed or hashed under a key exists at all.

use sqlx::Row as _;

use usher_domain::sealing::{SEALED_KEY_ID_LEN, SEALED_KEY_ID_START};

use crate::{Engine, Result, Store, Tx};

/// SQL for the ID of the key that sealed the value in `column` (see
/// [`usher_domain::sealing::sealed_key_id`]); the same in SQLite and PostgreSQL.
pub(crate) fn sealed_key_id_sql(column: &str) -> String {
    format!("substr({column}, {}, {SEALED_KEY_ID_LEN})", SEALED_KEY_ID_START + 1)
}

/// A known text sealed under one key, named by the key's public ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    pub key_id: String,
    pub sealed: String,
}

impl Store {
    /// True when the schema has reached the key checks (a database never migrated has not).
    pub async fn has_key_checks_table(&self) -> Result<bool> {
        let sql = match self.engine {
            Engine::Sqlite => "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'key_checks'",
            Engine::Postgres => {
                "SELECT COUNT(*) AS n FROM pg_tables WHERE tablename = 'key_checks' AND schemaname = current_schema()"
            }
        };
        let n: i64 = sqlx::query(sql).fetch_one(&self.pool).await?.try_get("n")?;
        Ok(n > 0)
    }
}

/// The key checks are read and written inside one transaction that holds the `key-check` lock,
/// so two servers starting at once on an empty database agree on one key.
impl Tx {
    pub async fn key_checks(&mut self) -> Result<Vec<KeyCheck>> {
        let rows = sqlx::query("SELECT key_id, sealed FROM key_checks ORDER BY created_at, key_id")
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(|r| Ok(KeyCheck { key_id: r.try_get("key_id")?, sealed: r.try_get("sealed")? })).collect()
    }

    /// Records a key's check value; a second server recording the same key at once changes nothing.
    pub async fn record_key_check(&mut self, check: &KeyCheck, now_unix: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO key_checks (key_id, sealed, created_at) VALUES ($1, $2, $3) ON CONFLICT (key_id) DO NOTHING",
        )
        .bind(&check.key_id)
        .bind(&check.sealed)
        .bind(now_unix)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// True when anything depends on a secret key: a sealed authenticator secret, a recovery
    /// code hashed under it, a sealed message body still kept, or a token signing key.
    pub async fn holds_keyed_data(&mut self) -> Result<bool> {
        let n: i64 = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM factors WHERE secret IS NOT NULL) + (SELECT COUNT(*) FROM recovery_codes) \
             + (SELECT COUNT(*) FROM outbox WHERE body_sealed = 1 AND body <> '') AS n",
        )
        .fetch_one(&mut *self.tx)
        .await?
        .try_get("n")?;
        if n > 0 || !self.has_oidc_tables().await? {
            return Ok(n > 0);
        }
        let keys: i64 =
            sqlx::query("SELECT (SELECT COUNT(*) FROM oidc_signing_keys) + (SELECT COUNT(*) FROM oidc_secrets) AS n")
                .fetch_one(&mut *self.tx)
                .await?
                .try_get("n")?;
        Ok(keys > 0)
    }

    /// The IDs of the keys that sealed data still names (a sealed value reads `v1:<key id>:…`):
    /// each must stay in the key ring until `usher keys reencrypt` has sealed it again.
    pub async fn sealing_key_ids(&mut self) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT DISTINCT {} AS k FROM factors WHERE secret IS NOT NULL \
             UNION SELECT DISTINCT {} AS k FROM outbox WHERE body_sealed = 1 AND body <> ''{} ORDER BY k",
            sealed_key_id_sql("secret"),
            sealed_key_id_sql("body"),
            if self.has_oidc_tables().await? {
                format!(" UNION {}", crate::oidc::sealed_key_ids_sql())
            } else {
                String::new()
            }
        );
        let rows = sqlx::query(&sql).fetch_all(&mut *self.tx).await?;
        rows.iter().map(|r| Ok(r.try_get("k")?)).collect()
    }

    /// Whether the schema has the provider's tables (a database not yet migrated to them, as
    /// `usher configtest` may meet after an upgrade, has not).
    async fn has_oidc_tables(&mut self) -> Result<bool> {
        let sql = match self.engine {
            Engine::Sqlite => "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'oidc_secrets'",
            Engine::Postgres => {
                "SELECT COUNT(*) AS n FROM pg_tables WHERE tablename = 'oidc_secrets' AND schemaname = current_schema()"
            }
        };
        let n: i64 = sqlx::query(sql).fetch_one(&mut *self.tx).await?.try_get("n")?;
        Ok(n > 0)
    }

    /// One sealed authenticator secret (the newest) and its owner, to try a key on.
    pub async fn a_sealed_secret(&mut self) -> Result<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT user_id, secret FROM factors WHERE secret IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| Ok((r.try_get("user_id")?, r.try_get("secret")?))).transpose()
    }
}
