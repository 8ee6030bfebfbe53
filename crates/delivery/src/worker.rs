//! One pass of the outbox worker. The loop that calls it (and reads the clock) lives in the
//! application layer.

use std::time::Duration;

use usher_domain::Timestamp;
use usher_domain::message::Channel;
use usher_domain::sealing::KeyRing;
use usher_store::{OutboxMessage, OutboxStatus, Store, StoreError};

use crate::{Provider, SendError};

#[derive(Debug, Clone, Copy)]
pub struct DeliveryPolicy {
    /// Attempts before a message is marked failed.
    pub max_attempts: i64,
    /// Delay before the first retry; doubled for each later one.
    pub first_retry_seconds: i64,
    /// The longest delay between retries.
    pub max_retry_seconds: i64,
    /// The longest one send may take, whatever the provider's own timeouts: a send still going
    /// then is abandoned and retried. The claim's lease is derived from it
    /// ([`DeliveryPolicy::lease_seconds`]).
    pub send_timeout_seconds: i64,
    /// Messages claimed per pass, and sent side by side.
    pub batch: i64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        // The messages of a pass are sent side by side, not one after another, so none waits
        // behind the others: each is checked for expiry at the moment the pass began and is
        // handed to its provider at once.
        Self { max_attempts: 8, first_retry_seconds: 30, max_retry_seconds: 3600, send_timeout_seconds: 25, batch: 32 }
    }
}

impl DeliveryPolicy {
    /// How long a claim lasts before another worker may take the message: twice the longest a
    /// send may take, and time to record the outcome. A worker that dies mid-send (kill -9)
    /// delays its messages by this much; one that is merely slow has given up on the send well
    /// before its claim lapses, so two workers never hold one message at once.
    pub fn lease_seconds(&self) -> i64 {
        self.send_timeout_seconds.max(1).saturating_mul(2).saturating_add(10)
    }

    fn send_timeout(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.send_timeout_seconds.max(1)).unwrap_or(1))
    }

    /// Delay before attempt number `attempts + 1`, given `attempts` failures so far (at least 1).
    pub fn backoff(&self, attempts: i64) -> i64 {
        let exponent = u32::try_from((attempts - 1).clamp(0, 30)).unwrap_or(30);
        self.first_retry_seconds.saturating_mul(1_i64 << exponent).min(self.max_retry_seconds)
    }
}

/// What happened to each message in a pass.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub sent: usize,
    pub dropped: usize,
    pub retried: usize,
    pub failed: usize,
}

/// The provider for each channel.
#[derive(Debug, Clone, Copy)]
pub struct Channels<'a> {
    pub email: &'a dyn Provider,
    pub sms: &'a dyn Provider,
    /// Back-channel logout tokens to services.
    pub logout: &'a dyn Provider,
}

/// Claims the messages due at `now` and delivers them side by side, each through the provider
/// for its channel, opening each sealed body with `keys` just before it is handed over.
pub async fn deliver_due(
    store: &Store,
    keys: &KeyRing,
    channels: Channels<'_>,
    policy: &DeliveryPolicy,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    let claimed = store.claim_due_messages(now, policy.lease_seconds(), policy.batch).await?;
    let sends = claimed.iter().map(|m| {
        let provider = match m.message.channel {
            Channel::Email => channels.email,
            Channel::Sms => channels.sms,
            Channel::Logout => channels.logout,
        };
        deliver_one(store, keys, provider, policy, m, now)
    });
    let mut outcome = Outcome::default();
    for result in futures_util::future::join_all(sends).await {
        match result? {
            Handled::Sent => outcome.sent += 1,
            Handled::Dropped => outcome.dropped += 1,
            Handled::Retried => outcome.retried += 1,
            Handled::Failed => outcome.failed += 1,
        }
    }
    Ok(outcome)
}

enum Handled {
    Sent,
    Dropped,
    Retried,
    Failed,
}

async fn deliver_one(
    store: &Store,
    keys: &KeyRing,
    provider: &dyn Provider,
    policy: &DeliveryPolicy,
    m: &OutboxMessage,
    now: Timestamp,
) -> Result<Handled, StoreError> {
    let purpose = m.message.purpose.as_str();
    if m.message.expires_at.is_some_and(|at| at <= now) {
        tracing::info!(message_id = %m.id, purpose, "dropping a message whose code or link has expired");
        store
            .finish_message(
                m,
                OutboxStatus::Dropped,
                provider.name(),
                Some("expired before it could be sent"),
                false,
                now,
            )
            .await?;
        return Ok(Handled::Dropped);
    }
    let opened = match m.clone().opened(keys) {
        Ok(opened) => opened,
        Err(e) => {
            // Changed in the database, or sealed under a key no longer configured: fail closed.
            tracing::error!(message_id = %m.id, purpose, error = %e, "message body could not be opened; giving up");
            store.finish_message(m, OutboxStatus::Failed, provider.name(), Some(&e.to_string()), false, now).await?;
            return Ok(Handled::Failed);
        }
    };
    let sent = tokio::time::timeout(policy.send_timeout(), provider.send(&m.id, &opened.message))
        .await
        .unwrap_or_else(|_| Err(SendError::Transient(format!("no answer within {} s", policy.send_timeout_seconds))));
    match sent {
        Ok(()) => {
            tracing::info!(message_id = %m.id, purpose, provider = provider.name(), "message sent");
            store.finish_message(m, OutboxStatus::Sent, provider.name(), None, provider.keeps_messages(), now).await?;
            Ok(Handled::Sent)
        }
        Err(SendError::Transient(why)) if m.attempts + 1 < policy.max_attempts => {
            let delay = policy.backoff(m.attempts + 1);
            tracing::warn!(message_id = %m.id, purpose, provider = provider.name(), error = %why, retry_in_seconds = delay, "message not sent; will retry");
            store
                .retry_message(m, provider.name(), &why, now.plus(usher_domain::duration::Span::seconds_(delay)))
                .await?;
            Ok(Handled::Retried)
        }
        Err(e) => {
            tracing::error!(message_id = %m.id, purpose, provider = provider.name(), error = %e, "message could not be sent; giving up");
            store.finish_message(m, OutboxStatus::Failed, provider.name(), Some(&e.to_string()), false, now).await?;
            Ok(Handled::Failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = DeliveryPolicy::default();
        assert_eq!(p.backoff(1), 30);
        assert_eq!(p.backoff(2), 60);
        assert_eq!(p.backoff(3), 120);
        assert_eq!(p.backoff(40), 3600);
        assert_eq!(p.backoff(0), 30);
    }

    #[test]
    fn a_claim_outlasts_the_longest_send_and_lapses_within_about_a_minute() {
        let p = DeliveryPolicy::default();
        assert_eq!(p.lease_seconds(), 60);
        assert!(p.lease_seconds() > 2 * p.send_timeout_seconds);
        let slow = DeliveryPolicy { send_timeout_seconds: 120, ..p };
        assert_eq!(slow.lease_seconds(), 250, "a longer send timeout lengthens the claim with it");
        let zero = DeliveryPolicy { send_timeout_seconds: 0, ..p };
        assert!(zero.lease_seconds() > zero.send_timeout().as_secs() as i64);
    }
}
