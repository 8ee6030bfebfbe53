//! Second factors, as the seed guides describe them: an authenticator app (set up after a
//! texted check of the registered mobile) or emailed codes, enforced per organisation; recovery
//! codes; and a proven recovery phone that lets a person who lost their device start again.
//!
//! After the password, a session is at the second-factor stage (the person has a factor) or
//! the set-up stage (they have none and one is required); only a proven factor makes it a full
//! session, with a new token. Setting up a factor signs the person out so that the factor takes
//! effect at the next sign-in.

use usher_domain::account::SessionStage;
use usher_domain::ids::MessageId;
use usher_domain::phone::MobileNumber;
use usher_domain::recovery::{self, RecoveryCode};
use usher_domain::secret::SecretString;
use usher_domain::totp::{self, TotpSecret};
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::{Factor, FactorKind, Tx, User};

use crate::codes::{Checked, Medium};
use crate::sessions::{Authenticated, replace_session};
use crate::{App, RequestContext, commit_outcome, messages, store_error};

/// New QR codes one session may ask for (each page load makes one).
const MAX_QR_CODES_PER_SESSION: usize = 10;

/// A way to prove the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A code from an authenticator app.
    App,
    /// A code sent to the account's email address.
    Email,
    /// One of the recovery codes.
    RecoveryCode,
    /// A code texted to the recovery phone.
    RecoveryText,
}

impl Method {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "app" => Some(Self::App),
            "email" => Some(Self::Email),
            "recovery_code" => Some(Self::RecoveryCode),
            "recovery_text" => Some(Self::RecoveryText),
            _ => None,
        }
    }
}

/// What the second-factor page offers a person.
#[derive(Debug, Clone)]
pub struct SecondFactorView {
    pub has_app: bool,
    pub has_email: bool,
    pub recovery_codes_left: usize,
    /// The last 4 digits of a proven recovery phone.
    pub recovery_phone: Option<String>,
    pub email: String,
}

impl SecondFactorView {
    pub fn methods(&self) -> Vec<Method> {
        let mut m = Vec::new();
        if self.has_app {
            m.push(Method::App);
        }
        if self.has_email {
            m.push(Method::Email);
        }
        if self.recovery_codes_left > 0 {
            m.push(Method::RecoveryCode);
        }
        m
    }
}

/// A full session after the second factor.
#[derive(Debug)]
pub struct SecondFactorProven {
    pub token: usher_domain::secret::Token,
    /// When a recovery code was used: how many are left.
    pub recovery_codes_left: Option<usize>,
}

/// Where a person setting up a factor has got to.
#[derive(Debug, Clone)]
pub struct SetupView {
    /// Last 4 digits of the registered mobile, where the check is texted.
    pub mobile_last_four: Option<String>,
    /// The check code has been sent (texted, or emailed to those without a mobile).
    pub check_sent: bool,
    /// The check has been passed in this session: the app can be added.
    pub check_done: bool,
    /// Emailed codes may be set up.
    pub email_allowed: bool,
    /// An emailed set-up code has been sent.
    pub email_sent: bool,
    pub email: String,
    /// Required by the organisation or the deployment.
    pub required: bool,
    /// The person is adding a further factor from their security page.
    pub adding: bool,
}

/// A new authenticator-app secret, to show once as a QR code and as text.
#[derive(Debug, Clone)]
pub struct AppEnrolment {
    pub secret_text: SecretString,
    pub otpauth_uri: SecretString,
    pub seconds_left: i64,
}

/// After a factor is set up.
#[derive(Debug)]
pub struct FactorAdded {
    /// A first set of recovery codes, to show once.
    pub recovery_codes: Option<Vec<String>>,
}

