//! The outbox: messages written in the same transaction as the change that causes them, and
//! claimed for delivery with a compare-and-set lease so two servers never send one message twice
//! at the same time.
//!
//! A body may carry a code or a one-time link, so it is sealed under the secret key before it
//! is written, bound to the message's ID (S35): what this module reads back is sealed until
//! [`OutboxMessage::opened`]. Subjects are fixed wording and never carry a code or link (see
//! the application's messages), so they stay readable for `usher outbox list`.

use sqlx::Row as _;
use sqlx::any::AnyRow;
use usher_domain::Timestamp;
use usher_domain::ids::MessageId;
use usher_domain::message::{Channel, OutgoingMessage};
use usher_domain::sealing::{KeyRing, Unsealable};

use crate::{Result, Store, StoreError, Tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxStatus {
    Pending,
    Sent,
    /// Not sent because what it carried had expired.
    Dropped,
    /// Given up after the last retry.
    Failed,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Dropped => "dropped",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "sent" => Some(Self::Sent),
            "dropped" => Some(Self::Dropped),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub id: MessageId,
    /// As stored: its body sealed (see [`OutboxMessage::body_sealed`]) until opened.
    pub message: OutgoingMessage,
    /// True while `message.body` holds the sealed text rather than the body itself.
    pub body_sealed: bool,
    pub created_at: Timestamp,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    /// Set while a worker holds the message; needed to record the outcome.
    pub claim_token: Option<String>,
    pub provider: Option<String>,
    pub last_error: Option<String>,
    pub finished_at: Option<Timestamp>,
}

const COLUMNS: &str = "id, channel, purpose, recipient, subject, body, body_sealed, created_at, expires_at, status, \
     attempts, next_attempt_at, claim_token, provider, last_error, finished_at";

/// What a sealed body is bound to: its own message, so a sealed body copied into another row
/// does not open there (nor as anything else sealed under the key).
fn body_binding(id: &MessageId) -> String {
    format!("outbox-body:{id}")
}

fn seal_body(keys: &KeyRing, id: &MessageId, body: &str) -> Result<String, Unsealable> {
    keys.seal(body.as_bytes(), &body_binding(id))
}

impl OutboxMessage {
    /// The message with its body opened, for the provider or the dev mailbox. A blanked body
    /// stays blank; a body stored before sealing began is returned as it is.
    pub fn opened(mut self, keys: &KeyRing) -> Result<Self, Unsealable> {
        if self.body_sealed && !self.message.body.is_empty() {
            let plain = keys.open(&self.message.body, &body_binding(&self.id))?;
            self.message.body = String::from_utf8(plain).map_err(|_| Unsealable::damaged())?;
        }
        self.body_sealed = false;
        Ok(self)
    }
}

fn from_row(row: &AnyRow) -> Result<OutboxMessage> {
    let corrupt = |what: &str| StoreError::Query(sqlx::Error::Decode(format!("unknown {what} in outbox").into()));
    let channel: String = row.try_get("channel")?;
    let status: String = row.try_get("status")?;
    Ok(OutboxMessage {
        id: MessageId::from_trusted(row.try_get("id")?),
        message: OutgoingMessage {
            channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel"))?,
            purpose: row.try_get("purpose")?,
            recipient: row.try_get("recipient")?,
            subject: row.try_get("subject")?,
            body: row.try_get("body")?,
            expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(Timestamp::from_unix),
        },
        body_sealed: row.try_get::<i64, _>("body_sealed")? != 0,
        created_at: Timestamp::from_unix(row.try_get("created_at")?),
        status: OutboxStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: Timestamp::from_unix(row.try_get("next_attempt_at")?),
        claim_token: row.try_get("claim_token")?,
        provider: row.try_get("provider")?,
        last_error: row.try_get("last_error")?,
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(Timestamp::from_unix),
    })
}

/// An ID that sorts in the order messages were queued: the time, then a per-process counter
/// (several messages share a second, and the test clock stands still), then randomness so two
/// servers never collide.
fn ordered_message_id(now: Timestamp) -> MessageId {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let random = MessageId::generate();
    let text = format!(
        "{:012x}{:08x}{}",
        now.unix().clamp(0, 0xffff_ffff_ffff),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        random.as_str().get(..12).unwrap_or("000000000000")
    );
    MessageId::from_trusted(text)
}

impl Tx {
    /// How many messages were queued to one recipient since a moment: for caps on texts.
    pub async fn count_messages_to(&mut self, recipient: &str, since: Timestamp) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE recipient = $1 AND created_at >= $2")
            .bind(recipient)
            .bind(since.unix())
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Queues a message, its body sealed under `keys`; it is sent only if the surrounding
    /// transaction commits.
    pub async fn enqueue(&mut self, m: &OutgoingMessage, keys: &KeyRing, now: Timestamp) -> Result<MessageId> {
        let id = ordered_message_id(now);
        let body = seal_body(keys, &id, &m.body)?;
        sqlx::query(
            "INSERT INTO outbox (id, channel, purpose, recipient, subject, body, body_sealed, created_at, expires_at, \
             status, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $7)",
        )
        .bind(id.as_str())
        .bind(m.channel.as_str())
        .bind(&m.purpose)
        .bind(&m.recipient)
        .bind(&m.subject)
        .bind(&body)
        .bind(now.unix())
        .bind(m.expires_at.map(Timestamp::unix))
        .bind(OutboxStatus::Pending.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(id)
    }
}

impl Store {
    /// Claims up to `limit` messages that are due, each for `lease_seconds`, in one statement.
    /// A message whose lease lapsed (its worker died) becomes claimable again. The claim is a
    /// compare-and-set: of two workers racing for a message, one gets it; on PostgreSQL each
    /// skips the rows the other is claiming instead of waiting for them.
    pub async fn claim_due_messages(
        &self,
        now: Timestamp,
        lease_seconds: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>> {
        let skip_locked = match self.engine {
            crate::Engine::Postgres => " FOR UPDATE SKIP LOCKED",
            crate::Engine::Sqlite => "",
        };
        let token = MessageId::generate().to_string();
        let sql = format!(
            "UPDATE outbox SET claim_token = $1, claimed_until = $2 WHERE id IN (\
             SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $3 \
             AND (claimed_until IS NULL OR claimed_until < $3) ORDER BY next_attempt_at, created_at LIMIT $4{skip_locked}) \
             AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < $3) RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(&token)
            .bind(now.unix().saturating_add(lease_seconds))
            .bind(now.unix())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut claimed = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        // RETURNING gives no order: deliver the oldest first.
        claimed.sort_by(|a, b| {
            (a.next_attempt_at, a.created_at, a.id.as_str()).cmp(&(b.next_attempt_at, b.created_at, b.id.as_str()))
        });
        Ok(claimed)
    }

    /// Records the outcome of a claimed message. `keep_body` is true only for the dev mailbox:
    /// once a real provider has the message, the stored copy of a code or link is erased.
    pub async fn finish_message(
        &self,
        m: &OutboxMessage,
        status: OutboxStatus,
        provider: &str,
        error: Option<&str>,
        keep_body: bool,
        now: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET status = $1, provider = $2, last_error = $3, finished_at = $4, attempts = attempts + 1, \
             body = CASE WHEN $5 = 1 THEN body ELSE '' END, claim_token = NULL, claimed_until = NULL \
             WHERE id = $6 AND claim_token = $7",
        )
        .bind(status.as_str())
        .bind(provider)
        .bind(error)
        .bind(now.unix())
        .bind(i64::from(keep_body))
        .bind(m.id.as_str())
        .bind(m.claim_token.clone())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts a claimed message back for another try at `next_attempt_at`.
    pub async fn retry_message(
        &self,
        m: &OutboxMessage,
        provider: &str,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, provider = $1, last_error = $2, next_attempt_at = $3, \
             claim_token = NULL, claimed_until = NULL WHERE id = $4 AND claim_token = $5",
        )
        .bind(provider)
        .bind(error)
        .bind(next_attempt_at.unix())
        .bind(m.id.as_str())
        .bind(m.claim_token.clone())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Seals the bodies of messages stored before sealing began (migration 8), up to `limit`
    /// of them; returns how many. On SQLite the write-ahead log is then emptied, so the old
    /// text survives neither in the file's free pages (secure_delete) nor in the log.
    pub async fn seal_plain_outbox_bodies(&self, keys: &KeyRing, limit: i64) -> Result<u64> {
        let rows = sqlx::query("SELECT id, body FROM outbox WHERE body_sealed = 0 AND body <> '' ORDER BY id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut sealed = 0;
        for row in rows {
            let id = MessageId::from_trusted(row.try_get("id")?);
            let body: String = row.try_get("body")?;
            let done = sqlx::query(
                "UPDATE outbox SET body = $1, body_sealed = 1 WHERE id = $2 AND body_sealed = 0 AND body = $3",
            )
            .bind(seal_body(keys, &id, &body)?)
            .bind(id.as_str())
            .bind(&body)
            .execute(&self.pool)
            .await?;
            sealed += done.rows_affected();
        }
        if sealed > 0 && self.engine == crate::Engine::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await?;
        }
        Ok(sealed)
    }

    /// Seals again under the current key, up to `limit` of them, the kept bodies sealed under an
    /// older key (after a rotation), taking those with IDs after `after`. Returns how many were
    /// sealed again, how many no configured key opens (those are left alone) and the last ID
    /// looked at (None: there were no more).
    pub async fn reseal_stale_outbox_bodies(
        &self,
        keys: &KeyRing,
        after: &str,
        limit: i64,
    ) -> Result<(u64, u64, Option<String>)> {
        let sql = format!(
            "SELECT id, body FROM outbox WHERE body_sealed = 1 AND body <> '' AND {} <> $1 AND id > $2 \
             ORDER BY id LIMIT $3",
            crate::keys::sealed_key_id_sql("body")
        );
        let rows = sqlx::query(&sql).bind(keys.current_id()).bind(after).bind(limit).fetch_all(&self.pool).await?;
        let (mut resealed, mut unopenable, mut last) = (0, 0, None);
        for row in rows {
            let id = MessageId::from_trusted(row.try_get("id")?);
            last = Some(id.as_str().to_owned());
            let old: String = row.try_get("body")?;
            let Ok(plain) = keys.open(&old, &body_binding(&id)) else {
                unopenable += 1;
                continue;
            };
            let plain = String::from_utf8(plain).map_err(|_| Unsealable::damaged())?;
            let done = sqlx::query("UPDATE outbox SET body = $1 WHERE id = $2 AND body_sealed = 1 AND body = $3")
                .bind(seal_body(keys, &id, &plain)?)
                .bind(id.as_str())
                .bind(&old)
                .execute(&self.pool)
                .await?;
            resealed += done.rows_affected();
        }
        Ok((resealed, unopenable, last))
    }

    /// How many messages wait in the outbox to be delivered (the dev mailbox says so while its
    /// newest messages are on their way).
    pub async fn pending_messages(&self) -> Result<i64> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'").fetch_one(&self.pool).await?;
        Ok(row.try_get("n")?)
    }

    /// The newest messages the dev mailbox delivered (and so kept), newest first.
    pub async fn dev_mailbox_messages(&self, limit: i64) -> Result<Vec<OutboxMessage>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE provider = 'dev' AND status = 'sent' ORDER BY created_at DESC, id DESC LIMIT $1"
        );
        let rows = sqlx::query(&sql).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }

    /// The newest messages first, for `usher outbox list`.
    pub async fn recent_messages(&self, limit: i64) -> Result<Vec<OutboxMessage>> {
        let sql = format!("SELECT {COLUMNS} FROM outbox ORDER BY created_at DESC, id DESC LIMIT $1");
        let rows = sqlx::query(&sql).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(from_row).collect()
    }
}
