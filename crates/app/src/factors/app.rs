//! Authenticator apps (TOTP, RFC 6238): the secret made at set-up and shown once as a QR code,
//! sealed at rest under the secret key (S10); each step accepted once per person, on any node
//! (S9). Adding one needs the set-up check first (see `setup`).

use usher_domain::evidence::AuthMethod;
use usher_domain::ids::MessageId;
use usher_domain::secret::SecretString;
use usher_domain::totp::{self, TotpSecret};
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::{Factor, FactorKind, Tx, User};

use super::setup::setup_check_flow;
use super::{Answer, Challenge, FactorAdded, KindWords, SecondFactor};
use crate::sessions::Authenticated;
use crate::{App, RequestContext, audit_person as audit, store_error};

/// New QR codes one session may ask for (each page load makes one).
const MAX_QR_CODES_PER_SESSION: usize = 10;

pub(crate) const WORDS: KindWords = KindWords {
    added: "an authenticator app was added to your account as a second factor.",
    added_subject: "authenticator app added",
    added_action: "mfa.app_added",
    removed_subject: "authenticator app removed",
};

/// A code from an authenticator app.
#[derive(Debug)]
pub(crate) struct AuthenticatorApp;

impl SecondFactor for AuthenticatorApp {
    const LABEL: &'static str = "app";
    const PROVES: AuthMethod = AuthMethod::Totp;

    async fn check(
        app: &App,
        tx: &mut Tx,
        user: &User,
        _at: Challenge<'_>,
        entered: &str,
        now: Timestamp,
    ) -> Result<Answer, Error> {
        Ok(match app.check_app_code(tx, user, entered, now).await? {
            None => Answer::Accepted { recovery_codes_left: None },
            Some(refusal) => Answer::Refused(refusal),
        })
    }
}

/// A new authenticator-app secret, to show once as a QR code and as text.
#[derive(Debug, Clone)]
pub struct AppEnrolment {
    pub secret_text: SecretString,
    pub otpauth_uri: SecretString,
    pub seconds_left: i64,
}

impl App {
    /// The step an app code belongs to, for any of the person's confirmed apps. A secret that
    /// cannot be opened (changed in the database, or its key dropped) fails closed.
    fn app_code_step(&self, factors: &[Factor], entered: &str, now: Timestamp) -> Option<(String, i64)> {
        let entered = totp::normalise_entered(entered)?;
        factors.iter().filter(|f| f.kind == FactorKind::App).find_map(|f| {
            let sealed = f.secret.as_deref()?;
            match self.secret_key.open(sealed, f.user_id.as_str()) {
                Ok(bytes) => TotpSecret::from_bytes(bytes).matching_step(&entered, now).map(|s| (f.id.clone(), s)),
                Err(e) => {
                    tracing::error!(factor = %f.id, error = %e, "authenticator secret cannot be opened");
                    None
                }
            }
        })
    }

    /// Checks an app code against the person's apps and accepts its step once; the refusal
    /// message, or `None` when accepted.
    async fn check_app_code(
        &self,
        tx: &mut Tx,
        user: &User,
        entered: &str,
        now: Timestamp,
    ) -> Result<Option<String>, Error> {
        let factors = tx.factors(&user.id).await.map_err(store_error)?;
        Ok(match self.app_code_step(&factors, entered, now) {
            Some((factor, step)) => {
                if tx.accept_totp_step(&user.id, step).await.map_err(store_error)? {
                    tx.touch_factor(&factor, now).await.map_err(store_error)?;
                    None
                } else {
                    Some("That code has already been used. Wait for your app to show a new code and enter that".into())
                }
            }
            None => Some("The code is not right. Enter the code your authenticator app shows now".into()),
        })
    }

    /// Makes a new authenticator secret for the person to scan; every earlier unconfirmed one
    /// stops working, so only the newest QR code can be confirmed.
    pub async fn begin_app_setup(&self, who: &Authenticated, now: Timestamp) -> Result<AppEnrolment, Error> {
        self.may_set_up(who, now)?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", who.user.id)).await.map_err(store_error)?;
        if !self.code_accepted(&mut tx, &setup_check_flow(who)).await? {
            return Err(Error::new(ErrorCode::Conflict, "Confirm the code we sent you first."));
        }
        let pending =
            tx.pending_factors(&who.user.id, who.session.id.as_str(), FactorKind::App).await.map_err(store_error)?;
        if pending.len() >= MAX_QR_CODES_PER_SESSION {
            // Not a limit that time frees: the session has made its share of secrets.
            return Err(Error::new(
                ErrorCode::Conflict,
                "Too many new QR codes. Scan the last one shown, or sign out and start again.",
            ));
        }
        let secret = TotpSecret::generate();
        let sealed = self.secret_key.seal(secret.bytes(), who.user.id.as_str()).map_err(Error::internal)?;
        tx.begin_factor(
            MessageId::generate().as_str(),
            &who.user.id,
            FactorKind::App,
            Some(&sealed),
            who.session.id.as_str(),
            now,
        )
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(self.enrolment(who, &secret, now))
    }

