//! The services each session signed in to, and what ending a session does to them: the
//! session's grants are revoked, its codes not yet exchanged stop working, and its links to
//! services end, each once (a compare-and-set on `ended_at`), so that one logout token goes to
//! each service however many servers end the session at once.

use sqlx::Row as _;
use sqlx::any::AnyRow;
use usher_domain::Timestamp;
use usher_domain::ids::{ClientId, MessageId, SessionId, UserId};

use super::{opt_time, time};
use crate::{Result, Tx};

/// A session's sign-in to one service, as the person's pages show it.
#[derive(Debug, Clone)]
pub struct SessionService {
    pub session_id: SessionId,
    pub client_id: ClientId,
    pub client_name: String,
    pub created_at: Timestamp,
    /// True when the service has a back-channel logout address, so it hears of a sign-out.
    pub told_on_logout: bool,
}

/// A link between a session and a service that has just ended: the service is to be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedLink {
    pub session_id: SessionId,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub sid: String,
}

/// What ending sessions did: how many sessions ended, and the services they had signed in to.
/// The caller tells those services (the application queues a logout token for each).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[must_use = "the services a session signed in to must be told it ended"]
pub struct EndedSessions {
    pub sessions: u64,
    pub links: Vec<EndedLink>,
}

impl EndedSessions {
    pub fn merge(mut self, other: EndedSessions) -> Self {
        self.sessions += other.sessions;
        self.links.extend(other.links);
        self
    }
}

/// How the logout tokens to one service stand.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryCounts {
    /// Queued and not yet tried.
    pub pending: i64,
    /// Tried, failed, and to be tried again.
    pub retrying: i64,
    /// Given up after the last try.
    pub given_up: i64,
    pub delivered: i64,
}

/// One logout token sent, or being sent, to a service.
#[derive(Debug, Clone)]
pub struct LogoutDelivery {
    pub message_id: MessageId,
    pub session_ended_at: Timestamp,
    /// `pending`, `sent` or `failed` (given up), as in the outbox.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub finished_at: Option<Timestamp>,
}

fn link_from_row(row: &AnyRow) -> Result<EndedLink> {
    Ok(EndedLink {
        session_id: SessionId::from_trusted(row.try_get("session_id")?),
        client_id: ClientId::from_trusted(row.try_get("client_id")?),
        user_id: UserId::from_trusted(row.try_get("user_id")?),
        sid: row.try_get("sid")?,
    })
}

/// `$from, $from+1, ...`: placeholders for a list of `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

