//! The lock on wrong passwords (S3, S13): consecutive wrong passwords, wherever they are typed,
//! count per account on any node; at the policy's limit the account locks.

use usher_domain::account::AccountStatus;
use usher_domain::{Error, Timestamp};

use crate::{App, RequestContext, messages, store_error};

impl App {
    /// Counts a wrong password against `user` (S13), wherever it was typed: the sign-in form,
    /// the current password on the change form, or a password asked for again. `failure` (the
    /// caller's audit event) gets `detail(count)` and is appended; when this wrong password
    /// locks the account, every session ends, the person is emailed and `account.locked` is
    /// audited. Returns whether it locked the account.
    pub(crate) async fn count_wrong_password(
        &self,
        tx: &mut usher_store::Tx,
        user: &usher_store::User,
        mut failure: usher_store::NewAuditEvent,
        ctx: &RequestContext,
        now: Timestamp,
        detail: impl FnOnce(Option<i64>) -> String,
    ) -> Result<bool, Error> {
        let lock_after = self.policy.lock_after_wrong_passwords;
        let counted = tx.count_failed_sign_in(&user.id, lock_after, now).await.map_err(store_error)?;
        failure.detail = Some(detail(counted.map(|(count, _)| count)));
        tx.append_audit(&failure, now).await.map_err(store_error)?;
        if !matches!(counted, Some((_, AccountStatus::Locked))) {
            return Ok(false);
        }
        let ended = tx.end_all_sessions(&user.id, "account locked", now).await.map_err(store_error)?;
        self.tell_services(tx, ended, now).await?;
        let mail = messages::account_locked(&self.config, &self.policy, user.email.as_str(), &user.full_name, now);
        tx.enqueue(&mail, &self.secret_key, now).await.map_err(store_error)?;
        let mut locked = ctx.event("account.locked", "success");
        locked.subject_id = Some(user.id.to_string());
        locked.organisation_id = user.organisation_id.as_ref().map(ToString::to_string);
        locked.detail = Some(format!("{lock_after} wrong passwords in a row"));
        tx.append_audit(&locked, now).await.map_err(store_error)?;
        Ok(true)
    }
}
