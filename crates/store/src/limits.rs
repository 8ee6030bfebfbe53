//! Rate limits kept in the database, so every node counts against the same window.

use sqlx::Row as _;
use usher_domain::Timestamp;

use crate::{Result, Store, Tx};

/// The hits in a bucket's current fixed window, and when that window ends (when the limit
/// frees again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    pub hits: i64,
    pub resets_at: Timestamp,
}

impl Store {
    /// Counts one hit in `bucket`'s fixed window of `window_seconds`; returns the hits in the
    /// current window including this one. One statement after the insert, so concurrent hits on
    /// any node are all counted.
    pub async fn hit_rate_limit(&self, bucket: &str, window_seconds: i64, now: Timestamp) -> Result<WindowCount> {
        let mut tx = self.begin().await?;
        let hits = tx.hit_rate_limit(bucket, window_seconds, now).await?;
        tx.commit().await?;
        Ok(hits)
    }
}

impl Tx {
    /// As [`Store::hit_rate_limit`], inside a use case's transaction.
    pub async fn hit_rate_limit(&mut self, bucket: &str, window_seconds: i64, now: Timestamp) -> Result<WindowCount> {
        sqlx::query(
            "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 0) ON CONFLICT (bucket) DO NOTHING",
        )
        .bind(bucket)
        .bind(now.unix())
        .execute(&mut *self.tx)
        .await?;
        let row = sqlx::query(
            "UPDATE rate_limits SET \
             hits = CASE WHEN window_start <= $2 THEN 1 ELSE hits + 1 END, \
             window_start = CASE WHEN window_start <= $2 THEN $3 ELSE window_start END \
             WHERE bucket = $1 RETURNING hits, window_start",
        )
        .bind(bucket)
        .bind(now.unix().saturating_sub(window_seconds))
        .bind(now.unix())
        .fetch_one(&mut *self.tx)
        .await?;
        let window_start: i64 = row.try_get("window_start")?;
        Ok(WindowCount { hits: row.try_get("hits")?, resets_at: Timestamp::from_unix(window_start + window_seconds) })
    }
}

impl Store {
    /// The hits counted in `bucket`'s current window, without counting one. With no hits, the
    /// window would start now.
    pub async fn rate_limit_hits(&self, bucket: &str, window_seconds: i64, now: Timestamp) -> Result<WindowCount> {
        let row = sqlx::query("SELECT hits, window_start FROM rate_limits WHERE bucket = $1 AND window_start > $2")
            .bind(bucket)
            .bind(now.unix().saturating_sub(window_seconds))
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(WindowCount { hits: 0, resets_at: Timestamp::from_unix(now.unix() + window_seconds) });
        };
        let window_start: i64 = row.try_get("window_start")?;
        Ok(WindowCount { hits: row.try_get("hits")?, resets_at: Timestamp::from_unix(window_start + window_seconds) })
    }

    /// Forgets a bucket (after a reset or an unlock, the person starts afresh).
    pub async fn clear_rate_limit(&self, bucket: &str) -> Result<()> {
        sqlx::query("DELETE FROM rate_limits WHERE bucket = $1").bind(bucket).execute(&self.pool).await?;
        Ok(())
    }
}
