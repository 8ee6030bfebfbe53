//! The first operator's set-up and the operator recovery link, both printed on the server's
//! console rather than emailed: whoever runs the server is trusted to run it.

use usher_domain::account::{AccountStatus, Role};
use usher_domain::duration::Span;
use usher_domain::email::EmailAddress;
use usher_domain::error::FieldError;
use usher_domain::ids::UserId;
use usher_domain::password::PersonalWords;
use usher_domain::secret::{SecretString, Token};
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::{LinkPurpose, NewUser, OneTimeLink, Tx, User};

use crate::links::{LinkState, find_link};
use crate::sessions::start_session;
use crate::{App, RequestContext, messages, store_error};

/// How long the first operator's set-up link lasts. Restarting the server prints a new one.
pub const SETUP_LINK_LIFETIME: Span = Span::hours(24);
/// How long an operator recovery link lasts.
pub const RECOVERY_LINK_LIFETIME: Span = Span::hours(1);

/// What the person following a one-time operator link is about to do.
#[derive(Debug, Clone)]
pub enum OperatorLink {
    /// Set up the first operator account.
    Setup,
    /// Choose a new password for this operator.
    Recovery(Box<User>),
}

/// The answers on the set-up form.
#[derive(Debug, Clone, Default)]
pub struct SetupForm {
    pub full_name: String,
    pub email: String,
    pub password: SecretString,
    pub confirm_password: SecretString,
}

/// A session started by a use case; the web layer puts the token in the cookie.
#[derive(Debug)]
pub struct SignedIn {
    pub token: Token,
    pub user: User,
    /// Whether the person is signed in or has a second factor to give or set up first.
    pub stage: usher_domain::account::SessionStage,
}

