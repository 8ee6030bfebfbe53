//! Asking a signed-in person for their password again before a sensitive change (S24): the
//! session is replaced (S21) and changes to factors and phones are allowed for a short window.

use usher_domain::account::SessionStage;
use usher_domain::evidence::AuthMethod;
use usher_domain::secret::SecretString;
use usher_domain::{Error, ErrorCode, Timestamp};

use crate::sessions::{Authenticated, replace_session, wrong_stage};
use crate::{App, RequestContext, audit_person as audit, store_error};

impl App {
    /// Confirms the password of a signed-in person before a sensitive change (S24); the
    /// session is replaced by a new one (S21). Wrong passwords count towards the lock.
    pub async fn reauthenticate(
        &self,
        who: &Authenticated,
        password: &SecretString,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<usher_domain::secret::Token, Error> {
        if !who.is_full() {
            return Err(wrong_stage());
        }
        let user = &who.user;
        let stored = user.password_hash.clone().unwrap_or_else(|| self.hasher.dummy_hash().to_owned());
        let ok = self.hasher.verify(stored, password.expose().to_owned()).await?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        if !ok {
            let event = ctx.person_event("reauthentication", "failure", user);
            self.count_wrong_password(&mut tx, user, event, ctx, now, |_| "wrong password".into()).await?;
            tx.commit().await.map_err(store_error)?;
            return Err(Error::field("password", "Your password is not right"));
        }
        tx.clear_failed_sign_ins(&user.id).await.map_err(store_error)?;
        let evidence = who.evidence().clone().proven(AuthMethod::Password, now);
        let token = replace_session(&mut tx, who, SessionStage::Full, evidence, true, ctx, now).await?;
        audit(&mut tx, ctx, "reauthentication", "success", user, None, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(token)
    }

    /// Changes to factors and phones need the password entered within the last few minutes
    /// (S24).
    pub fn require_recent_password(&self, who: &Authenticated, now: Timestamp) -> Result<(), Error> {
        let window = self.policy.reauthentication_window.seconds();
        let recent = who.session.reauthenticated_at.is_some_and(|at| now.seconds_since(at) <= window);
        if who.is_full() && recent {
            Ok(())
        } else {
            Err(Error::new(ErrorCode::ReauthenticationRequired, "Enter your password again to make this change."))
        }
    }
}
