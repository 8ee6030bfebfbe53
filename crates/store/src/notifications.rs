//! System notifications and the progress of their mailing.

use sqlx::Row as _;
use sqlx::any::AnyRow;
use usher_domain::Timestamp;
use usher_domain::ids::UserId;

use crate::users::{COLUMNS as USER_COLUMNS, from_row as user_from_row};
use crate::{Result, Store, Tx, User};

#[derive(Debug, Clone)]
pub struct Notification {
    pub id: String,
    pub title: String,
    pub body: String,
    pub importance: String,
    pub publish_from: Timestamp,
    pub publish_until: Option<Timestamp>,
    /// Comma-separated organisation kinds; empty for everyone.
    pub audience: String,
    pub email: bool,
    pub emailed_up_to: String,
    pub emailed_done_at: Option<Timestamp>,
    pub created_by: UserId,
    pub created_at: Timestamp,
}

const COLUMNS: &str = "id, title, body, importance, publish_from, publish_until, audience, email, emailed_up_to, \
     emailed_done_at, created_by, created_at";

fn from_row(r: &AnyRow) -> Result<Notification> {
    Ok(Notification {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        body: r.try_get("body")?,
        importance: r.try_get("importance")?,
        publish_from: Timestamp::from_unix(r.try_get("publish_from")?),
        publish_until: r.try_get::<Option<i64>, _>("publish_until")?.map(Timestamp::from_unix),
        audience: r.try_get("audience")?,
        email: r.try_get::<i64, _>("email")? != 0,
        emailed_up_to: r.try_get("emailed_up_to")?,
        emailed_done_at: r.try_get::<Option<i64>, _>("emailed_done_at")?.map(Timestamp::from_unix),
        created_by: UserId::from_trusted(r.try_get("created_by")?),
        created_at: Timestamp::from_unix(r.try_get("created_at")?),
    })
}

impl Tx {
    pub async fn insert_notification(&mut self, n: &Notification) -> Result<()> {
        sqlx::query(
            "INSERT INTO notifications (id, title, body, importance, publish_from, publish_until, audience, email, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&n.id)
        .bind(&n.title)
        .bind(&n.body)
        .bind(&n.importance)
        .bind(n.publish_from.unix())
        .bind(n.publish_until.map(Timestamp::unix))
        .bind(&n.audience)
        .bind(i64::from(n.email))
        .bind(n.created_by.as_str())
        .bind(n.created_at.unix())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Ends a notification now (if it has not ended already); false when it had.
    pub async fn end_notification(&mut self, id: &str, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE notifications SET publish_until = $1, emailed_done_at = COALESCE(emailed_done_at, $1) \
             WHERE id = $2 AND (publish_until IS NULL OR publish_until > $1)",
        )
        .bind(now.unix())
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Notifications published at `now` whose mailing is not finished.
    pub async fn notifications_to_mail(&mut self, now: Timestamp) -> Result<Vec<Notification>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE email = 1 AND emailed_done_at IS NULL AND publish_from <= $1 \
             AND (publish_until IS NULL OR publish_until > $1) ORDER BY created_at, id"
        ))
        .bind(now.unix())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Moves a mailing on from `from` to `to` (the last recipient's ID), or marks it done; false
    /// when another server moved it first, in which case this batch must not be sent.
    pub async fn advance_mailing(&mut self, id: &str, from: &str, to: Option<&str>, now: Timestamp) -> Result<bool> {
        let done = match to {
            Some(to) => sqlx::query("UPDATE notifications SET emailed_up_to = $1 WHERE id = $2 AND emailed_up_to = $3")
                .bind(to)
                .bind(id)
                .bind(from)
                .execute(&mut *self.tx)
                .await?,
            None => sqlx::query(
                "UPDATE notifications SET emailed_done_at = $1 WHERE id = $2 AND emailed_up_to = $3 AND emailed_done_at IS NULL",
            )
            .bind(now.unix())
            .bind(id)
            .bind(from)
            .execute(&mut *self.tx)
            .await?,
        };
        Ok(done.rows_affected() == 1)
    }

    /// Active people (not operators) after `after` in ID order whose organisation is of one of
    /// `kinds` (every organisation when empty).
    pub async fn mailing_recipients(&mut self, kinds: &[String], after: &str, limit: i64) -> Result<Vec<User>> {
        let kinds_csv = format!(",{},", kinds.join(","));
        let sql = format!(
            "SELECT {} FROM users WHERE status = 'active' AND role <> 'operator' AND id > $1 \
             AND ($2 = ',,' OR organisation_id IN (SELECT id FROM organisations WHERE $2 LIKE '%,' || kind || ',%')) \
             ORDER BY id LIMIT $3",
            USER_COLUMNS.split(", ").map(|c| format!("users.{}", c.trim())).collect::<Vec<_>>().join(", ")
        );
        let rows = sqlx::query(&sql).bind(after).bind(kinds_csv).bind(limit).fetch_all(&mut *self.tx).await?;
        rows.iter().map(user_from_row).collect()
    }
}

impl Store {
    /// Notifications that may show at `now` (the caller applies the audience), newest first.
    pub async fn published_notifications(&self, now: Timestamp) -> Result<Vec<Notification>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE publish_from <= $1 AND (publish_until IS NULL OR publish_until > $1) \
             ORDER BY publish_from DESC, id DESC LIMIT 100"
        ))
        .bind(now.unix())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Every notification, newest first, for the operator.
    pub async fn all_notifications(&self) -> Result<Vec<Notification>> {
        let rows =
            sqlx::query(&format!("SELECT {COLUMNS} FROM notifications ORDER BY created_at DESC, id DESC LIMIT 500"))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(from_row).collect()
    }
}