/// One of a person's factors, for the security page.
#[derive(Debug, Clone)]
pub struct FactorRow {
    pub id: String,
    pub kind: FactorKind,
    pub added_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// The security page.
#[derive(Debug, Clone)]
pub struct SecurityView {
    pub factors: Vec<FactorRow>,
    pub recovery_codes_left: usize,
    pub recovery_phone: Option<String>,
    pub required: bool,
    pub email_allowed: bool,
}

fn setup_check_flow(who: &Authenticated) -> String {
    format!("factor-check:{}", who.session.id)
}

fn setup_email_flow(who: &Authenticated) -> String {
    format!("factor-email:{}", who.session.id)
}

fn sign_in_email_flow(who: &Authenticated) -> String {
    format!("sign-in-email:{}", who.session.id)
}

fn recovery_text_flow(who: &Authenticated) -> String {
    format!("recovery-text:{}", who.session.id)
}

fn recovery_phone_flow(who: &Authenticated, phone: &MobileNumber) -> String {
    format!("recovery-phone:{}:{}", who.session.id, phone)
}

async fn audit(
    tx: &mut Tx,
    ctx: &RequestContext,
    action: &str,
    outcome: &str,
    user: &User,
    detail: Option<String>,
    now: Timestamp,
) -> Result<(), Error> {
    let mut event = ctx.event(action, outcome);
    event.actor_id = Some(user.id.to_string());
    event.subject_id = Some(user.id.to_string());
    event.organisation_id = user.organisation_id.as_ref().map(ToString::to_string);
    event.detail = detail;
    tx.append_audit(&event, now).await.map_err(store_error)?;
    Ok(())
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
}

fn wrong_stage() -> Error {
    Error::new(ErrorCode::Forbidden, "This page is not part of where you are in signing in. Go back to the start.")
}

impl App {
    /// Whether a person must have a second factor, and whether emailed codes may be one: the
    /// deployment's, tightened (never loosened) by the organisation's choice.
    pub async fn second_factor_rules(&self, tx: &mut Tx, user: &User) -> Result<(bool, bool), Error> {
        let rules = self.policy_for(tx, user).await?.second_factor;
        Ok((rules.required, rules.email_codes))
    }

    /// Where a session starts once the password is proven.
    pub(crate) async fn stage_after_password(&self, tx: &mut Tx, user: &User) -> Result<SessionStage, Error> {
        if !tx.factors(&user.id).await.map_err(store_error)?.is_empty() {
            return Ok(SessionStage::SecondFactor);
        }
        let (required, _) = self.second_factor_rules(tx, user).await?;
        Ok(if required { SessionStage::Setup } else { SessionStage::Full })
    }

