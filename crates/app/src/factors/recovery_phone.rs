//! The recovery phone: a number proven by a texted code, which lets a person who lost their
//! device remove their factors and set up a new one, or prove a password reset. Texted codes
//! are single use, short-lived and bound to the flow that asked for them (S12); the phone is
//! shown only as its last 4 digits.

use usher_domain::account::SessionStage;
use usher_domain::evidence::AuthMethod;
use usher_domain::phone::MobileNumber;
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::{OneTimeLink, Tx, User};

use super::{Answer, Challenge, SecondFactor, wrong_stage};
use crate::codes::Medium;
use crate::sessions::{Authenticated, replace_session};
use crate::{App, RequestContext, audit_person as audit, commit_outcome, messages, store_error};

fn recovery_text_flow(who: &Authenticated) -> String {
    format!("recovery-text:{}", who.session.id)
}

fn recovery_phone_flow(who: &Authenticated, phone: &MobileNumber) -> String {
    format!("recovery-phone:{}:{}", who.session.id, phone)
}

/// The codes texted to the recovery phone for a password reset link.
pub(crate) fn reset_flow(link: &OneTimeLink) -> String {
    format!("reset-text:{}", link.token_hash.as_str())
}

/// A code texted to the recovery phone.
#[derive(Debug)]
pub(crate) struct RecoveryPhone;

impl SecondFactor for RecoveryPhone {
    const LABEL: &'static str = "recoverytext";
    const PROVES: AuthMethod = AuthMethod::Sms;

    async fn check(
        app: &App,
        tx: &mut Tx,
        _user: &User,
        at: Challenge<'_>,
        entered: &str,
        now: Timestamp,
    ) -> Result<Answer, Error> {
        let (flow, exhausted) = match at {
            Challenge::SignIn(who) => (recovery_text_flow(who), "Too many wrong codes. Sign in again to start afresh"),
            Challenge::Reset(link) => (reset_flow(link), "Too many wrong codes. Ask for a new reset email"),
        };
        let checked = app.check_code(tx, &flow, app.policy.sms_code, entered, Medium::Text, now).await?;
        Ok(Answer::from_code(checked, exhausted))
    }
}

impl App {
    /// Texts a recovery code to the proven recovery phone of a person who lost their device.
    pub async fn send_recovery_text(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        if who.session.stage != SessionStage::SecondFactor {
            return Err(wrong_stage());
        }
        let Some(phone) = who.user.recovery_phone.clone() else {
            return Err(Error::new(
                ErrorCode::Conflict,
                "Your account has no recovery phone. Use a recovery code, or ask your organisation administrator to reset your second factors.",
            ));
        };
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", who.user.id)).await.map_err(store_error)?;
        let phone = MobileNumber::from_trusted(phone);
        let sent =
            self.text_a_code(&mut tx, &who.user, &phone, (&recovery_text_flow(who), "recovery text"), ctx, now).await;
        commit_outcome(tx, sent).await
    }

    /// With the texted recovery code, a person who lost their device removes every factor
    /// (and the old recovery codes) and goes on to set up a new one. Audited and emailed.
    pub async fn recover_with_text(
        &self,
        who: &Authenticated,
        entered: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<usher_domain::secret::Token, Error> {
        if who.session.stage != SessionStage::SecondFactor || who.user.recovery_phone.is_none() {
            return Err(wrong_stage());
        }
        let user = &who.user;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", user.id)).await.map_err(store_error)?;
        let answer = RecoveryPhone::check(self, &mut tx, user, Challenge::SignIn(who), entered, now).await?;
        if let Answer::Refused(message) = answer {
            self.count_second_factor_failure(&mut tx, user, "recovery_text", ctx, now).await?;
            tx.commit().await.map_err(store_error)?;
            return Err(Error::field("code", message));
        }
        let removed = tx.remove_all_factors(&user.id, now).await.map_err(store_error)?;
        tx.clear_failed_second_factors(&user.id).await.map_err(store_error)?;
        // Proven, but not signed in: the person sets up a new factor, then signs in again.
        let evidence = who.evidence().clone().proven(RecoveryPhone::PROVES, now);
        let token = replace_session(&mut tx, who, SessionStage::Setup, evidence, false, ctx, now).await?;
        let mail = messages::security_change(
            &self.config,
            "factors_recovered",
            user.email.as_str(),
            &user.full_name,
            "your second factors were removed",
            "your recovery phone was used to remove your second factors and recovery codes, so that a new \
             authenticator app or email codes could be set up.",
            now,
        );
        tx.enqueue(&mail, &self.secret_key, now).await.map_err(store_error)?;
        audit(
            &mut tx,
            ctx,
            "mfa.recovered",
            "success",
            user,
            Some(format!("{removed} factors removed by recovery text")),
            now,
        )
        .await?;
        tx.commit().await.map_err(store_error)?;
        Ok(token)
    }

    /// Texts a code to a number the person wants as their recovery phone.
    pub async fn send_recovery_phone_code(
        &self,
        who: &Authenticated,
        number: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<MobileNumber, Error> {
        self.require_recent_password(who, now)?;
        let phone = MobileNumber::parse(number).map_err(|m| Error::field("phone", m))?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", who.user.id)).await.map_err(store_error)?;
        let sent = self
            .text_a_code(
                &mut tx,
                &who.user,
                &phone,
                (&recovery_phone_flow(who, &phone), "recovery phone check"),
                ctx,
                now,
            )
            .await;
        commit_outcome(tx, sent).await?;
        Ok(phone)
    }

    /// Proves and saves the recovery phone with the texted code. The person is emailed.
    pub async fn confirm_recovery_phone(
        &self,
        who: &Authenticated,
        number: &str,
        entered: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.require_recent_password(who, now)?;
        let phone = MobileNumber::parse(number).map_err(|m| Error::field("phone", m))?;
        let user = &who.user;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", user.id)).await.map_err(store_error)?;
        let refusal = self
            .check_code(&mut tx, &recovery_phone_flow(who, &phone), self.policy.sms_code, entered, Medium::Text, now)
            .await?
            .refusal("Too many wrong codes. Enter the number again to get a new code");
        if let Some(message) = refusal {
            audit(&mut tx, ctx, "mfa.recovery_phone_set", "failure", user, None, now).await?;
            tx.commit().await.map_err(store_error)?;
            return Err(Error::field("code", message));
        }
        let changed = user.recovery_phone.is_some();
        tx.set_recovery_phone(&user.id, Some(phone.as_str()), now).await.map_err(store_error)?;
        let what = format!(
            "the recovery phone of your account was {} a number ending {}.",
            if changed { "changed to" } else { "set to" },
            phone.last_four()
        );
        self.tell(&mut tx, user, "recovery_phone_set", "recovery phone set", &what, now).await?;
        audit(
            &mut tx,
            ctx,
            "mfa.recovery_phone_set",
            "success",
            user,
            Some(format!("ending {}", phone.last_four())),
            now,
        )
        .await?;
        tx.commit().await.map_err(store_error)
    }

    pub async fn remove_recovery_phone(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.require_recent_password(who, now)?;
        let user = &who.user;
        if user.recovery_phone.is_none() {
            return Err(Error::not_found());
        }
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.set_recovery_phone(&user.id, None, now).await.map_err(store_error)?;
        self.tell(
            &mut tx,
            user,
            "recovery_phone_removed",
            "recovery phone removed",
            "the recovery phone was removed from your account.",
            now,
        )
        .await?;
        audit(&mut tx, ctx, "mfa.recovery_phone_removed", "success", user, None, now).await?;
        tx.commit().await.map_err(store_error)
    }
}
