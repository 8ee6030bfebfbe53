//! The password lifecycle: the policy in force for a person, change (current password
//! required), reset by emailed link, and the history that stops the last 5 being reused.

use usher_domain::account::AccountStatus;
use usher_domain::email::EmailAddress;
use usher_domain::error::FieldError;
use usher_domain::limits::{RESET_EMAILS_PER_ACCOUNT, RESET_PER_IP, SIGN_IN_PER_ACCOUNT};
use usher_domain::password::PersonalWords;
use usher_domain::secret::{SecretString, Token};
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::{LinkPurpose, OneTimeLink, Tx, User};

use crate::factors::{Answer, Challenge, Method, email_code, recovery_phone};
use crate::links::{LinkState, find_link};
use crate::sessions::{Authenticated, successor_session};
use crate::{App, RequestContext, messages, store_error};

/// The shortest time a reset request takes to answer, whatever the address.
const RESET_ANSWER_FLOOR_SECONDS: f64 = 0.25;

/// What follows every new password, however it was set (change, reset, operator recovery):
/// it joins the history, older reset links die, every session ends and the person is emailed.
pub(crate) async fn after_new_password(
    tx: &mut Tx,
    app: &App,
    user: &User,
    hash: &str,
    now: Timestamp,
) -> Result<(), Error> {
    tx.remember_password(&user.id, hash, now).await.map_err(store_error)?;
    tx.kill_links(&user.id, LinkPurpose::PasswordReset, now).await.map_err(store_error)?;
    let ended = tx.end_all_sessions(&user.id, "password changed", now).await.map_err(store_error)?;
    app.tell_services(tx, ended, now).await?;
    let mail = messages::password_changed(&app.config, user.email.as_str(), &user.full_name, now);
    tx.enqueue(&mail, &app.secret_key, now).await.map_err(store_error)?;
    Ok(())
}

impl App {
    /// Every rule a new password breaks, including reuse of one of the last ones. Empty: fine.
    pub(crate) async fn new_password_problems(
        &self,
        tx: &mut Tx,
        user: &User,
        password: &SecretString,
        confirm: &SecretString,
    ) -> Result<Vec<FieldError>, Error> {
        let policy = self.policy_for(tx, user).await?.password;
        let words = PersonalWords { full_name: &user.full_name, email: user.email.as_str() };
        let mut fields: Vec<FieldError> = policy
            .check(password.expose(), &words)
            .map(|message| FieldError { field: "password", message })
            .into_iter()
            .collect();
        if fields.is_empty() && policy.history > 0 {
            let n = i64::try_from(policy.history).unwrap_or(5);
            let recent = tx.recent_passwords(&user.id, n).await.map_err(store_error)?;
            for stored in recent {
                if self.hasher.verify(stored, password.expose().to_owned()).await? {
                    fields.push(FieldError {
                        field: "password",
                        message: format!(
                            "Choose a password you have not used before: your last {n} cannot be used again"
                        ),
                    });
                    break;
                }
            }
        }
        if fields.is_empty() && password != confirm {
            fields.push(FieldError {
                field: "confirm_password",
                message: "Passwords do not match. Type the same password twice".into(),
            });
        }
        Ok(fields)
    }

