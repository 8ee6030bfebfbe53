//! Recovery codes: a set made with the first factor and shown once, each usable once in place
//! of the factor (S17), stored only as keyed hashes. Using one emails the person.

use usher_domain::evidence::AuthMethod;
use usher_domain::recovery::{self, RecoveryCode};
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::{Tx, User};

use super::{Answer, Challenge, SecondFactor};
use crate::sessions::Authenticated;
use crate::{App, RequestContext, audit_person as audit, store_error};

/// One of the person's recovery codes.
#[derive(Debug)]
pub(crate) struct RecoveryCodes;

impl SecondFactor for RecoveryCodes {
    const LABEL: &'static str = "recoverycode";
    const PROVES: AuthMethod = AuthMethod::RecoveryCode;

    async fn check(
        app: &App,
        tx: &mut Tx,
        user: &User,
        _at: Challenge<'_>,
        entered: &str,
        now: Timestamp,
    ) -> Result<Answer, Error> {
        Ok(match app.use_recovery_code(tx, user, entered, now).await? {
            Some(left) => Answer::Accepted { recovery_codes_left: Some(left) },
            None => Answer::Refused("That recovery code is not right, or has been used. Each code works once".into()),
        })
    }
}

impl App {
    /// Checks a recovery code and uses it; `Some(left)` when it worked.
    async fn use_recovery_code(
        &self,
        tx: &mut Tx,
        user: &User,
        entered: &str,
        now: Timestamp,
    ) -> Result<Option<usize>, Error> {
        let Some(entered) = recovery::normalise_entered(entered) else { return Ok(None) };
        let codes = tx.unused_recovery_codes(&user.id).await.map_err(store_error)?;
        let found =
            codes.iter().find(|c| self.secret_key.all().any(|key| recovery::matches(key, &entered, &c.code_hash)));
        match found {
            Some(c) if tx.use_recovery_code(&c.id, now).await.map_err(store_error)? => Ok(Some(codes.len() - 1)),
            _ => Ok(None),
        }
    }

    pub(crate) async fn new_recovery_codes(
        &self,
        tx: &mut Tx,
        user: &User,
        now: Timestamp,
    ) -> Result<Vec<String>, Error> {
        let codes = RecoveryCode::set_of(self.policy.recovery_codes);
        let hashes: Vec<String> = codes.iter().map(|c| c.hash(self.secret_key.bytes())).collect();
        tx.replace_recovery_codes(&user.id, &hashes, now).await.map_err(store_error)?;
        Ok(codes.iter().map(RecoveryCode::shown).collect())
    }

    /// A new set of recovery codes; the old set stops working. Shown once.
    pub async fn regenerate_recovery_codes(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Vec<String>, Error> {
        self.require_recent_password(who, now)?;
        let user = &who.user;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", user.id)).await.map_err(store_error)?;
        if tx.factors(&user.id).await.map_err(store_error)?.is_empty() {
            return Err(Error::new(
                ErrorCode::Conflict,
                "Set up a second factor first: recovery codes stand in for it.",
            ));
        }
        let codes = self.new_recovery_codes(&mut tx, user, now).await?;
        self.tell(
            &mut tx,
            user,
            "recovery_codes_replaced",
            "new recovery codes",
            "a new set of recovery codes was made for your account. The old codes no longer work.",
            now,
        )
        .await?;
        audit(&mut tx, ctx, "mfa.recovery_codes_replaced", "success", user, None, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(codes)
    }
}