impl App {
    /// The set-up link for the first operator, or `None` once an operator exists. Each call
    /// makes a new link and kills the previous one.
    pub async fn operator_setup_link(&self, now: Timestamp) -> Result<Option<String>, Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock("operator_setup").await.map_err(store_error)?;
        if tx.count_users_with_role(Role::Operator).await.map_err(store_error)? > 0 {
            return Ok(None);
        }
        let token = Token::generate();
        let link = OneTimeLink::new(token.hash(), LinkPurpose::OperatorSetup, None, now, now.plus(SETUP_LINK_LIFETIME));
        tx.replace_link(&link).await.map_err(store_error)?;
        tx.append_audit(&RequestContext::system("usher serve").event("operator.setup_link_issued", "success"), now)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(Some(format!("{}/setup/{}", self.config.base_url(), token.expose())))
    }

    /// A recovery link for a locked-out operator. With several operators, `email` says which.
    /// A one-time link for a locked-out operator to set a new password; with `reset_factors`,
    /// their second factors go too (a lost device), and they set up a new one after it.
    pub async fn operator_recovery_link(
        &self,
        email: Option<&str>,
        reset_factors: bool,
        now: Timestamp,
    ) -> Result<(User, String), Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let operators = tx.users_with_role(Role::Operator).await.map_err(store_error)?;
        let operator = match (email, operators.as_slice()) {
            (_, []) => {
                return Err(Error::new(
                    ErrorCode::NotFound,
                    "There is no operator yet: start `usher serve` and follow the set-up link it prints.",
                ));
            }
            (None, [only]) => only.clone(),
            (None, _) => {
                return Err(Error::field("email", "There is more than one operator: say which with --email"));
            }
            (Some(wanted), all) => {
                let wanted = EmailAddress::parse(wanted).map_err(|m| Error::field("email", m))?;
                all.iter()
                    .find(|u| u.email == wanted)
                    .cloned()
                    .ok_or_else(|| Error::field("email", "No operator has that email address"))?
            }
        };
        let token = Token::generate();
        let link = OneTimeLink::new(
            token.hash(),
            LinkPurpose::OperatorRecovery,
            Some(operator.id.clone()),
            now,
            now.plus(RECOVERY_LINK_LIFETIME),
        );
        tx.replace_link(&link).await.map_err(store_error)?;
        let ctx = RequestContext::system("usher operator recover");
        let mut event = ctx.event("operator.recovery_link_issued", "success");
        event.subject_id = Some(operator.id.to_string());
        tx.append_audit(&event, now).await.map_err(store_error)?;
        if reset_factors {
            let removed = tx.remove_all_factors(&operator.id, now).await.map_err(store_error)?;
            let ended = tx.end_all_sessions(&operator.id, "second factors reset", now).await.map_err(store_error)?;
            self.tell_services(&mut tx, ended, now).await?;
            self.tell(
                &mut tx,
                &operator,
                "factors_reset",
                "your second factors were reset",
                "your second factors and recovery codes were removed with `usher operator recover` on the server. \
                 Set up a new second factor after choosing a new password.",
                now,
            )
            .await?;
            let mut event = ctx.event("mfa.factors_reset", "success");
            event.subject_id = Some(operator.id.to_string());
            event.detail = Some(format!("{removed} factors removed from the command line"));
            tx.append_audit(&event, now).await.map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        Ok((operator, format!("{}/setup/{}", self.config.base_url(), token.expose())))
    }

    /// What a one-time operator link is for, or why it cannot be used.
    pub async fn open_operator_link(&self, token: &str, now: Timestamp) -> Result<OperatorLink, Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let (_, view) = live_link(&mut tx, token, now).await?;
        Ok(view)
    }

    /// Completes the first operator's set-up or an operator's recovery, and signs them in.
    pub async fn complete_operator_link(
        &self,
        token: &str,
        form: SetupForm,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<SignedIn, Error> {
        let view = self.open_operator_link(token, now).await?;
        let (full_name, email) = match &view {
            OperatorLink::Setup => match validate_identity(&form) {
                Ok(identity) => identity,
                // Show every mistake at once: the identity's and the password's.
                Err(mut e) => {
                    let partial =
                        EmailAddress::parse(&form.email).unwrap_or_else(|_| EmailAddress::from_trusted(String::new()));
                    if let Err(p) = self.check_new_password(&form, form.full_name.trim(), &partial) {
                        e.fields.extend(p.fields);
                    }
                    return Err(Error::invalid(e.fields));
                }
            },
            OperatorLink::Recovery(user) => (user.full_name.clone(), user.email.clone()),
        };
        self.check_new_password(&form, &full_name, &email)?;
        let hash = self.hasher.hash(form.password.expose().to_owned()).await?;

        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock("operator_setup").await.map_err(store_error)?;
        let (link, view) = live_link(&mut tx, token, now).await?;
        if !tx.use_link(&link.token_hash, now).await.map_err(store_error)? {
            return Err(link_used());
        }
        let user = match view {
            OperatorLink::Setup => {
                if tx.count_users_with_role(Role::Operator).await.map_err(store_error)? > 0 {
                    return Err(link_used());
                }
                let new = NewUser {
                    id: UserId::generate(),
                    role: Role::Operator,
                    organisation_id: None,
                    full_name,
                    email: email.clone(),
                    phone: None,
                    status: AccountStatus::Active,
                    added_by: None,
                };
                tx.insert_user(&new, now).await.map_err(store_error)?;
                tx.set_password(&new.id, &hash, now).await.map_err(store_error)?;
                tx.remember_password(&new.id, &hash, now).await.map_err(store_error)?;
                tx.enqueue(
                    &messages::operator_account_created(&self.config, email.as_str(), &new.full_name),
                    &self.secret_key,
                    now,
                )
                .await
                .map_err(store_error)?;
                audit(&mut tx, ctx, "operator.setup_completed", &new.id, now).await?;
                tx.user(&new.id).await.map_err(store_error)?.ok_or_else(|| Error::internal("new operator vanished"))?
            }
            OperatorLink::Recovery(user) => {
                tx.set_password(&user.id, &hash, now).await.map_err(store_error)?;
                crate::passwords::after_new_password(&mut tx, self, &user, &hash, now).await?;
                audit(&mut tx, ctx, "operator.recovery_completed", &user.id, now).await?;
                *user
            }
        };
        // The link proves only the password: a second factor follows as at any sign-in.
        let stage = self.stage_after_password(&mut tx, &user).await?;
        if stage == usher_domain::account::SessionStage::Full {
            tx.record_sign_in(&user.id, now).await.map_err(store_error)?;
        }
        let token = start_session(&mut tx, &user, stage, ctx, now).await?;
        audit(&mut tx, ctx, "sign_in", &user.id, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(SignedIn { token, user, stage })
    }

    /// Applies the active password policy and the "typed twice" check: one message per field.
    pub fn check_new_password(&self, form: &SetupForm, full_name: &str, email: &EmailAddress) -> Result<(), Error> {
        let policy = &self.policy.password;
        let words = PersonalWords { full_name, email: email.as_str() };
        let mut fields: Vec<FieldError> = policy
            .check(form.password.expose(), &words)
            .map(|message| FieldError { field: "password", message })
            .into_iter()
            .collect();
        if fields.is_empty() && form.password != form.confirm_password {
            fields.push(FieldError {
                field: "confirm_password",
                message: "Passwords do not match. Type the same password twice".into(),
            });
        }
        if fields.is_empty() { Ok(()) } else { Err(Error::invalid(fields)) }
    }
}

fn validate_identity(form: &SetupForm) -> Result<(String, EmailAddress), Error> {
    let mut fields = Vec::new();
    let name =
        usher_domain::name::check_field(&form.full_name, "full_name", "Full name", "Enter your full name", &mut fields);
    let email = EmailAddress::parse(&form.email);
    if let Err(message) = &email {
        fields.push(FieldError { field: "email", message: (*message).to_owned() });
    }
    match email {
        Ok(email) if fields.is_empty() => Ok((name.to_owned(), email)),
        _ => Err(Error::invalid(fields)),
    }
}

fn link_used() -> Error {
    Error::new(
        ErrorCode::LinkUsed,
        "This link has already been used or a newer one has replaced it. If you run this server, get a new link with `usher operator recover`.",
    )
}

/// Finds a usable operator link inside a transaction.
async fn live_link(tx: &mut Tx, token: &str, now: Timestamp) -> Result<(OneTimeLink, OperatorLink), Error> {
    let link = match find_link(tx, token, &[LinkPurpose::OperatorSetup, LinkPurpose::OperatorRecovery], now).await? {
        LinkState::Live(link) => link,
        LinkState::Used(_) => return Err(link_used()),
        LinkState::Expired(_) => {
            return Err(Error::new(
                ErrorCode::LinkExpired,
                "This link has expired. If you run this server, restart it for a new set-up link, or get a recovery link with `usher operator recover`.",
            ));
        }
    };
    let view = match (link.purpose, &link.user_id) {
        (LinkPurpose::OperatorSetup, _) => OperatorLink::Setup,
        (LinkPurpose::OperatorRecovery, Some(id)) => {
            let user = tx.user(id).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
            OperatorLink::Recovery(Box::new(user))
        }
        (LinkPurpose::OperatorRecovery, None) | (LinkPurpose::Activation | LinkPurpose::PasswordReset, _) => {
            return Err(Error::not_found());
        }
    };
    Ok((link, view))
}

async fn audit(tx: &mut Tx, ctx: &RequestContext, action: &str, user: &UserId, now: Timestamp) -> Result<(), Error> {
    let mut event = ctx.event(action, "success");
    event.actor_id = Some(user.to_string());
    event.subject_id = Some(user.to_string());
    tx.append_audit(&event, now).await.map_err(store_error)?;
    Ok(())
}