impl Tx {
    /// Records that a live session signed in to a service (once per session and service) and
    /// returns the `sid` its ID tokens carry: `new_sid` the first time, the same one after.
    /// None when the session has ended.
    pub async fn record_session_service(
        &mut self,
        session: &SessionId,
        client: &ClientId,
        user: &UserId,
        new_sid: &str,
        now: Timestamp,
    ) -> Result<Option<String>> {
        if self.engine == crate::Engine::Postgres {
            // Waits for an ending under way (it updates the session row first), so that a link
            // is never made live on a session that has just ended. SQLite runs one writer at once.
            sqlx::query("SELECT 1 FROM sessions WHERE id = $1 FOR SHARE")
                .bind(session.as_str())
                .fetch_optional(&mut *self.tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO oidc_session_clients (session_id, client_id, user_id, sid, created_at) \
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM sessions WHERE id = $1 AND ended_at IS NULL) \
             ON CONFLICT (session_id, client_id) DO NOTHING",
        )
        .bind(session.as_str())
        .bind(client.as_str())
        .bind(user.as_str())
        .bind(new_sid)
        .bind(now.unix())
        .execute(&mut *self.tx)
        .await?;
        let row = sqlx::query(
            "SELECT sid FROM oidc_session_clients WHERE session_id = $1 AND client_id = $2 AND ended_at IS NULL",
        )
        .bind(session.as_str())
        .bind(client.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("sid")?),
            None => None,
        })
    }

    /// Whether a live session signed in to a service with this `sid`.
    pub async fn session_has_sid(&mut self, session: &SessionId, client: &ClientId, sid: &str) -> Result<bool> {
        Ok(sqlx::query(
            "SELECT 1 FROM oidc_session_clients WHERE session_id = $1 AND client_id = $2 AND sid = $3 \
             AND ended_at IS NULL",
        )
        .bind(session.as_str())
        .bind(client.as_str())
        .bind(sid)
        .fetch_optional(&mut *self.tx)
        .await?
        .is_some())
    }

    /// What ending these sessions does to the services: their grants are revoked, their codes
    /// stop working, and their links end (each once). Called by every way a session ends.
    pub(crate) async fn sessions_ended(
        &mut self,
        sessions: &[String],
        because: &str,
        now: Timestamp,
    ) -> Result<EndedSessions> {
        let count = u64::try_from(sessions.len()).unwrap_or(u64::MAX);
        if sessions.is_empty() {
            return Ok(EndedSessions::default());
        }
        let mut links = Vec::new();
        // Bounded statements, whatever the number of sessions.
        for chunk in sessions.chunks(200) {
            // First the codes not yet exchanged: they stop working on every server whatever its
            // clock (expired since 1970), and an exchange under way is waited for (its code row is
            // locked), so that the grant it makes is there for the revocation below to find.
            let list1 = placeholders(1, chunk.len());
            let codes_sql = format!(
                "UPDATE oidc_codes SET expires_at = 0 WHERE session_id IN ({list1}) AND used_at IS NULL \
                 AND expires_at > 0"
            );
            let mut codes = sqlx::query(&codes_sql);
            for id in chunk {
                codes = codes.bind(id.as_str());
            }
            codes.execute(&mut *self.tx).await?;
            let list2 = placeholders(2, chunk.len());
            let list = placeholders(3, chunk.len());
            let revoke_sql = format!(
                "UPDATE oidc_grants SET revoked_at = $1, revoked_because = $2 \
                 WHERE session_id IN ({list}) AND revoked_at IS NULL"
            );
            let mut revoke = sqlx::query(&revoke_sql).bind(now.unix()).bind(because);
            for id in chunk {
                revoke = revoke.bind(id.as_str());
            }
            revoke.execute(&mut *self.tx).await?;
            let end_sql = format!(
                "UPDATE oidc_session_clients SET ended_at = $1 WHERE session_id IN ({list2}) AND ended_at IS NULL \
                 RETURNING session_id, client_id, user_id, sid"
            );
            let mut end = sqlx::query(&end_sql).bind(now.unix());
            for id in chunk {
                end = end.bind(id.as_str());
            }
            for row in end.fetch_all(&mut *self.tx).await? {
                links.push(link_from_row(&row)?);
            }
        }
        links.sort_by(|a, b| {
            (a.session_id.as_str(), a.client_id.as_str()).cmp(&(b.session_id.as_str(), b.client_id.as_str()))
        });
        Ok(EndedSessions { sessions: count, links })
    }

    /// Ends every live link of one service (it was disabled): each of its sessions is told.
    pub async fn end_links_of_client(&mut self, client: &ClientId, now: Timestamp) -> Result<Vec<EndedLink>> {
        let rows = sqlx::query(
            "UPDATE oidc_session_clients SET ended_at = $1 WHERE client_id = $2 AND ended_at IS NULL \
             RETURNING session_id, client_id, user_id, sid",
        )
        .bind(now.unix())
        .bind(client.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(link_from_row).collect()
    }

    /// Notes which outbox message carries the logout token of an ended link.
    pub async fn set_logout_message(&mut self, link: &EndedLink, message: &MessageId) -> Result<()> {
        sqlx::query("UPDATE oidc_session_clients SET message_id = $1 WHERE session_id = $2 AND client_id = $3")
            .bind(message.as_str())
            .bind(link.session_id.as_str())
            .bind(link.client_id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// A session moved on to a new one (password re-entered): its services, grants and codes
    /// go with it, keeping their `sid`. Codes first: an exchange under way is waited for, so
    /// that the grant it makes moves too.
    pub async fn move_session_services(&mut self, from: &SessionId, to: &SessionId) -> Result<()> {
        for sql in [
            "UPDATE oidc_codes SET session_id = $1 WHERE session_id = $2 AND used_at IS NULL",
            "UPDATE oidc_grants SET session_id = $1 WHERE session_id = $2 AND revoked_at IS NULL",
            "UPDATE oidc_session_clients SET session_id = $1 WHERE session_id = $2 AND ended_at IS NULL",
        ] {
            sqlx::query(sql).bind(to.as_str()).bind(from.as_str()).execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// The services a person's live sessions signed in to, by session, oldest first.
    pub async fn services_of_sessions(&mut self, user: &UserId) -> Result<Vec<SessionService>> {
        let rows = sqlx::query(
            "SELECT sc.session_id, sc.client_id, c.name, sc.created_at, c.backchannel_logout_uri \
             FROM oidc_session_clients sc JOIN oidc_clients c ON c.id = sc.client_id \
             WHERE sc.user_id = $1 AND sc.ended_at IS NULL ORDER BY sc.created_at, c.name",
        )
        .bind(user.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SessionService {
                    session_id: SessionId::from_trusted(row.try_get("session_id")?),
                    client_id: ClientId::from_trusted(row.try_get("client_id")?),
                    client_name: row.try_get("name")?,
                    created_at: time(row, "created_at")?,
                    told_on_logout: row.try_get::<Option<String>, _>("backchannel_logout_uri")?.is_some(),
                })
            })
            .collect()
    }

    /// Sessions whose links to services are live though the session is over: ended by a path
    /// that raced a sign-in to a service, or past its idle (`last_seen_before`) or absolute
    /// (`created_before`) timeout without anyone coming back to end it. The lifecycle job ends
    /// them so the services hear of it.
    pub async fn sessions_to_sign_out(
        &mut self,
        last_seen_before: Timestamp,
        created_before: Timestamp,
        limit: i64,
    ) -> Result<Vec<(SessionId, bool)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT s.id, s.ended_at FROM oidc_session_clients sc JOIN sessions s ON s.id = sc.session_id \
             WHERE sc.ended_at IS NULL AND (s.ended_at IS NOT NULL OR s.last_seen_at < $1 OR s.created_at < $2) \
             ORDER BY s.id LIMIT $3",
        )
        .bind(last_seen_before.unix())
        .bind(created_before.unix())
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((SessionId::from_trusted(row.try_get("id")?), row.try_get::<Option<i64>, _>("ended_at")?.is_some()))
            })
            .collect()
    }

    /// Ends a session that timed out (if it is still live and still past a timeout: another
    /// server may have just taken a request on it) or whose links outlived it, with what that
    /// does to its services. Nothing when the session turned out to be in use.
    pub async fn end_timed_out_session(
        &mut self,
        id: &SessionId,
        last_seen_before: Timestamp,
        created_before: Timestamp,
        now: Timestamp,
    ) -> Result<EndedSessions> {
        sqlx::query(
            "UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL \
             AND (last_seen_at < $3 OR created_at < $4)",
        )
        .bind(now.unix())
        .bind(id.as_str())
        .bind(last_seen_before.unix())
        .bind(created_before.unix())
        .execute(&mut *self.tx)
        .await?;
        let over = sqlx::query("SELECT 1 FROM sessions WHERE id = $1 AND ended_at IS NOT NULL")
            .bind(id.as_str())
            .fetch_optional(&mut *self.tx)
            .await?
            .is_some();
        if !over {
            return Ok(EndedSessions::default());
        }
        self.sessions_ended(&[id.as_str().to_owned()], "session timed out", now).await
    }

    /// How the logout tokens to one service stand.
    pub async fn logout_delivery_counts(&mut self, client: &ClientId) -> Result<DeliveryCounts> {
        let rows = sqlx::query(
            "SELECT o.status, o.attempts, COUNT(*) AS n FROM oidc_session_clients sc \
             JOIN outbox o ON o.id = sc.message_id WHERE sc.client_id = $1 GROUP BY o.status, o.attempts",
        )
        .bind(client.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        let mut counts = DeliveryCounts::default();
        for row in rows {
            let status: String = row.try_get("status")?;
            let attempts: i64 = row.try_get("attempts")?;
            let n: i64 = row.try_get("n")?;
            match status.as_str() {
                "pending" if attempts == 0 => counts.pending += n,
                "pending" => counts.retrying += n,
                "sent" => counts.delivered += n,
                _ => counts.given_up += n,
            }
        }
        Ok(counts)
    }

    /// The newest logout tokens to one service that are not yet delivered, or were given up.
    pub async fn undelivered_logouts(&mut self, client: &ClientId, limit: i64) -> Result<Vec<LogoutDelivery>> {
        let rows = sqlx::query(
            "SELECT o.id, sc.ended_at, o.status, o.attempts, o.next_attempt_at, o.last_error, o.finished_at \
             FROM oidc_session_clients sc JOIN outbox o ON o.id = sc.message_id \
             WHERE sc.client_id = $1 AND o.status <> 'sent' ORDER BY sc.ended_at DESC, o.id DESC LIMIT $2",
        )
        .bind(client.as_str())
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LogoutDelivery {
                    message_id: MessageId::from_trusted(row.try_get("id")?),
                    session_ended_at: time(row, "ended_at")?,
                    status: row.try_get("status")?,
                    attempts: row.try_get("attempts")?,
                    next_attempt_at: time(row, "next_attempt_at")?,
                    last_error: row.try_get("last_error")?,
                    finished_at: opt_time(row, "finished_at")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_from_the_first_free_one() {
        assert_eq!(placeholders(3, 2), "$3, $4");
        assert_eq!(placeholders(1, 1), "$1");
    }
}