    /// Changes the signed-in person's password. Every other session ends, this one is replaced
    /// (the person re-authenticated), and they are emailed. Returns the new session token.
    pub async fn change_password(
        &self,
        who: &Authenticated,
        current: &SecretString,
        password: &SecretString,
        confirm: &SecretString,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Token, Error> {
        let user = &who.user;
        let stored = user.password_hash.clone().unwrap_or_else(|| self.hasher.dummy_hash().to_owned());
        if !self.hasher.verify(stored.clone(), current.expose().to_owned()).await? {
            let mut tx = self.store.begin().await.map_err(store_error)?;
            let event = ctx.person_event("password.change", "failure", user);
            // Guessing the current password counts towards the lock like any wrong password.
            self.count_wrong_password(&mut tx, user, event, ctx, now, |_| "wrong current password".into()).await?;
            tx.commit().await.map_err(store_error)?;
            return Err(Error::field("current_password", "Your current password is not right"));
        }
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let problems = self.new_password_problems(&mut tx, user, password, confirm).await?;
        if !problems.is_empty() {
            return Err(Error::invalid(problems));
        }
        drop(tx);
        let hash = self.hasher.hash(password.expose().to_owned()).await?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", user.id)).await.map_err(store_error)?;
        // Only if nothing changed meanwhile: not locked, not reset, this session still live.
        let still_live = tx.session_is_live(&who.session.id).await.map_err(store_error)?;
        if !still_live || !tx.change_password_if_current(&user.id, &stored, &hash, now).await.map_err(store_error)? {
            return Err(Error::field("current_password", "Your current password is not right"));
        }
        after_new_password(&mut tx, self, user, &hash, now).await?;
        let token = successor_session(&mut tx, who, ctx, now).await?;
        let event = ctx.person_event("password.changed", "success", user);
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(token)
    }

    /// "Reset your password": always the same answer. A known, active or locked account gets
    /// an email with a single-use link for an hour; a newer request kills the older link.
    pub async fn request_password_reset(&self, email: &str, ctx: &RequestContext, now: Timestamp) -> Result<(), Error> {
        // Known and unknown addresses do different work; the answer waits for a fixed floor so
        // the time taken says nothing about which it was (S6).
        let watch = crate::clock::Stopwatch::start();
        let result = self.request_password_reset_inner(email, ctx, now).await;
        let left = RESET_ANSWER_FLOOR_SECONDS - watch.elapsed_seconds();
        if left > 0.0 {
            tokio::time::sleep(std::time::Duration::from_secs_f64(left)).await;
        }
        result
    }

    async fn request_password_reset_inner(
        &self,
        email: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.rate_limit(RESET_PER_IP, ctx.ip.as_deref().unwrap_or("unknown"), now).await?;
        let Ok(email) = EmailAddress::parse(email) else {
            return Err(Error::field("email", "Enter your email address, like name@example.com"));
        };
        // Counted for every address, known or not, so both take the same path this far.
        let under_cap = self.within_limit(RESET_EMAILS_PER_ACCOUNT, email.as_str(), now).await?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let user = tx.user_by_email(&email).await.map_err(store_error)?;
        let mut event = ctx.event("password.reset_requested", "success");
        let Some(user) = user.filter(|u| matches!(u.status, AccountStatus::Active | AccountStatus::Locked)) else {
            event.detail = Some("no usable account".into());
            tx.append_audit(&event, now).await.map_err(store_error)?;
            return tx.commit().await.map_err(store_error);
        };
        event.subject_id = Some(user.id.to_string());
        event.organisation_id = user.organisation_id.as_ref().map(ToString::to_string);
        if !under_cap {
            event.outcome = "refused".into();
            event.detail = Some("reset emails per hour reached".into());
            tx.append_audit(&event, now).await.map_err(store_error)?;
            return tx.commit().await.map_err(store_error);
        }
        // One link at a time per person, on any node: a newer request kills the older link.
        tx.lock(&format!("user:{}", user.id)).await.map_err(store_error)?;
        let token = Token::generate();
        let expires_at = now.plus(self.policy.reset_link);
        let link = OneTimeLink::new(token.hash(), LinkPurpose::PasswordReset, Some(user.id.clone()), now, expires_at);
        tx.replace_link(&link).await.map_err(store_error)?;
        let url = format!("{}/reset-password/{}", self.config.base_url(), token.expose());
        tx.enqueue(
            &messages::password_reset(
                &self.config,
                &self.policy,
                user.email.as_str(),
                &user.full_name,
                &url,
                expires_at,
            ),
            &self.secret_key,
            now,
        )
        .await
        .map_err(store_error)?;
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)
    }

