//! Second factors, as the seed guides describe them: an authenticator app (set up after a
//! texted check of the registered mobile) or emailed codes, enforced per organisation; recovery
//! codes; and a proven recovery phone that lets a person who lost their device start again.
//!
//! After the password, a session is at the second-factor stage (the person has a factor) or
//! the set-up stage (they have none and one is required); only a proven factor makes it a full
//! session, with a new token. Setting up a factor signs the person out so that the factor takes
//! effect at the next sign-in.
//!
//! One module per kind, each owning its set-up, check and removal and its audit actions:
//! [`app`] (TOTP authenticator apps), [`email_code`], [`recovery_code`] and [`recovery_phone`].
//! What every kind shares is in `shared` (counting wrong answers and the lock after too many,
//! finishing the sign-in, what follows a new factor) and `setup` and `security` (the set-up and
//! security pages).
//!
//! # Adding a kind (a passkey, say)
//! 1. A table for its records in a new migration (for a passkey: credential ID, public key,
//!    sign count, backup flags), its queries in `usher_store`, and a [`FactorKind`] variant if
//!    people add and remove it like an app.
//! 2. A module here with a unit struct implementing [`SecondFactor`]: the name the audit trail
//!    gives it, and `check`, which proves or refuses an answer (counting wrong answers is
//!    shared: do not count in the module). Its set-up and removal use cases live in the module
//!    as `impl App` blocks; for a [`FactorKind`], also its [`KindWords`].
//! 3. A [`Method`] variant, and one arm each in [`App::check_second_factor`], [`Method::label`],
//!    [`Method::evidence`] and [`kind_words`]. Its `PROVES` names the [`AuthMethod`] a session
//!    records (add one to `usher_domain::evidence` with its RFC 8176 values if it is new).

pub mod app;
pub mod email_code;
pub mod passkey;
pub mod recovery_code;
pub mod recovery_phone;
mod security;
mod setup;
mod shared;

use usher_domain::account::SessionStage;
use usher_domain::evidence::AuthMethod;
use usher_domain::phone::MobileNumber;
use usher_domain::{Error, Timestamp};
use usher_store::{FactorKind, OneTimeLink, Tx, User};

use crate::sessions::Authenticated;
use crate::{App, RequestContext, audit_person as audit, store_error};

pub(crate) use crate::sessions::wrong_stage;
pub use app::AppEnrolment;
pub use security::{FactorRow, SecurityView};
pub use setup::SetupView;
pub use shared::FactorAdded;
pub(crate) use shared::usable;

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

impl Method {
    /// What a session records once the method is proven.
    pub fn evidence(self) -> AuthMethod {
        match self {
            Self::App => app::AuthenticatorApp::PROVES,
            Self::Email => email_code::EmailCode::PROVES,
            Self::RecoveryCode => recovery_code::RecoveryCodes::PROVES,
            Self::RecoveryText => recovery_phone::RecoveryPhone::PROVES,
        }
    }

    /// How the audit trail names the method.
    pub fn label(self) -> &'static str {
        match self {
            Self::App => app::AuthenticatorApp::LABEL,
            Self::Email => email_code::EmailCode::LABEL,
            Self::RecoveryCode => recovery_code::RecoveryCodes::LABEL,
            Self::RecoveryText => recovery_phone::RecoveryPhone::LABEL,
        }
    }
}

/// Where an answer is checked: at the second step of a sign-in, or on a password reset link
/// (which never signs anyone in, S15).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Challenge<'a> {
    SignIn(&'a Authenticated),
    Reset(&'a OneTimeLink),
}

/// What came of checking an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Accepted {
        /// When a recovery code was used: how many are left.
        recovery_codes_left: Option<usize>,
    },
    /// Refused, with the message for the person.
    Refused(String),
}

