//! Schema migrations, one list for both engines. Each runs in its own transaction together
//! with the row that records it, so a failure leaves nothing half-applied. Two servers starting
//! at once are serialised: SQLite by its write lock, PostgreSQL by an advisory lock.

use sqlx::{Executor as _, Row as _};

use crate::{Engine, Store, StoreError};

#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "foundation", sql: include_str!("../migrations/0001_foundation.sql") },
    Migration {
        version: 2,
        name: "organisations and activation",
        sql: include_str!("../migrations/0002_organisations_and_activation.sql"),
    },
    Migration {
        version: 3,
        name: "passwords and rate limits",
        sql: include_str!("../migrations/0003_passwords_and_rate_limits.sql"),
    },
    Migration { version: 4, name: "second factors", sql: include_str!("../migrations/0004_second_factors.sql") },
    Migration { version: 5, name: "lifecycle", sql: include_str!("../migrations/0005_lifecycle.sql") },
    Migration { version: 6, name: "notifications", sql: include_str!("../migrations/0006_notifications.sql") },
    Migration { version: 7, name: "key checks", sql: include_str!("../migrations/0007_key_checks.sql") },
    Migration {
        version: 8,
        name: "sealed outbox bodies",
        sql: include_str!("../migrations/0008_sealed_outbox_bodies.sql"),
    },
    Migration { version: 9, name: "session evidence", sql: include_str!("../migrations/0009_session_evidence.sql") },
    Migration { version: 10, name: "openid connect", sql: include_str!("../migrations/0010_openid_connect.sql") },
    Migration { version: 11, name: "logout", sql: include_str!("../migrations/0011_logout.sql") },
];

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// Arbitrary constant naming Usher's migration lock in PostgreSQL.
const PG_MIGRATION_LOCK: i64 = 0x7573_6865_725f_6d67;

impl Store {
    /// Applies every migration not yet applied; returns the versions it applied.
    pub async fn migrate(&self, now_unix: i64) -> Result<Vec<i64>, StoreError> {
        let mut applied = Vec::new();
        for m in MIGRATIONS {
            let mut tx = self.begin().await?;
            if self.engine == Engine::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *tx.tx).await?;
            }
            tx.tx.execute(CREATE_LEDGER).await?;
            let done: i64 = sqlx::query("SELECT COUNT(*) AS n FROM schema_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_one(&mut *tx.tx)
                .await?
                .try_get("n")?;
            if done > 0 {
                continue;
            }
            let fail = |source| StoreError::Migration { version: m.version, name: m.name, source };
            sqlx::raw_sql(m.sql).execute(&mut *tx.tx).await.map_err(fail)?;
            sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(m.version)
                .bind(m.name)
                .bind(now_unix)
                .execute(&mut *tx.tx)
                .await
                .map_err(fail)?;
            tx.commit().await?;
            applied.push(m.version);
        }
        let newest: Option<i64> =
            sqlx::query("SELECT MAX(version) AS v FROM schema_migrations").fetch_one(&self.pool).await?.try_get("v")?;
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        match newest {
            Some(v) if v > known => Err(StoreError::FutureSchema(v)),
            _ => Ok(applied),
        }
    }

    /// Versions recorded as applied, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        conn.execute(CREATE_LEDGER).await?;
        let rows = sqlx::query("SELECT version FROM schema_migrations ORDER BY version").fetch_all(&mut *conn).await?;
        rows.iter().map(|r| r.try_get("version").map_err(StoreError::from)).collect()
    }
}