    /// The person a reset link is for and what it still needs, or why it cannot be used.
    pub async fn open_password_reset(&self, token: &str, now: Timestamp) -> Result<ResetView, Error> {
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let (link, user) = live_reset(&mut tx, token, &self.policy, now).await?;
        let policy = self.policy_for(&mut tx, &user).await?;
        let password_rules = policy.password.describe();
        let factors =
            crate::factors::usable(tx.factors(&user.id).await.map_err(store_error)?, policy.second_factor.email_codes);
        let recovery_codes_left = tx.unused_recovery_codes(&user.id).await.map_err(store_error)?.len();
        let text_sent =
            tx.code_flow(&recovery_phone::reset_flow(&link)).await.map_err(store_error)?.is_some_and(|f| f.sends > 0);
        Ok(ResetView {
            needs_second_factor: !factors.is_empty() && link.second_factor_at.is_none(),
            has_app: factors.iter().any(|f| f.kind == usher_store::FactorKind::App),
            has_email: factors.iter().any(|f| f.kind == usher_store::FactorKind::Email),
            recovery_codes_left,
            recovery_phone: user
                .recovery_phone
                .clone()
                .map(|p| usher_domain::phone::MobileNumber::from_trusted(p).last_four().to_owned()),
            text_sent,
            password_rules,
            user,
        })
    }

    /// Proves the second factor for a reset link (S15): a code from the app, a recovery code,
    /// a code texted to the recovery phone, or, for those whose factor is emailed codes, an
    /// emailed code.
    pub async fn reset_second_factor(
        &self,
        token: &str,
        method: Method,
        entered: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let (_, user) = live_reset(&mut tx, token, &self.policy, now).await?;
        tx.lock(&format!("user:{}", user.id)).await.map_err(store_error)?;
        let (link, user) = live_reset(&mut tx, token, &self.policy, now).await?;
        // Wrong answers count against the account, whatever the link, also while it is locked:
        // at the limit, only an administrator's unlock opens the way again (S13).
        if user.failed_second_factors >= self.policy.lock_after_wrong_second_factors {
            let mut event = ctx.event("password.reset_second_factor", "refused");
            event.subject_id = Some(user.id.to_string());
            event.detail = Some("too many wrong second factors".into());
            tx.append_audit(&event, now).await.map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
            return Err(Error::new(
                ErrorCode::Forbidden,
                "There have been too many wrong codes for this account. Ask your organisation administrator to unlock it.",
            ));
        }
        let answer = self.check_second_factor(&mut tx, &user, method, Challenge::Reset(&link), entered, now).await?;
        let (refusal, recovery_codes_left) = match answer {
            Answer::Accepted { recovery_codes_left } => (None, recovery_codes_left),
            Answer::Refused(message) => (Some(message), None),
        };
        let mut event = ctx.person_event("password.reset_second_factor", "success", &user);
        event.detail = Some(method.label().to_owned());
        if let Some(message) = refusal {
            event.outcome = "failure".into();
            tx.append_audit(&event, now).await.map_err(store_error)?;
            let method = format!("{} on a reset link", method.label());
            self.count_second_factor_failure(&mut tx, &user, &method, ctx, now).await?;
            tx.commit().await.map_err(store_error)?;
            return Err(Error::field("code", message));
        }
        tx.record_link_second_factor(&link.token_hash, now).await.map_err(store_error)?;
        tx.append_audit(&event, now).await.map_err(store_error)?;
        // Any recovery is told to the person (S17, S18).
        let what = match (method, recovery_codes_left) {
            (Method::RecoveryCode, Some(left)) => Some(format!(
                "a recovery code was used to reset your password. You have {left} recovery code{} left.",
                if left == 1 { "" } else { "s" }
            )),
            (Method::RecoveryText, _) => {
                Some("a code texted to your recovery phone was used to reset your password.".to_owned())
            }
            _ => None,
        };
        if let Some(what) = what {
            self.tell(&mut tx, &user, "recovery_used", "recovery used for a password reset", &what, now).await?;
        }
        tx.commit().await.map_err(store_error)
    }