impl Answer {
    /// The answer to a sent code (emailed or texted), `exhausted` saying what to do once the
    /// flow has had too many wrong ones.
    pub(crate) fn from_code(checked: crate::codes::Checked, exhausted: &str) -> Self {
        match checked {
            crate::codes::Checked::Accepted => Self::Accepted { recovery_codes_left: None },
            crate::codes::Checked::Refused(m) => Self::Refused(m.into()),
            crate::codes::Checked::Exhausted => Self::Refused(exhausted.into()),
        }
    }
}

/// One kind of second factor. A unit struct per kind implements it; the app dispatches on
/// [`Method`] in [`App::check_second_factor`]. Static dispatch only, so `async fn` needs no boxing.
pub(crate) trait SecondFactor {
    /// How the audit trail names the method.
    const LABEL: &'static str;
    /// What the session records once it is proven.
    const PROVES: AuthMethod;

    /// Checks an answer and uses it up when it is right (a code once, a TOTP step once).
    /// A refusal is returned as [`Answer::Refused`]; the caller counts it towards the lock.
    async fn check(
        app: &App,
        tx: &mut Tx,
        user: &User,
        at: Challenge<'_>,
        entered: &str,
        now: Timestamp,
    ) -> Result<Answer, Error>;
}

/// The words and audit action of a kind that people add and remove on their security page.
#[derive(Debug)]
pub(crate) struct KindWords {
    /// Completes "On {when}, ..." in the email when one is added.
    pub added: &'static str,
    pub added_subject: &'static str,
    pub added_action: &'static str,
    pub removed_subject: &'static str,
}

/// The words of each stored kind.
pub(crate) fn kind_words(kind: FactorKind) -> &'static KindWords {
    match kind {
        FactorKind::App => &app::WORDS,
        FactorKind::Email => &email_code::WORDS,
    }
}

impl App {
    /// Checks an answer with the kind the person chose.
    pub(crate) async fn check_second_factor(
        &self,
        tx: &mut Tx,
        user: &User,
        method: Method,
        at: Challenge<'_>,
        entered: &str,
        now: Timestamp,
    ) -> Result<Answer, Error> {
        match method {
            Method::App => app::AuthenticatorApp::check(self, tx, user, at, entered, now).await,
            Method::Email => email_code::EmailCode::check(self, tx, user, at, entered, now).await,
            Method::RecoveryCode => recovery_code::RecoveryCodes::check(self, tx, user, at, entered, now).await,
            Method::RecoveryText => recovery_phone::RecoveryPhone::check(self, tx, user, at, entered, now).await,
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

/// The second step of signing in.
impl App {
    pub async fn second_factor_view(&self, who: &Authenticated) -> Result<SecondFactorView, Error> {
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let factors = self.usable_factors(&mut tx, &who.user).await?;
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
        if method == Method::RecoveryText {
            // The recovery phone starts again (recover_with_text); it does not sign in.
            return Err(wrong_stage());
        }
        let answer = self.check_second_factor(&mut tx, user, method, Challenge::SignIn(who), entered, now).await?;
        let method_name = method.label();
        let recovery_codes_left = match answer {
            Answer::Accepted { recovery_codes_left } => recovery_codes_left,
            Answer::Refused(refusal) => {
                self.count_second_factor_failure(&mut tx, user, method_name, ctx, now).await?;
                tx.commit().await.map_err(store_error)?;
                return Err(Error::field("code", refusal));
            }
        };
        let token = self.complete_sign_in(&mut tx, who, method, ctx, now).await?;
        if let Some(left) = recovery_codes_left {
            let what = format!(
                "a recovery code was used to sign in to your account. You have {left} recovery code{} left; you can make \
                 a new set on your security page.",
                if left == 1 { "" } else { "s" }
            );
            self.tell(&mut tx, user, "recovery_code_used", "a recovery code was used", &what, now).await?;
        }
        audit(&mut tx, ctx, "sign_in.second_factor", "success", user, Some(method_name.into()), now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(SecondFactorProven { token, recovery_codes_left })
    }
}
