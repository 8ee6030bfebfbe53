//! Storage: one schema and one set of queries for SQLite and PostgreSQL.
//!
//! Every query is written once in the SQL the two engines share: `$1` placeholders, 64-bit
//! integers for times (Unix seconds) and counters, text for everything else. Engine-specific
//! code is confined to [`Engine`] and the migration lock. Use cases run in a [`Tx`]; on SQLite
//! a transaction takes the write lock up front (`BEGIN IMMEDIATE`) so read-then-write use cases
//! cannot fail half-way on a stale snapshot.

mod audit;
mod codes;
mod factors;
mod keys;
mod lifecycle;
mod limits;
mod links;
mod migrations;
mod notifications;
pub mod oidc;
mod organisations;
mod outbox;
mod sessions;
mod test_clock;
mod users;

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor as _, Transaction};

pub use audit::{AuditEvent, AuditFilter, NewAuditEvent, StoredAuditEvent};
pub use codes::{CodeFlow, StoredCode};
pub use factors::{Factor, FactorKind, StoredRecoveryCode};
pub use keys::KeyCheck;
pub use limits::WindowCount;
pub use links::{LinkPurpose, OneTimeLink};
pub use migrations::MIGRATIONS;
pub use notifications::Notification;
pub use organisations::{Organisation, Terms};
pub use outbox::{OutboxMessage, OutboxStatus};
pub use sessions::SessionRecord;
pub use users::{NewUser, User, UserListing};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database_url must start with sqlite: or postgres://")]
    UnsupportedUrl,
    #[error("cannot reach the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration { version: i64, name: &'static str, source: sqlx::Error },
    #[error("the database has migration {0}, which this version of Usher does not know: upgrade Usher")]
    FutureSchema(i64),
    #[error("{0}")]
    Sealing(#[from] usher_domain::sealing::Unsealable),
}

impl StoreError {
    /// True when an insert or update broke a unique constraint.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Query(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }

    /// True when the database could not be reached or a connection was lost.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Connect(_) | Self::Query(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed)
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
}

impl Store {
    /// Connects without migrating. `max_connections` bounds the pool.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let engine = Engine::from_url(url).ok_or(StoreError::UnsupportedUrl)?;
        let options: AnyConnectOptions = url.parse().map_err(StoreError::Connect)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // secure_delete: what a row held before an update or delete (a blanked
                        // outbox body, an erased person) is overwritten, not left in free pages.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(StoreError::Connect)?;
        Ok(Self { pool, engine })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Starts a read-write transaction: one per use case.
    pub async fn begin(&self) -> Result<Tx> {
        let tx = match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.pool.begin().await?,
        };
        Ok(Tx { tx, engine: self.engine })
    }

    /// Starts a transaction for reading only (on SQLite it does not take the write lock).
    pub async fn begin_read(&self) -> Result<Tx> {
        Ok(Tx { tx: self.pool.begin().await?, engine: self.engine })
    }

    /// Checks that the database answers, for `/healthz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// One transaction. Dropped without [`Tx::commit`], everything in it is rolled back.
#[derive(Debug)]
pub struct Tx {
    tx: Transaction<'static, Any>,
    engine: Engine,
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Serialises this transaction with every other one that takes the same named lock, on any
    /// node, until it ends. SQLite transactions are already serialised by `BEGIN IMMEDIATE`.
    pub async fn lock(&mut self, name: &str) -> Result<()> {
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(name).execute(&mut *self.tx).await?;
        }
        Ok(())
    }
}