    /// Emails a code to the person a reset link is for, when emailed codes are their factor.
    pub async fn send_reset_email_code(&self, token: &str, ctx: &RequestContext, now: Timestamp) -> Result<(), Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let (link, user) = live_reset(&mut tx, token, &self.policy, now).await?;
        tx.lock(&format!("user:{}", user.id)).await.map_err(store_error)?;
        if !self.usable_factors(&mut tx, &user).await?.iter().any(|f| f.kind == usher_store::FactorKind::Email) {
            return Err(Error::new(ErrorCode::Conflict, "Emailed codes are not set up for your account."));
        }
        let sent =
            self.send_email_code(&mut tx, &user, &email_code::reset_flow(&link), "reset email code", ctx, now).await;
        crate::commit_outcome(tx, sent).await
    }

    /// Texts a code to the recovery phone of the person a reset link is for.
    pub async fn send_reset_text(&self, token: &str, ctx: &RequestContext, now: Timestamp) -> Result<(), Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let (link, user) = live_reset(&mut tx, token, &self.policy, now).await?;
        let Some(phone) = user.recovery_phone.clone() else {
            return Err(Error::new(ErrorCode::Conflict, "Your account has no recovery phone."));
        };
        tx.lock(&format!("user:{}", user.id)).await.map_err(store_error)?;
        let phone = usher_domain::phone::MobileNumber::from_trusted(phone);
        let sent = self
            .text_a_code(&mut tx, &user, &phone, (&recovery_phone::reset_flow(&link), "reset recovery text"), ctx, now)
            .await;
        crate::commit_outcome(tx, sent).await
    }

    /// Sets a new password from a reset link. Every session ends and the account is unlocked;
    /// the person is emailed and must then sign in (a reset never signs anyone in).
    pub async fn complete_password_reset(
        &self,
        token: &str,
        password: &SecretString,
        confirm: &SecretString,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<User, Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let (_, user) = live_reset(&mut tx, token, &self.policy, now).await?;
        let problems = self.new_password_problems(&mut tx, &user, password, confirm).await?;
        if !problems.is_empty() {
            return Err(Error::invalid(problems));
        }
        drop(tx);
        let hash = self.hasher.hash(password.expose().to_owned()).await?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let (link, user) = live_reset(&mut tx, token, &self.policy, now).await?;
        if link.second_factor_at.is_none() && !self.usable_factors(&mut tx, &user).await?.is_empty() {
            return Err(Error::new(
                ErrorCode::SecondFactorRequired,
                "Confirm it is you with your second factor first.",
            ));
        }
        if !tx.use_link(&link.token_hash, now).await.map_err(store_error)?
            || !tx.reset_password(&user.id, &hash, now).await.map_err(store_error)?
        {
            return Err(reset_link_dead());
        }
        after_new_password(&mut tx, self, &user, &hash, now).await?;
        let mut event = ctx.person_event("password.reset", "success", &user);
        event.detail =
            Some(if user.status == AccountStatus::Locked { "unlocked by the reset".into() } else { "reset".into() });
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        // The person did what the lock message says: they start afresh.
        self.clear_limit(SIGN_IN_PER_ACCOUNT, user.email.as_str()).await?;
        Ok(user)
    }
}

/// A reset link, opened.
#[derive(Debug, Clone)]
pub struct ResetView {
    pub user: User,
    pub password_rules: Vec<String>,
    /// The person has second factors and has not yet proven one with this link.
    pub needs_second_factor: bool,
    pub has_app: bool,
    /// Emailed codes are the person's factor: for them the code is the second factor here too.
    pub has_email: bool,
    pub recovery_codes_left: usize,
    /// The last 4 digits of the recovery phone.
    pub recovery_phone: Option<String>,
    pub text_sent: bool,
}

fn reset_link_dead() -> Error {
    Error::new(
        ErrorCode::LinkUsed,
        "This reset link has been used, or a newer one has replaced it. Ask for a new one from the sign-in page.",
    )
}

async fn live_reset(
    tx: &mut Tx,
    token: &str,
    policy: &usher_domain::policy::Policy,
    now: Timestamp,
) -> Result<(OneTimeLink, User), Error> {
    let link = match find_link(tx, token, &[LinkPurpose::PasswordReset], now).await? {
        LinkState::Live(link) => link,
        LinkState::Used(_) => return Err(reset_link_dead()),
        LinkState::Expired(_) => {
            return Err(Error::new(
                ErrorCode::LinkExpired,
                format!(
                    "Reset links work for {} and this one has expired. Ask for a new one from the sign-in page.",
                    policy.reset_link.in_words()
                ),
            ));
        }
    };
    let Some(user_id) = &link.user_id else { return Err(Error::not_found()) };
    let user = tx.user(user_id).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
    // A link issued before the password last changed is dead (S14).
    if user.password_changed_at.is_some_and(|at| at > link.created_at) {
        return Err(reset_link_dead());
    }
    Ok((link, user))
}
