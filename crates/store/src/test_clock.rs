//! The test clock's one row. Kept in the database so that every server sharing it, and the
//! `usher test-clock` command, see the same moment.

use sqlx::Row as _;

use crate::{Result, Store, Tx};

impl Store {
    pub async fn test_clock(&self) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT now FROM test_clock WHERE id = 1").fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get("now")).transpose()?)
    }
}

impl Tx {
    /// Sets the clock unless it is already set; returns the value in force.
    pub async fn start_test_clock(&mut self, now: i64) -> Result<i64> {
        sqlx::query("INSERT INTO test_clock (id, now) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        let row = sqlx::query("SELECT now FROM test_clock WHERE id = 1").fetch_one(&mut *self.tx).await?;
        Ok(row.try_get("now")?)
    }

    /// Moves the clock by `seconds` (which may not be negative); returns the new value.
    pub async fn advance_test_clock(&mut self, seconds: i64) -> Result<Option<i64>> {
        let row = sqlx::query("UPDATE test_clock SET now = now + $1 WHERE id = 1 RETURNING now")
            .bind(seconds)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.map(|r| r.try_get("now")).transpose()?)
    }

    /// Sets the clock to a moment no earlier than it shows now; returns the new value.
    pub async fn set_test_clock(&mut self, to: i64) -> Result<Option<i64>> {
        let row = sqlx::query("UPDATE test_clock SET now = $1 WHERE id = 1 AND now <= $1 RETURNING now")
            .bind(to)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.map(|r| r.try_get("now")).transpose()?)
    }
}
