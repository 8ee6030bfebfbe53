//! Fresh databases and the accounts, factors and sessions a benchmark needs, written straight
//! into Usher's schema (after `usher migrate`), a whole range at a time. Every account shares
//! one password hash: a benchmark needs the cost of checking it, not a million distinct salts.

use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use usher_app::keys::SecretKey;
use usher_domain::secret::Token;

/// The password every benchmark account has.
pub const PASSWORD: &str = "correct horse battery staple 42";

/// The one organisation every benchmark account belongs to.
pub const ORGANISATION_ID: &str = "b0000000000000000000000000000001";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// Makes an empty database called `name` and returns its URL: a file under `dir` for SQLite,
/// a database on the server at `postgres_base` (dropped first if it exists) for PostgreSQL.
pub async fn fresh_database(engine: Engine, dir: &Path, postgres_base: &str, name: &str) -> anyhow::Result<String> {
    match engine {
        Engine::Sqlite => {
            for suffix in ["", "-wal", "-shm"] {
                let path = dir.join(format!("{name}.db{suffix}"));
                if path.exists() {
                    std::fs::remove_file(&path)?;
                }
            }
            Ok(format!("sqlite://{}?mode=rwc", dir.join(format!("{name}.db")).display()))
        }
        Engine::Postgres => {
            let admin = connect(&format!("{postgres_base}/postgres")).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin).await?;
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await?;
            admin.close().await;
            Ok(format!("{postgres_base}/{name}"))
        }
    }
}

/// Drops a PostgreSQL database made by [`fresh_database`]; SQLite files stay with the run.
pub async fn drop_database(engine: Engine, postgres_base: &str, name: &str) -> anyhow::Result<()> {
    if engine == Engine::Postgres {
        let admin = connect(&format!("{postgres_base}/postgres")).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin).await?;
        admin.close().await;
    }
    Ok(())
}

pub async fn connect(url: &str) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new().max_connections(2).connect(url).await.with_context(|| format!("cannot connect to {url}"))
}

/// An account's ID: its number in 32 hex digits, as Usher's IDs are.
pub fn user_id(i: u64) -> String {
    format!("{i:032x}")
}

pub fn email(i: u64) -> String {
    format!("bench{i}@bench.test")
}

/// The authenticator secret of account `i`, known to the load generator (and to the peer's seed).
pub fn totp_secret(i: u64) -> Vec<u8> {
    Sha256::digest(format!("usher-bench-totp-{i}").as_bytes())[..20].to_vec()
}

/// The session token of account `i` at `stage`: 32 bytes in URL-safe base64, as Usher issues.
pub fn session_token(stage: &str, i: u64) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("usher-bench-session-{stage}-{i}").as_bytes()))
}

/// The organisation, with the service's own second-factor rules.
pub async fn organisation(pool: &AnyPool, now: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO organisations (id, name, name_key, kind, email_domains, created_at) \
         VALUES ($1, 'Bench Chambers', 'bench chambers', 'chambers', '', $2)",
    )
    .bind(ORGANISATION_ID)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Active accounts `from..to`, all with `password_hash`, signed in last at `active_since`.
pub async fn accounts(
    pool: &AnyPool,
    engine: Engine,
    (from, to): (u64, u64),
    password_hash: &str,
    now: i64,
    active_since: i64,
) -> anyhow::Result<()> {
    if from >= to {
        return Ok(());
    }
    let (series, id) = match engine {
        Engine::Postgres => {
            ("SELECT i FROM generate_series($1::bigint, $2::bigint) AS s(i)", "lpad(to_hex(i), 32, '0')")
        }
        Engine::Sqlite => (
            "WITH RECURSIVE s(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM s WHERE i < $2) SELECT i FROM s",
            "printf('%032x', i)",
        ),
    };
    let sql = format!(
        "INSERT INTO users (id, role, organisation_id, full_name, email, status, password_hash, password_changed_at, \
         created_at, updated_at, phone_verified_at, activated_at, search_key, active_since) \
         SELECT {id}, 'user', $3, 'Bench Person ' || i, 'bench' || i || '@bench.test', 'active', $4, $5, \
         $5, $5, $5, $5, 'bench person ' || i || ' bench' || i || '@bench.test', $6 FROM ({series}) AS n"
    );
    let to_inclusive = i64::try_from(to)? - 1;
    sqlx::query(&sql)
        .bind(i64::try_from(from)?)
        .bind(to_inclusive)
        .bind(ORGANISATION_ID)
        .bind(password_hash)
        .bind(now)
        .bind(active_since)
        .execute(pool)
        .await
        .context("seeding accounts")?;
    Ok(())
}

