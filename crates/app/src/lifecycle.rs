//! The account lifecycle jobs: reminders before deregistration, deregistration of accounts
//! unused for 90 days, deletion 28 days later unless reregistered, and reregistration by an
//! administrator. The jobs run in `usher serve` on a schedule and with `usher lifecycle run`;
//! they work in short batches and are correct with several servers running them at once.

use std::time::Duration;

use usher_domain::Timestamp;
use usher_domain::duration::Span;
use usher_domain::{Error, ErrorCode};
use usher_store::{NewAuditEvent, Tx, User, UserListing};

use crate::authz::OrganisationAdmin;
use crate::{App, RequestContext, messages, store_error};

/// Accounts handled per transaction: short enough that no lock is held for long.
const BATCH: i64 = 50;

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LifecycleReport {
    pub reminded: u64,
    pub deregistered: u64,
    pub deleted: u64,
    /// Notification emails queued.
    pub notified: u64,
    /// Sessions past a timeout whose services were told they are over.
    pub signed_out: u64,
}

fn system() -> RequestContext {
    RequestContext::system("lifecycle job")
}

fn event(action: &str, user: &User, detail: Option<String>) -> NewAuditEvent {
    let mut event = system().event(action, "success");
    event.subject_id = Some(user.id.to_string());
    event.organisation_id = user.organisation_id.as_ref().map(ToString::to_string);
    event.detail = detail;
    event
}

/// Appends a batch's audit events and commits. The events go last, so the audit trail's one
/// head row is locked only for the moment before the commit, not while the batch is worked.
async fn finish_batch(mut tx: Tx, events: Vec<NewAuditEvent>, now: Timestamp) -> Result<(), Error> {
    for e in &events {
        tx.append_audit(e, now).await.map_err(store_error)?;
    }
    tx.commit().await.map_err(store_error)
}

/// Whether the scheduled jobs run now: at the first look, then every `every` on the real
/// clock; on the test clock whenever it has moved since the last run (it only moves when told,
/// so a test sees the jobs run promptly after it moves the clock).
fn jobs_due(on_test_clock: bool, last_run: Option<Timestamp>, now: Timestamp, every: Span) -> bool {
    match last_run {
        None => true,
        Some(last) if on_test_clock => now != last,
        Some(last) => now >= last.plus(every),
    }
}

/// How long the job loop sleeps between looks at the clock.
fn wake_every(on_test_clock: bool, every: Span) -> Duration {
    if on_test_clock { Duration::from_secs(1) } else { Duration::from_secs(every.seconds().unsigned_abs()) }
}

