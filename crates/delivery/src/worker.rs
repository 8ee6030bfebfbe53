//! One pass of the outbox worker. The loop that calls it (and reads the clock) lives in the
//! application layer.

use usher_domain::Timestamp;
use usher_domain::message::Channel;
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
    /// How long a claim lasts before another worker may take the message.
    pub lease_seconds: i64,
    /// Messages claimed per pass.
    pub batch: i64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        // One message per pass: the caller reads the clock before each, so a code that expires
        // while earlier messages are being sent is dropped, and the lease (far longer than a
        // provider's timeout) cannot lapse while the message is in hand.
        Self { max_attempts: 8, first_retry_seconds: 30, max_retry_seconds: 3600, lease_seconds: 300, batch: 1 }
    }
}

impl DeliveryPolicy {
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

/// Claims the messages due at `now` and delivers each through the provider for its channel.
pub async fn deliver_due(
    store: &Store,
    email: &dyn Provider,
    sms: &dyn Provider,
    policy: &DeliveryPolicy,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    let mut outcome = Outcome::default();
    for m in store.claim_due_messages(now, policy.lease_seconds, policy.batch).await? {
        let provider = match m.message.channel {
            Channel::Email => email,
            Channel::Sms => sms,
        };
        deliver_one(store, provider, policy, &m, now, &mut outcome).await?;
    }
    Ok(outcome)
}

async fn deliver_one(
    store: &Store,
    provider: &dyn Provider,
    policy: &DeliveryPolicy,
    m: &OutboxMessage,
    now: Timestamp,
    outcome: &mut Outcome,
) -> Result<(), StoreError> {
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
        outcome.dropped += 1;
        return Ok(());
    }
    match provider.send(&m.message).await {
        Ok(()) => {
            tracing::info!(message_id = %m.id, purpose, provider = provider.name(), "message sent");
            store.finish_message(m, OutboxStatus::Sent, provider.name(), None, provider.keeps_messages(), now).await?;
            outcome.sent += 1;
        }
        Err(SendError::Transient(why)) if m.attempts + 1 < policy.max_attempts => {
            let delay = policy.backoff(m.attempts + 1);
            tracing::warn!(message_id = %m.id, purpose, provider = provider.name(), error = %why, retry_in_seconds = delay, "message not sent; will retry");
            store
                .retry_message(m, provider.name(), &why, now.plus(usher_domain::duration::Span::seconds_(delay)))
                .await?;
            outcome.retried += 1;
        }
        Err(e) => {
            tracing::error!(message_id = %m.id, purpose, provider = provider.name(), error = %e, "message could not be sent; giving up");
            store.finish_message(m, OutboxStatus::Failed, provider.name(), Some(&e.to_string()), false, now).await?;
            outcome.failed += 1;
        }
    }
    Ok(())
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
}