/// Rows per multi-row insert: well under SQLite's limit on bound values.
const ROWS_PER_INSERT: u64 = 400;

/// A confirmed authenticator app for each account `from..to`, its secret sealed as Usher seals.
pub async fn authenticator_apps(pool: &AnyPool, key: &SecretKey, range: (u64, u64), now: i64) -> anyhow::Result<()> {
    let into = "factors (id, user_id, kind, secret, created_at, confirmed_at)";
    insert_rows(pool, into, 6, range, |i| {
        let user = user_id(i);
        let sealed = key.seal(&totp_secret(i), &user).map_err(|e| anyhow::anyhow!("{e}"))?;
        let id = format!("{:032x}", (1u128 << 124) + u128::from(i));
        Ok(vec![Text(id), Text(user), Text("app".into()), Text(sealed), Int(now), Int(now)])
    })
    .await
    .context("seeding authenticator apps")
}

/// A live session at `stage` (`full` or `second_factor`) for each account `from..to`.
pub async fn sessions(pool: &AnyPool, stage: &str, range: (u64, u64), now: i64) -> anyhow::Result<()> {
    // Session IDs differ by stage, so both kinds can be seeded for the same accounts.
    let id_base: u128 = if stage == "full" { 2u128 << 124 } else { 3u128 << 124 };
    let into = "sessions (token_hash, id, user_id, created_at, last_seen_at, stage)";
    insert_rows(pool, into, 6, range, |i| {
        let token = Token::parse(&session_token(stage, i)).ok_or_else(|| anyhow::anyhow!("not a token"))?;
        let id = format!("{:032x}", id_base + u128::from(i));
        Ok(vec![
            Text(token.hash().as_str().to_owned()),
            Text(id),
            Text(user_id(i)),
            Int(now),
            Int(now),
            Text(stage.into()),
        ])
    })
    .await
    .context("seeding sessions")
}

/// A value of a seeded row.
enum Value {
    Text(String),
    Int(i64),
}
use Value::{Int, Text};

/// Inserts `row(i)` for each `i` in `from..to` into `into` (a table and its `columns` columns),
/// many rows per statement, in one transaction.
async fn insert_rows(
    pool: &AnyPool,
    into: &str,
    columns: u64,
    (from, to): (u64, u64),
    row: impl Fn(u64) -> anyhow::Result<Vec<Value>>,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let mut start = from;
    while start < to {
        let end = (start + ROWS_PER_INSERT).min(to);
        let sql = format!("INSERT INTO {into} VALUES {}", placeholders(end - start, columns).join(", "));
        let mut query = sqlx::query(&sql);
        for i in start..end {
            for value in row(i)? {
                query = match value {
                    Text(text) => query.bind(text),
                    Int(number) => query.bind(number),
                };
            }
        }
        query.execute(&mut *tx).await?;
        start = end;
    }
    tx.commit().await?;
    Ok(())
}

/// `rows` groups of `columns` numbered placeholders: `($1, $2), ($3, $4)`.
fn placeholders(rows: u64, columns: u64) -> Vec<String> {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=columns).map(|c| format!("${}", r * columns + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect()
}
