//! Emailed codes as the second factor, where the organisation allows them: 6 digits, single
//! use, newest only, for as long as the policy says (S11).

use usher_domain::evidence::AuthMethod;
use usher_domain::ids::MessageId;
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::{FactorKind, OneTimeLink, Tx, User};

use super::{Answer, Challenge, FactorAdded, KindWords, SecondFactor, wrong_stage};
use crate::codes::Medium;
use crate::sessions::Authenticated;
use crate::{App, RequestContext, commit_outcome, store_error};
use usher_domain::account::SessionStage;

pub(crate) const WORDS: KindWords = KindWords {
    added: "emailed codes were set up as a second factor for your account.",
    added_subject: "emailed codes set up",
    added_action: "mfa.email_added",
    removed_subject: "emailed codes removed",
};

fn sign_in_flow(who: &Authenticated) -> String {
    format!("sign-in-email:{}", who.session.id)
}

pub(super) fn setup_flow(who: &Authenticated) -> String {
    format!("factor-email:{}", who.session.id)
}

/// The codes emailed for a password reset link.
pub(crate) fn reset_flow(link: &OneTimeLink) -> String {
    format!("reset-email:{}", link.token_hash.as_str())
}

/// A code sent to the account's email address.
#[derive(Debug)]
pub(crate) struct EmailCode;

impl SecondFactor for EmailCode {
    const LABEL: &'static str = "email";
    const PROVES: AuthMethod = AuthMethod::EmailCode;

    async fn check(
        app: &App,
        tx: &mut Tx,
        user: &User,
        at: Challenge<'_>,
        entered: &str,
        now: Timestamp,
    ) -> Result<Answer, Error> {
        let has_email = app.usable_factors(tx, user).await?.iter().any(|f| f.kind == FactorKind::Email);
        let (flow, exhausted) = match at {
            Challenge::SignIn(who) => {
                if !has_email {
                    return Err(Error::field("code", "Email codes are not set up for your account"));
                }
                (sign_in_flow(who), "Too many wrong codes. Sign in again to get a new code")
            }
            Challenge::Reset(link) => {
                if !has_email {
                    return Err(Error::field("code", "Emailed codes are not set up for your account"));
                }
                (reset_flow(link), "Too many wrong codes. Ask for a new reset email")
            }
        };
        let checked = app.check_code(tx, &flow, app.policy.email_code, entered, Medium::Email, now).await?;
        Ok(Answer::from_code(checked, exhausted))
    }
}

impl App {
    /// Emails a sign-in code to a person with the email factor.
    pub async fn send_sign_in_email_code(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        if who.session.stage != SessionStage::SecondFactor {
            return Err(wrong_stage());
        }
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", who.user.id)).await.map_err(store_error)?;
        if !self.usable_factors(&mut tx, &who.user).await?.iter().any(|f| f.kind == FactorKind::Email) {
            return Err(Error::field("code", "Email codes are not set up for your account"));
        }
        let sent = self.send_email_code(&mut tx, &who.user, &sign_in_flow(who), "sign-in email code", ctx, now).await;
        commit_outcome(tx, sent).await
    }

    /// Emails a code to set up emailed codes as the second factor.
    pub async fn send_setup_email_code(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.may_set_up(who, now)?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", who.user.id)).await.map_err(store_error)?;
        if !self.second_factor_rules(&mut tx, &who.user).await?.1 {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "Your organisation does not allow emailed codes. Add an authenticator app.",
            ));
        }
        let sent = self.send_email_code(&mut tx, &who.user, &setup_flow(who), "email factor set-up", ctx, now).await;
        commit_outcome(tx, sent).await
    }

    pub async fn confirm_email_setup(
        &self,
        who: &Authenticated,
        entered: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<FactorAdded, Error> {
        self.may_set_up(who, now)?;
        let user = &who.user;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", user.id)).await.map_err(store_error)?;
        if !self.second_factor_rules(&mut tx, user).await?.1 {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "Your organisation does not allow emailed codes. Add an authenticator app.",
            ));
        }
        let refusal = self
            .check_code(&mut tx, &setup_flow(who), self.policy.email_code, entered, Medium::Email, now)
            .await?
            .refusal("Too many wrong codes. Sign out, then sign in again to start afresh");
        if let Some(message) = refusal {
            self.count_second_factor_failure(&mut tx, user, "email set-up", ctx, now).await?;
            tx.commit().await.map_err(store_error)?;
            return Err(Error::field("code", message));
        }
        if tx.factors(&user.id).await.map_err(store_error)?.iter().any(|f| f.kind == FactorKind::Email) {
            return Err(Error::new(ErrorCode::Conflict, "Emailed codes are already set up for your account."));
        }
        let id = MessageId::generate();
        tx.begin_factor(id.as_str(), &user.id, FactorKind::Email, None, who.session.id.as_str(), now)
            .await
            .map_err(store_error)?;
        tx.confirm_factor(id.as_str(), now).await.map_err(store_error)?;
        let added = self.factor_added(&mut tx, who, FactorKind::Email, ctx, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(added)
    }
}
