//! What every kind of second factor shares: where a session goes after the password, counting
//! wrong answers (and the lock after too many, S13), finishing a sign-in, and what follows
//! every new factor.

use usher_domain::account::SessionStage;
use usher_domain::secret::Token;
use usher_domain::{Error, Timestamp};
use usher_store::{Factor, FactorKind, Tx, User};

use super::{Method, kind_words};
use crate::sessions::{Authenticated, replace_session, wrong_stage};
use crate::{App, RequestContext, audit_person as audit, messages, store_error};

/// After a factor is set up.
#[derive(Debug)]
pub struct FactorAdded {
    /// A first set of recovery codes, to show once.
    pub recovery_codes: Option<Vec<String>>,
}

/// The factors that may prove a sign-in where emailed codes are (or are not) allowed.
pub(crate) fn usable(mut factors: Vec<Factor>, email_codes: bool) -> Vec<Factor> {
    if !email_codes {
        factors.retain(|f| f.kind != FactorKind::Email);
    }
    factors
}

impl App {
    /// Emails a person about a change to how they prove who they are (S18), in the caller's
    /// transaction.
    pub(crate) async fn tell(
        &self,
        tx: &mut Tx,
        user: &User,
        purpose: &str,
        subject: &str,
        what: &str,
        now: Timestamp,
    ) -> Result<(), Error> {
        let mail =
            messages::security_change(&self.config, purpose, user.email.as_str(), &user.full_name, subject, what, now);
        tx.enqueue(&mail, &self.secret_key, now).await.map_err(store_error)?;
        Ok(())
    }

    /// Whether a person must have a second factor, and whether emailed codes may be one: the
    /// deployment's, tightened (never loosened) by the organisation's choice.
    pub async fn second_factor_rules(&self, tx: &mut Tx, user: &User) -> Result<(bool, bool), Error> {
        let rules = self.policy_for(tx, user).await?.second_factor;
        Ok((rules.required, rules.email_codes))
    }

    /// The person's factors that may prove a sign-in now: emailed codes drop out while the
    /// organisation (or the deployment) does not allow them, though they stay on record.
    pub(crate) async fn usable_factors(&self, tx: &mut Tx, user: &User) -> Result<Vec<Factor>, Error> {
        let factors = tx.factors(&user.id).await.map_err(store_error)?;
        if !factors.iter().any(|f| f.kind == FactorKind::Email) {
            return Ok(factors);
        }
        let email_codes = self.second_factor_rules(tx, user).await?.1;
        Ok(usable(factors, email_codes))
    }

    /// Where a session starts once the password is proven: the second factor when the person
    /// has one that may be used, else set-up when one is required.
    pub(crate) async fn stage_after_password(&self, tx: &mut Tx, user: &User) -> Result<SessionStage, Error> {
        if !self.usable_factors(tx, user).await?.is_empty() {
            return Ok(SessionStage::SecondFactor);
        }
        let (required, _) = self.second_factor_rules(tx, user).await?;
        Ok(if required { SessionStage::Setup } else { SessionStage::Full })
    }

    /// Counts a wrong second factor (or a wrong code at a set-up check): at the limit the
    /// account locks, every session ends and the person is emailed. Whatever the flow, the
    /// count is per account, so starting again never gives more guesses (S13).
    pub(crate) async fn count_second_factor_failure(
        &self,
        tx: &mut Tx,
        user: &User,
        method: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        let lock_after = self.policy.lock_after_wrong_second_factors;
        let count = tx.count_failed_second_factor(&user.id, lock_after).await.map_err(store_error)?;
        audit(
            tx,
            ctx,
            "sign_in.second_factor",
            "failure",
            user,
            Some(format!("{method}, {} in a row", count.unwrap_or(0))),
            now,
        )
        .await?;
        if count == Some(lock_after) {
            let ended = tx.end_all_sessions(&user.id, "account locked", now).await.map_err(store_error)?;
            self.tell_services(tx, ended, now).await?;
            let why = format!("{lock_after} wrong second-factor codes in a row");
            let mail = messages::account_locked_because(&self.config, user.email.as_str(), &user.full_name, now, &why);
            tx.enqueue(&mail, &self.secret_key, now).await.map_err(store_error)?;
            audit(tx, ctx, "account.locked", "success", user, Some("wrong second factors".into()), now).await?;
        }
        Ok(())
    }

    /// Finishes a sign-in once its second factor is proven: the count of wrong answers starts
    /// again, the sign-in counts as use of the account, and the session is replaced by a full
    /// one (S21) that records the factor with the evidence so far, and is a full
    /// authentication at `now`.
    pub(crate) async fn complete_sign_in(
        &self,
        tx: &mut Tx,
        who: &Authenticated,
        method: Method,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Token, Error> {
        tx.clear_failed_second_factors(&who.user.id).await.map_err(store_error)?;
        tx.record_sign_in(&who.user.id, now).await.map_err(store_error)?;
        let evidence = who.evidence().clone().proven(method.evidence(), now).completed(now);
        replace_session(tx, who, SessionStage::Full, evidence, false, ctx, now).await
    }

    /// Setting up a factor happens at the set-up stage after sign-in, or from the security page
    /// after the password was entered again.
    pub(crate) fn may_set_up(&self, who: &Authenticated, now: Timestamp) -> Result<(), Error> {
        match who.session.stage {
            SessionStage::Setup => Ok(()),
            SessionStage::Full => self.require_recent_password(who, now),
            SessionStage::SecondFactor => Err(wrong_stage()),
        }
    }

    /// What follows every new factor: a first set of recovery codes if the person has none,
    /// the email, the audit event, and the end of this session (the factor takes effect at the
    /// next sign-in).
    pub(crate) async fn factor_added(
        &self,
        tx: &mut Tx,
        who: &Authenticated,
        kind: FactorKind,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<FactorAdded, Error> {
        let user = &who.user;
        let recovery_codes = if tx.unused_recovery_codes(&user.id).await.map_err(store_error)?.is_empty() {
            Some(self.new_recovery_codes(tx, user, now).await?)
        } else {
            None
        };
        let words = kind_words(kind);
        self.tell(tx, user, "factor_added", words.added_subject, words.added, now).await?;
        let ended = tx.end_session(&who.session.id, "second factor added", now).await.map_err(store_error)?;
        self.tell_services(tx, ended, now).await?;
        audit(tx, ctx, words.added_action, "success", user, None, now).await?;
        Ok(FactorAdded { recovery_codes })
    }
}