    /// What the set-up page shows of a secret: the key as text and the `otpauth://` URI.
    fn enrolment(&self, who: &Authenticated, secret: &TotpSecret, now: Timestamp) -> AppEnrolment {
        AppEnrolment {
            secret_text: SecretString::new(secret.base32_grouped()),
            otpauth_uri: SecretString::new(secret.otpauth_uri(&self.config.service_name, who.user.email.as_str())),
            seconds_left: totp::seconds_left(now),
        }
    }

    /// The newest unconfirmed authenticator secret of this session, to show again after a
    /// wrong code (without making a new one).
    pub async fn current_app_enrolment(
        &self,
        who: &Authenticated,
        now: Timestamp,
    ) -> Result<Option<AppEnrolment>, Error> {
        self.may_set_up(who, now)?;
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let pending =
            tx.pending_factors(&who.user.id, who.session.id.as_str(), FactorKind::App).await.map_err(store_error)?;
        let Some(newest) = pending.into_iter().find(|f| f.superseded_at.is_none()) else { return Ok(None) };
        let Some(sealed) = newest.secret.as_deref() else { return Ok(None) };
        let secret =
            TotpSecret::from_bytes(self.secret_key.open(sealed, who.user.id.as_str()).map_err(Error::internal)?);
        Ok(Some(self.enrolment(who, &secret, now)))
    }

    /// Confirms the newest authenticator secret with a code from the app.
    pub async fn confirm_app_setup(
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
        let mut pending =
            tx.pending_factors(&user.id, who.session.id.as_str(), FactorKind::App).await.map_err(store_error)?;
        let Some(newest) = pending.iter().position(|f| f.superseded_at.is_none()).map(|i| pending.remove(i)) else {
            return Err(Error::new(ErrorCode::Conflict, "Start again: make a new QR code and scan it."));
        };
        let refusal = if totp::normalise_entered(entered).is_none() {
            Some("Enter the 6-digit code from your authenticator app")
        } else if let Some((_, step)) = self.app_code_step(std::slice::from_ref(&newest), entered, now) {
            if tx.accept_totp_step(&user.id, step).await.map_err(store_error)? {
                None
            } else {
                Some("That code has already been used. Wait for your app to show a new code and enter that")
            }
        } else if self.app_code_step(&pending, entered, now).is_some() {
            Some(
                "That code is from an older QR code. Delete every entry for this service in your app, then scan the QR code on this page",
            )
        } else {
            Some("The code is not right. Enter the code your app shows now, before it changes")
        };
        if let Some(message) = refusal {
            audit(&mut tx, ctx, "mfa.app_added", "failure", user, None, now).await?;
            tx.commit().await.map_err(store_error)?;
            return Err(Error::field("code", message));
        }
        if !tx.confirm_factor(&newest.id, now).await.map_err(store_error)? {
            return Err(Error::new(ErrorCode::Conflict, "Start again: make a new QR code and scan it."));
        }
        let added = self.factor_added(&mut tx, who, FactorKind::App, ctx, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(added)
    }

    /// Seals every authenticator secret under the current key, after a rotation. Returns how
    /// many were sealed again; those that cannot be opened are counted apart and left alone.
    pub async fn reseal_secrets(&self) -> Result<(u64, u64), Error> {
        let (mut resealed, mut unopenable) = (0, 0);
        let mut after = String::new();
        loop {
            let mut tx = self.store.begin().await.map_err(store_error)?;
            let batch = tx.sealed_secrets_after(&after, 500).await.map_err(store_error)?;
            let Some(last) = batch.last() else { break };
            after = last.id.clone();
            for f in &batch {
                let Some(sealed) = f.secret.as_deref().filter(|s| self.secret_key.is_stale(s)) else { continue };
                match self.secret_key.open(sealed, f.user_id.as_str()) {
                    Ok(plain) => {
                        let new = self.secret_key.seal(&plain, f.user_id.as_str()).map_err(Error::internal)?;
                        if tx.reseal_factor(&f.id, sealed, &new).await.map_err(store_error)? {
                            resealed += 1;
                        }
                    }
                    Err(_) => unopenable += 1,
                }
            }
            tx.commit().await.map_err(store_error)?;
        }
        Ok((resealed, unopenable))
    }
}