    pub async fn second_factor_view(&self, who: &Authenticated) -> Result<SecondFactorView, Error> {
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let factors = tx.factors(&who.user.id).await.map_err(store_error)?;
        let left = tx.unused_recovery_codes(&who.user.id).await.map_err(store_error)?.len();
        Ok(SecondFactorView {
            has_app: factors.iter().any(|f| f.kind == FactorKind::App),
            has_email: factors.iter().any(|f| f.kind == FactorKind::Email),
            recovery_codes_left: left,
            recovery_phone: who
                .user
                .recovery_phone
                .clone()
                .map(|p| MobileNumber::from_trusted(p).last_four().to_owned()),
            email: who.user.email.to_string(),
        })
    }

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
    pub(crate) async fn check_app_code(
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

    /// Checks a recovery code and uses it; `Some(left)` when it worked.
    pub(crate) async fn use_recovery_code(
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

    /// Proves the second factor of a session at that stage; on success the session is replaced
    /// by a full one. Wrong answers count towards a lock, whatever the method (S13).
    pub async fn verify_second_factor(
        &self,
        who: &Authenticated,
        method: Method,
        entered: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<SecondFactorProven, Error> {
        if who.session.stage != SessionStage::SecondFactor {
            return Err(wrong_stage());
        }
        let user = &who.user;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", user.id)).await.map_err(store_error)?;
        let factors = tx.factors(&user.id).await.map_err(store_error)?;
        let mut recovery_codes_left = None;
        let refusal: String = match method {
            Method::App => self.check_app_code(&mut tx, user, entered, now).await?.unwrap_or_default(),
            Method::Email => {
                if !factors.iter().any(|f| f.kind == FactorKind::Email) {
                    return Err(Error::field("code", "Email codes are not set up for your account"));
                }
                match self
                    .check_code(&mut tx, &sign_in_email_flow(who), self.policy.email_code, entered, Medium::Email, now)
                    .await?
                {
                    Checked::Accepted => String::new(),
                    Checked::Refused(m) => m.into(),
                    Checked::Exhausted => "Too many wrong codes. Sign in again to get a new code".into(),
                }
            }
            Method::RecoveryCode => match self.use_recovery_code(&mut tx, user, entered, now).await? {
                Some(left) => {
                    recovery_codes_left = Some(left);
                    String::new()
                }
                None => "That recovery code is not right, or has been used. Each code works once".into(),
            },
            Method::RecoveryText => return Err(wrong_stage()),
        };
        let method_name = format!("{method:?}").to_lowercase();
        if !refusal.is_empty() {
            self.count_second_factor_failure(&mut tx, user, &method_name, ctx, now).await?;
            tx.commit().await.map_err(store_error)?;
            return Err(Error::field("code", refusal));
        }
        tx.clear_failed_second_factors(&user.id).await.map_err(store_error)?;
        tx.record_sign_in(&user.id, now).await.map_err(store_error)?;
        let token = replace_session(&mut tx, who, SessionStage::Full, false, ctx, now).await?;
        if let Some(left) = recovery_codes_left {
            let what = format!(
                "a recovery code was used to sign in to your account. You have {left} recovery code{} left; you can make \
                 a new set on your security page.",
                if left == 1 { "" } else { "s" }
            );
            self.tell(&mut tx, user, "recovery_code_used", "a recovery code was used", &what, now).await?;
        }
        audit(&mut tx, ctx, "sign_in.second_factor", "success", user, Some(method_name), now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(SecondFactorProven { token, recovery_codes_left })
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
            tx.end_all_sessions(&user.id, now).await.map_err(store_error)?;
            let why = format!("{lock_after} wrong second-factor codes in a row");
            let mail = messages::account_locked_because(&self.config, user.email.as_str(), &user.full_name, now, &why);
            tx.enqueue(&mail, &self.secret_key, now).await.map_err(store_error)?;
            audit(tx, ctx, "account.locked", "success", user, Some("wrong second factors".into()), now).await?;
        }
        Ok(())
    }

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
        if !tx.factors(&who.user.id).await.map_err(store_error)?.iter().any(|f| f.kind == FactorKind::Email) {
            return Err(Error::field("code", "Email codes are not set up for your account"));
        }
        let sent = self.email_a_code(&mut tx, who, &sign_in_email_flow(who), "sign-in email code", ctx, now).await;
        commit_outcome(tx, sent).await
    }

    async fn email_a_code(
        &self,
        tx: &mut Tx,
        who: &Authenticated,
        flow: &str,
        what: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.send_email_code(tx, &who.user, flow, what, ctx, now).await
    }

    /// Emails a code for `flow`, inside its limits.
    pub(crate) async fn send_email_code(
        &self,
        tx: &mut Tx,
        user: &User,
        flow: &str,
        what: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        if let Err((reason, e)) = self.may_email_code(tx, user.id.as_str(), ctx, now).await? {
            audit(tx, ctx, "code.sent", "refused", user, Some(format!("{what}: {reason}")), now).await?;
            return Err(e);
        }
        match self.issue_code(tx, flow, user.id.as_str(), "email_code", self.policy.email_code, now).await? {
            Ok(code) => {
                let expires_at = now.plus(self.policy.email_code.lifetime);
                let mail = messages::email_code(
                    &self.config,
                    &self.policy,
                    user.email.as_str(),
                    &user.full_name,
                    code.expose(),
                    expires_at,
                );
                tx.enqueue(&mail, &self.secret_key, now).await.map_err(store_error)?;
                audit(tx, ctx, "code.sent", "success", user, Some(what.into()), now).await
            }
            Err(refusal) => {
                audit(tx, ctx, "code.sent", "refused", user, Some(format!("{what}: send limit")), now).await?;
                Err(refusal.message("Sign out, then sign in again to start afresh."))
            }
        }
    }

    /// Texts a code to a registered or recovery number, inside every cap (S29).
    pub(crate) async fn text_a_code(
        &self,
        tx: &mut Tx,
        user: &User,
        phone: &MobileNumber,
        (flow, what): (&str, &str),
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        if let Err((reason, e)) = self.may_text(tx, phone, user.id.as_str(), ctx, now).await? {
            audit(tx, ctx, "code.sent", "refused", user, Some(format!("{what}: {reason}")), now).await?;
            return Err(e);
        }
        match self.issue_code(tx, flow, user.id.as_str(), "sms_code", self.policy.sms_code, now).await? {
            Ok(code) => {
                let expires_at = now.plus(self.policy.sms_code.lifetime);
                let sms = messages::mobile_code(
                    &self.config,
                    phone.as_str(),
                    code.expose(),
                    expires_at,
                    self.policy.sms_code.lifetime.seconds() / 60,
                );
                tx.enqueue(&sms, &self.secret_key, now).await.map_err(store_error)?;
                audit(tx, ctx, "code.sent", "success", user, Some(what.into()), now).await
            }
            Err(refusal) => {
                audit(tx, ctx, "code.sent", "refused", user, Some(format!("{what}: send limit")), now).await?;
                Err(refusal.message("Sign out, then sign in again to start afresh."))
            }
        }
    }

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
        let refusal = self
            .check_code(&mut tx, &recovery_text_flow(who), self.policy.sms_code, entered, Medium::Text, now)
            .await?
            .refusal("Too many wrong codes. Sign in again to start afresh");
        if let Some(message) = refusal {
            self.count_second_factor_failure(&mut tx, user, "recovery_text", ctx, now).await?;
            tx.commit().await.map_err(store_error)?;
            return Err(Error::field("code", message));
        }
        let removed = tx.remove_all_factors(&user.id, now).await.map_err(store_error)?;
        tx.clear_failed_second_factors(&user.id).await.map_err(store_error)?;
        let token = replace_session(&mut tx, who, SessionStage::Setup, false, ctx, now).await?;
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
}

/// Setting up a factor: at the set-up stage after sign-in, or from the security page after the
/// password was entered again.
impl App {
    fn may_set_up(&self, who: &Authenticated, now: Timestamp) -> Result<(), Error> {
        match who.session.stage {
            SessionStage::Setup => Ok(()),
            SessionStage::Full => self.require_recent_password(who, now),
            SessionStage::SecondFactor => Err(wrong_stage()),
        }
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

    pub async fn setup_view(&self, who: &Authenticated, now: Timestamp) -> Result<SetupView, Error> {
        self.may_set_up(who, now)?;
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let (required, email_allowed) = self.second_factor_rules(&mut tx, &who.user).await?;
        let check = tx.code_flow(&setup_check_flow(who)).await.map_err(store_error)?;
        let email = tx.code_flow(&setup_email_flow(who)).await.map_err(store_error)?;
        Ok(SetupView {
            mobile_last_four: who.user.phone.clone().map(|p| MobileNumber::from_trusted(p).last_four().to_owned()),
            check_sent: check.is_some_and(|f| f.sends > 0),
            check_done: self.code_accepted(&mut tx, &setup_check_flow(who)).await?,
            email_allowed,
            email_sent: email.is_some_and(|f| f.sends > 0),
            email: who.user.email.to_string(),
            required,
            adding: who.is_full(),
        })
    }

    /// Sends the check that comes before adding an app: a text to the registered mobile (or,
    /// for someone without one, an email).
    pub async fn send_setup_check(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.may_set_up(who, now)?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", who.user.id)).await.map_err(store_error)?;
        let sent = match &who.user.phone {
            Some(phone) => {
                let phone = MobileNumber::from_trusted(phone.clone());
                self.text_a_code(&mut tx, &who.user, &phone, (&setup_check_flow(who), "set-up check"), ctx, now).await
            }
            None => self.email_a_code(&mut tx, who, &setup_check_flow(who), "set-up check", ctx, now).await,
        };
        commit_outcome(tx, sent).await
    }

    pub async fn confirm_setup_check(
        &self,
        who: &Authenticated,
        entered: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.may_set_up(who, now)?;
        let medium = if who.user.phone.is_some() { Medium::Text } else { Medium::Email };
        let rules = if who.user.phone.is_some() { self.policy.sms_code } else { self.policy.email_code };
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", who.user.id)).await.map_err(store_error)?;
        let result = match self.check_code(&mut tx, &setup_check_flow(who), rules, entered, medium, now).await? {
            Checked::Accepted => Ok(()),
            Checked::Refused(m) => Err(Error::field("code", m)),
            Checked::Exhausted => {
                Err(Error::field("code", "Too many wrong codes. Sign out, then sign in again to start afresh"))
            }
        };
        if result.is_ok() {
            audit(&mut tx, ctx, "mfa.setup_check", "success", &who.user, None, now).await?;
        } else {
            self.count_second_factor_failure(&mut tx, &who.user, "set-up check", ctx, now).await?;
        }
        tx.commit().await.map_err(store_error)?;
        result
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
        let sent = self.email_a_code(&mut tx, who, &setup_email_flow(who), "email factor set-up", ctx, now).await;
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
            .check_code(&mut tx, &setup_email_flow(who), self.policy.email_code, entered, Medium::Email, now)
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

    /// What follows every new factor: a first set of recovery codes if the person has none,
    /// the email, the audit event, and the end of this session (the factor takes effect at the
    /// next sign-in).
    async fn factor_added(
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
        let (what, subject) = match kind {
            FactorKind::App => {
                ("an authenticator app was added to your account as a second factor.", "authenticator app added")
            }
            FactorKind::Email => {
                ("emailed codes were set up as a second factor for your account.", "emailed codes set up")
            }
        };
        self.tell(tx, user, "factor_added", subject, what, now).await?;
        tx.end_session(&who.session.id, now).await.map_err(store_error)?;
        let action = match kind {
            FactorKind::App => "mfa.app_added",
            FactorKind::Email => "mfa.email_added",
        };
        audit(tx, ctx, action, "success", user, None, now).await?;
        Ok(FactorAdded { recovery_codes })
    }

    async fn new_recovery_codes(&self, tx: &mut Tx, user: &User, now: Timestamp) -> Result<Vec<String>, Error> {
        let codes = RecoveryCode::set_of(self.policy.recovery_codes);
        let hashes: Vec<String> = codes.iter().map(|c| c.hash(self.secret_key.bytes())).collect();
        tx.replace_recovery_codes(&user.id, &hashes, now).await.map_err(store_error)?;
        Ok(codes.iter().map(RecoveryCode::shown).collect())
    }
}

/// A person's own security page: their factors, recovery codes and recovery phone.
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
            let mut event = ctx.event("reauthentication", "failure");
            event.actor_id = Some(user.id.to_string());
            event.subject_id = Some(user.id.to_string());
            event.organisation_id = user.organisation_id.as_ref().map(ToString::to_string);
            self.count_wrong_password(&mut tx, user, event, ctx, now, |_| "wrong password".into()).await?;
            tx.commit().await.map_err(store_error)?;
            return Err(Error::field("password", "Your password is not right"));
        }
        tx.clear_failed_sign_ins(&user.id).await.map_err(store_error)?;
        let token = replace_session(&mut tx, who, SessionStage::Full, true, ctx, now).await?;
        audit(&mut tx, ctx, "reauthentication", "success", user, None, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(token)
    }

    pub async fn security_view(&self, who: &Authenticated) -> Result<SecurityView, Error> {
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let (required, email_allowed) = self.second_factor_rules(&mut tx, &who.user).await?;
        let factors = tx
            .factors(&who.user.id)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|f| FactorRow {
                id: f.id,
                kind: f.kind,
                added_at: f.confirmed_at.unwrap_or(f.created_at),
                last_used_at: f.last_used_at,
            })
            .collect();
        Ok(SecurityView {
            factors,
            recovery_codes_left: tx.unused_recovery_codes(&who.user.id).await.map_err(store_error)?.len(),
            recovery_phone: who
                .user
                .recovery_phone
                .clone()
                .map(|p| MobileNumber::from_trusted(p).last_four().to_owned()),
            required,
            email_allowed,
        })
    }

    /// Removes one of the person's factors; never the last where a second factor is required.
    pub async fn remove_factor(
        &self,
        who: &Authenticated,
        id: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.require_recent_password(who, now)?;
        let user = &who.user;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", user.id)).await.map_err(store_error)?;
        let factors = tx.factors(&user.id).await.map_err(store_error)?;
        let Some(factor) = factors.iter().find(|f| f.id == id) else { return Err(Error::not_found()) };
        let (required, _) = self.second_factor_rules(&mut tx, user).await?;
        if required && factors.len() == 1 {
            return Err(Error::new(
                ErrorCode::Conflict,
                "This is your only second factor and your organisation requires one. Add another before removing it.",
            ));
        }
        tx.remove_factor(&user.id, id, now).await.map_err(store_error)?;
        let subject = match factor.kind {
            FactorKind::App => "authenticator app removed",
            FactorKind::Email => "emailed codes removed",
        };
        let what = format!("a second factor ({subject}) was removed from your account.");
        self.tell(&mut tx, user, "factor_removed", subject, &what, now).await?;
        audit(&mut tx, ctx, "mfa.factor_removed", "success", user, Some(factor.kind.as_str().into()), now).await?;
        tx.commit().await.map_err(store_error)
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
