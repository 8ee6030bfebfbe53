//! Signing in with email and password. Unknown, locked and deregistered accounts get the same
//! answer as a wrong password, after the same work (a dummy hash is checked), so the answer
//! does not tell a guesser which accounts exist.

use usher_domain::account::{AccountStatus, SessionStage};
use usher_domain::email::EmailAddress;
use usher_domain::policy::Policy;
use usher_domain::secret::SecretString;
use usher_domain::{Error, Timestamp};

use crate::operator::SignedIn;
use crate::sessions::start_session;
use crate::{App, RequestContext, messages, store_error};
use usher_domain::limits::{SIGN_IN_PER_ACCOUNT, SIGN_IN_PER_IP};

/// The one answer for a wrong email or password, a locked or a deregistered account: it tells
/// everyone how to unlock without telling a guesser which case applies. The field gets one
/// short message; the whole message (for the page's error summary and the API) says how to
/// unlock.
pub fn wrong_email_or_password(policy: &Policy) -> Error {
    let mut e = Error::field("email", WRONG_EMAIL_OR_PASSWORD);
    e.message = format!("{WRONG_EMAIL_OR_PASSWORD}. {}", how_to_unlock(policy)).into();
    e
}

/// The field message of a refused sign-in.
pub const WRONG_EMAIL_OR_PASSWORD: &str = "Enter a correct email address and password";

/// What locks an account and how to unlock it, printed from the policy.
pub fn how_to_unlock(policy: &Policy) -> String {
    format!(
        "After {} wrong passwords in a row an account is locked: to unlock it, reset your password or ask \
         your organisation administrator.",
        policy.lock_after_wrong_passwords
    )
}

impl App {
    pub async fn sign_in(
        &self,
        email: &str,
        password: &SecretString,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<SignedIn, Error> {
        self.rate_limit(SIGN_IN_PER_IP, ctx.ip.as_deref().unwrap_or("unknown"), now).await?;
        // Per account, only failures count, so a person who proves their password (or resets it)
        // is never kept out by someone else's guessing beyond the lock itself.
        if let Some(frees_in) = self.limit_reached(SIGN_IN_PER_ACCOUNT, email, now).await? {
            return Err(Error::rate_limited(
                format!(
                    "There have been too many attempts for this account. Wait {} and try again, or reset your password.",
                    SIGN_IN_PER_ACCOUNT.window.in_words()
                ),
                frees_in,
            ));
        }
        let account_key = email.to_owned();
        let email = EmailAddress::parse(email).ok();
        let user = match &email {
            Some(email) => {
                let mut tx = self.store.begin_read().await.map_err(store_error)?;
                tx.user_by_email(email).await.map_err(store_error)?
            }
            None => None,
        };
        let stored =
            user.as_ref().and_then(|u| u.password_hash.clone()).unwrap_or_else(|| self.hasher.dummy_hash().to_owned());
        let password_ok = self.hasher.verify_evenly(stored, password.expose().to_owned()).await?;
        // S1: a hash made at a lower cost than configured is replaced at this sign-in.
        let verified = user.as_ref().and_then(|u| u.password_hash.clone()).unwrap_or_default();
        let rehashed = if password_ok && self.hasher.cost().needs_rehash(&verified) {
            Some(self.hasher.hash(password.expose().to_owned()).await?)
        } else {
            None
        };

        let mut tx = self.store.begin().await.map_err(store_error)?;
        let Some(user) = user else {
            let mut event = ctx.event("sign_in", "failure");
            event.detail = Some("unknown account".into());
            tx.append_audit(&event, now).await.map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
            self.count_against(SIGN_IN_PER_ACCOUNT, &account_key, now).await?;
            return Err(wrong_email_or_password(&self.policy));
        };
        let mut event = ctx.event("sign_in", "failure");
        event.subject_id = Some(user.id.to_string());
        event.organisation_id = user.organisation_id.as_ref().map(ToString::to_string);

        if !password_ok || user.status != AccountStatus::Active {
            if password_ok {
                event.detail = Some(format!("account {}", user.status.as_str()));
                tx.append_audit(&event, now).await.map_err(store_error)?;
            } else {
                let status = user.status;
                let locked = self
                    .count_wrong_password(&mut tx, &user, event, ctx, now, |count| match count {
                        Some(count) => format!("wrong password ({count} in a row)"),
                        None => format!("wrong password, account {}", status.as_str()),
                    })
                    .await?;
                if locked {
                    tx.commit().await.map_err(store_error)?;
                    self.count_against(SIGN_IN_PER_ACCOUNT, &account_key, now).await?;
                    return Err(wrong_email_or_password(&self.policy));
                }
            }
            // A deregistered account counts wrong passwords too, and once at the limit it gives
            // the same answer as any other, so it is no oracle for guessing the password.
            let at_limit = self.policy.at_lock_limit(user.failed_sign_ins, user.failed_second_factors);
            if password_ok && user.status == AccountStatus::Deregistered && !at_limit {
                // Only someone who knows the password learns why: the page says whom to ask.
                let added_by = match &user.added_by {
                    Some(id) => tx.user(id).await.map_err(store_error)?,
                    None => None,
                };
                tx.commit().await.map_err(store_error)?;
                let who = messages::who_to_ask(&self.config, added_by.as_ref());
                return Err(crate::lifecycle::deregistered_refusal(&self.config, &who));
            }
            tx.commit().await.map_err(store_error)?;
            self.count_against(SIGN_IN_PER_ACCOUNT, &account_key, now).await?;
            return Err(wrong_email_or_password(&self.policy));
        }
        if !tx.record_sign_in_if_active(&user.id, &verified, rehashed.as_deref(), now).await.map_err(store_error)? {
            self.count_against(SIGN_IN_PER_ACCOUNT, &account_key, now).await?;
            return Err(wrong_email_or_password(&self.policy));
        }
        let stage = self.stage_after_password(&mut tx, &user).await?;
        if stage == SessionStage::Full {
            tx.record_sign_in(&user.id, now).await.map_err(store_error)?;
        }
        let token = start_session(&mut tx, &user, stage, ctx, now).await?;
        event.outcome = "success".into();
        event.actor_id = Some(user.id.to_string());
        event.detail = match stage {
            SessionStage::Full => None,
            SessionStage::SecondFactor => Some("password; second factor to follow".into()),
            SessionStage::Setup => Some("password; second factor to set up".into()),
        };
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(SignedIn { token, user, stage })
    }
}