impl App {
    /// Runs every lifecycle job once: deletions, then deregistrations, then reminders.
    pub async fn run_lifecycle(&self, now: Timestamp) -> Result<LifecycleReport, Error> {
        let policy = self.config.lifecycle.policy();
        let longest_reminder = policy.reminders.iter().map(|r| r.seconds()).max().unwrap_or(0);
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let earliest =
            now.minus(policy.deregister_after).plus(usher_domain::duration::Span::seconds_(longest_reminder));
        tx.start_missing_stretches(earliest).await.map_err(store_error)?;
        tx.purge_rate_limits(now.minus(usher_domain::duration::Span::days(2))).await.map_err(store_error)?;
        // Sign-in requests and codes of other services once they have expired (a day kept, to
        // see what a service tried), and client assertion IDs once they could not be replayed.
        tx.purge_oidc_flow(now.minus(usher_domain::duration::Span::days(1))).await.map_err(store_error)?;
        tx.purge_assertion_ids(now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(LifecycleReport {
            deleted: self.delete_expired_accounts(now).await?,
            deregistered: self.deregister_unused_accounts(now).await?,
            reminded: self.remind_unused_accounts(now).await?,
            notified: self.send_notification_emails(now).await?,
            signed_out: self.sign_out_timed_out_sessions(now).await?,
        })
    }

    /// Runs the jobs every `lifecycle.run_every`, for `usher serve`.
    pub async fn run_lifecycle_jobs(self) {
        let every = self.config.lifecycle.run_every;
        let on_test_clock = self.clock.is_test();
        let mut last_run: Option<Timestamp> = None;
        loop {
            match self.clock.now().await {
                Ok(now) if jobs_due(on_test_clock, last_run, now, every) => {
                    last_run = Some(now);
                    match self.run_lifecycle(now).await {
                        Ok(r) if r != LifecycleReport::default() => tracing::info!(
                            reminded = r.reminded,
                            deregistered = r.deregistered,
                            deleted = r.deleted,
                            notified = r.notified,
                            signed_out = r.signed_out,
                            "lifecycle jobs ran"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "lifecycle jobs failed"),
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "lifecycle jobs could not read the clock"),
            }
            tokio::time::sleep(wake_every(on_test_clock, every)).await;
        }
    }

    async fn remind_unused_accounts(&self, now: Timestamp) -> Result<u64, Error> {
        let policy = self.config.lifecycle.policy();
        let mut sent = 0;
        for before in &policy.reminders {
            let kind = format!("reminder_{before}");
            let due_since = now.minus(policy.deregister_after).plus(*before);
            let mut after = String::new();
            loop {
                let mut tx = self.store.begin().await.map_err(store_error)?;
                let batch = tx.unused_accounts(due_since, &after, BATCH).await.map_err(store_error)?;
                let Some(last) = batch.last() else { break };
                after = last.id.to_string();
                let mut events = Vec::new();
                for user in &batch {
                    let Some(since) = user.active_since else { continue };
                    let deregister_on = policy.deregistration_at(since);
                    // Past deregistration, or a later reminder is due (a server that was off
                    // sends only the latest): nothing to send for this one.
                    if now >= deregister_on || policy.later_reminder_due(*before, since, now) {
                        continue;
                    }
                    if tx.record_notice(&user.id, &kind, since, now).await.map_err(store_error)? {
                        let mail = messages::deregistration_reminder(
                            &self.config,
                            user.email.as_str(),
                            &user.full_name,
                            deregister_on,
                        );
                        tx.enqueue(&mail, &self.secret_key, now).await.map_err(store_error)?;
                        let detail = format!("deregistration on {}", deregister_on.rfc3339());
                        events.push(event("lifecycle.reminded", user, Some(detail)));
                        sent += 1;
                    }
                }
                finish_batch(tx, events, now).await?;
            }
        }
        Ok(sent)
    }

    async fn deregister_unused_accounts(&self, now: Timestamp) -> Result<u64, Error> {
        let policy = self.config.lifecycle.policy();
        let unused_since = policy.deregister_if_unused_since(now);
        let mut done = 0;
        let mut after = String::new();
        loop {
            let mut tx = self.store.begin().await.map_err(store_error)?;
            let batch = tx.unused_accounts(unused_since, &after, BATCH).await.map_err(store_error)?;
            let Some(last) = batch.last() else { break };
            after = last.id.to_string();
            let mut events = Vec::new();
            for user in &batch {
                if !tx.deregister(&user.id, unused_since, now).await.map_err(store_error)? {
                    continue;
                }
                let ended = tx.end_all_sessions(&user.id, "account deregistered", now).await.map_err(store_error)?;
                let told = self.tell_services(&mut tx, ended, now).await?;
                let added_by = match &user.added_by {
                    Some(id) => tx.user(id).await.map_err(store_error)?,
                    None => None,
                };
                let who = messages::who_to_ask(&self.config, added_by.as_ref());
                let deleted_on = now.plus(policy.delete_after);
                let mail = messages::deregistered(&self.config, user.email.as_str(), &user.full_name, &who, deleted_on);
                tx.enqueue(&mail, &self.secret_key, now).await.map_err(store_error)?;
                let unused = user.active_since.map(|s| now.seconds_since(s) / 86_400).unwrap_or_default();
                let mut detail = format!("unused for {unused} days");
                if told.iter().any(|t| t.told) {
                    detail = format!("{detail}; services told: {}", crate::oidc::logout::names(&told));
                }
                events.push(event("lifecycle.deregistered", user, Some(detail)));
                done += 1;
            }
            finish_batch(tx, events, now).await?;
        }
        Ok(done)
    }

    async fn delete_expired_accounts(&self, now: Timestamp) -> Result<u64, Error> {
        let before = self.config.lifecycle.policy().delete_if_deregistered_before(now);
        let mut done = 0;
        let mut after = String::new();
        loop {
            let mut tx = self.store.begin().await.map_err(store_error)?;
            let batch = tx.deregistered_accounts(before, &after, BATCH).await.map_err(store_error)?;
            let Some(last) = batch.last() else { break };
            after = last.id.to_string();
            let mut events = Vec::new();
            for user in &batch {
                if let Some(ended) = tx.delete_account(user, before, now).await.map_err(store_error)? {
                    self.tell_services(&mut tx, ended, now).await?;
                    // The event names only the ID, which now stands for no one in particular.
                    events.push(event("lifecycle.deleted", user, Some("personal data erased".into())));
                    done += 1;
                }
            }
            finish_batch(tx, events, now).await?;
        }
        Ok(done)
    }

    /// An administrator reregisters a deregistered person of their organisation, before it is
    /// deleted. The person signs in again with the same password and factors.
    pub async fn reregister_member(
        &self,
        admin: OrganisationAdmin<'_>,
        id: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<UserListing, Error> {
        let (mut tx, listing) = self.member_transaction(admin, id, ctx, now).await?;
        let deadline = now.minus(self.config.lifecycle.delete_after);
        if !tx.reregister(&listing.user.id, deadline, now).await.map_err(store_error)? {
            return Err(Error::new(
                ErrorCode::Conflict,
                "This account is not deregistered, or is past its deletion date: add the person again instead.",
            ));
        }
        let was_locked = self.policy.at_lock_limit(listing.user.failed_sign_ins, listing.user.failed_second_factors);
        let mail = messages::reregistered(
            &self.config,
            listing.user.email.as_str(),
            &listing.user.full_name,
            &admin.user().full_name,
        );
        tx.enqueue(&mail, &self.secret_key, now).await.map_err(store_error)?;
        let mut event = ctx.event("lifecycle.reregistered", "success");
        event.detail = was_locked.then(|| "it was locked: reregistering also unlocked it".to_owned());
        event.actor_id = Some(admin.user().id.to_string());
        event.subject_id = Some(listing.user.id.to_string());
        event.organisation_id = listing.user.organisation_id.as_ref().map(ToString::to_string);
        tx.append_audit(&event, now).await.map_err(store_error)?;
        let updated = tx
            .user_listing(admin.organisation(), &listing.user.id)
            .await
            .map_err(store_error)?
            .ok_or_else(Error::not_found)?;
        tx.commit().await.map_err(store_error)?;
        Ok(updated)
    }
}

/// Why a deregistered person's correct password does not sign them in.
pub fn deregistered_refusal(config: &crate::Config, who: &str) -> Error {
    let l = &config.lifecycle;
    Error::new(
        ErrorCode::Deregistered,
        format!(
            "Your account was deregistered because it was not used for {}. To use it again, ask to be reregistered by {who}. If it is not reregistered within {}, it is deleted.",
            l.deregister_after.describe(),
            l.delete_after.describe()
        ),
    )
}

#[cfg(test)]
mod schedule_tests {
    use super::*;

    /// Defect 8: on the test clock the in-process jobs waited the real 15 minutes after the
    /// clock moved; now they run at the next look (a second) after any move.
    #[test]
    fn jobs_run_promptly_after_the_test_clock_moves() {
        let every = Span::minutes(15);
        let t0 = Timestamp::from_unix(1_767_603_600);
        assert!(jobs_due(true, None, t0, every));
        assert!(!jobs_due(true, Some(t0), t0, every), "the clock stood still");
        assert!(jobs_due(true, Some(t0), t0.plus(Span::seconds_(1)), every), "it moved");
        assert_eq!(wake_every(true, every), Duration::from_secs(1));
        assert!(!jobs_due(false, Some(t0), t0.plus(Span::minutes(14)), every));
        assert!(jobs_due(false, Some(t0), t0.plus(every), every));
        assert_eq!(wake_every(false, every), Duration::from_secs(900));
    }
}
