//! Use cases. Each public method on [`App`] is one thing a person or a job does ("set up the
//! first operator", "sign in"), run in one transaction that applies the domain's rules, changes
//! the store, queues any message in the outbox and records the audit event.

pub mod activation;
pub mod audit;
pub mod authz;
pub mod clock;
mod codes;
pub mod config;
pub mod delivery;
pub mod factors;
pub mod hashing;
pub mod key_check;
pub mod keys;
pub mod lifecycle;
mod limits;
mod links;
mod lockout;
pub mod members;
pub mod messages;
pub mod mfa;
pub mod notifications;
pub mod oidc;
pub mod operator;
pub mod organisations;
pub mod passwords;
pub mod policy;
mod reauthentication;
pub mod sessions;
pub mod sign_in;
pub mod test_clock;

use std::sync::Arc;

use usher_domain::Error;
use usher_domain::audit::clean;
use usher_store::{NewAuditEvent, Store, StoreError};

pub use clock::Clock;
pub use config::Config;
pub use hashing::Hasher;
pub use keys::SecretKey;
/// The records use cases return, for the layers above.
pub use usher_store::{FactorKind, Organisation, OutboxMessage, StoredAuditEvent, Terms, User, UserListing};

/// Everything a use case needs, cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    pub store: Store,
    pub clock: Clock,
    pub config: Arc<Config>,
    pub hasher: Hasher,
    pub secret_key: Arc<SecretKey>,
    /// The deployment's policy, from the configuration; see [`App::policy_for`] for a person's.
    pub policy: Arc<usher_domain::policy::Policy>,
}

impl App {
    pub fn new(store: Store, clock: Clock, config: Config, secret_key: SecretKey) -> Self {
        let hasher = Hasher::new(config.password_hashing, config.hashing_threads());
        let policy = Arc::new(config.policy());
        Self { store, clock, config: Arc::new(config), hasher, secret_key: Arc::new(secret_key), policy }
    }
}

/// Where a request came from, for the audit trail. Text from the request is cleaned of
/// control characters and bounded before it is stored.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl RequestContext {
    /// A context for the command line and background jobs.
    pub fn system(what: &str) -> Self {
        Self { ip: None, user_agent: Some(what.to_owned()), request_id: None }
    }

    /// An event a person caused about their own account: they are its actor and subject, and
    /// it belongs to their organisation's trail.
    pub(crate) fn person_event(&self, action: &str, outcome: &str, user: &User) -> NewAuditEvent {
        let mut event = self.event(action, outcome);
        event.actor_id = Some(user.id.to_string());
        event.subject_id = Some(user.id.to_string());
        event.organisation_id = user.organisation_id.as_ref().map(ToString::to_string);
        event
    }

    pub(crate) fn event(&self, action: &str, outcome: &str) -> NewAuditEvent {
        NewAuditEvent {
            action: action.to_owned(),
            outcome: outcome.to_owned(),
            ip: self.ip.as_deref().map(|s| clean(s, 64)),
            user_agent: self.user_agent.as_deref().map(|s| clean(s, 256)),
            request_id: self.request_id.as_deref().map(|s| clean(s, 64)),
            ..NewAuditEvent::default()
        }
    }
}

impl App {
    /// Records a refused request (a forged form, a call the caller may not make), so that
    /// authorisation failures are answerable from the audit trail.
    pub async fn audit_refusal(
        &self,
        action: &str,
        detail: &str,
        actor: Option<&usher_domain::ids::UserId>,
        ctx: &RequestContext,
        now: usher_domain::Timestamp,
    ) -> Result<(), Error> {
        let mut event = ctx.event(action, "refused");
        event.actor_id = actor.map(ToString::to_string);
        event.detail = Some(usher_domain::audit::clean_words(detail, 200));
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)
    }
}

/// Ends a use case's transaction: commits its work, and for a refusal of bad input commits the
/// audit event that records the refusal (nothing else was written before the refusal).
pub(crate) async fn commit_outcome<T>(tx: usher_store::Tx, result: Result<T, Error>) -> Result<T, Error> {
    match &result {
        Ok(_) => tx.commit().await.map_err(store_error)?,
        // A refusal (bad input, a limit reached) changes nothing but its audit event.
        Err(e) if matches!(e.code, usher_domain::ErrorCode::InvalidInput | usher_domain::ErrorCode::RateLimited) => {
            if let Err(e) = tx.commit().await {
                tracing::warn!(error = %e, "could not record a refused request in the audit trail");
            }
        }
        Err(_) => {}
    }
    result
}

/// Records an event a person caused about their own account, in the caller's transaction.
pub(crate) async fn audit_person(
    tx: &mut usher_store::Tx,
    ctx: &RequestContext,
    action: &str,
    outcome: &str,
    user: &User,
    detail: Option<String>,
    now: usher_domain::Timestamp,
) -> Result<(), Error> {
    let mut event = ctx.person_event(action, outcome, user);
    event.detail = detail;
    tx.append_audit(&event, now).await.map_err(store_error)?;
    Ok(())
}

/// Maps a storage failure to the one error type. Detail is kept for the log only.
pub(crate) fn store_error(e: StoreError) -> Error {
    if e.is_unavailable() { Error::unavailable(e) } else { Error::internal(e) }
}
