//! What an organisation administrator does with the people of their organisation: list and
//! search them, add them, correct their mobile number and resend their activation email. Any
//! attempt on another organisation's person gets the same "not found" as a missing one, and is
//! audited.

use usher_domain::account::{AccountStatus, Role};
use usher_domain::email::EmailAddress;
use usher_domain::error::FieldError;
use usher_domain::ids::UserId;
use usher_domain::name;
use usher_domain::phone::MobileNumber;
use usher_domain::secret::Token;
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::{LinkPurpose, NewUser, OneTimeLink, Organisation, Tx, User, UserListing};

use crate::authz::OrganisationAdmin;
use crate::{App, RequestContext, commit_outcome, messages, store_error};

/// The answers on "Add a user" and "Invite an administrator".
#[derive(Debug, Clone, Default)]
pub struct NewPerson {
    pub full_name: String,
    pub email: String,
    pub mobile: String,
}

fn validate(
    org: &Organisation,
    p: &NewPerson,
    allowed_countries: &[String],
) -> Result<(String, EmailAddress, MobileNumber), Error> {
    let mut fields = Vec::new();
    let name = name::check_field(&p.full_name, "full_name", "Full name", "Enter their full name", &mut fields);
    let email = EmailAddress::parse(&p.email);
    match &email {
        Err(message) => fields.push(FieldError { field: "email", message: (*message).to_owned() }),
        Ok(e) if !org.email_domains.allows(e) => fields.push(FieldError {
            field: "email",
            message: format!(
                "Email address must end in {}: {} only allows those",
                org.email_domains.list().iter().map(|d| format!("@{d}")).collect::<Vec<_>>().join(" or "),
                org.name
            ),
        }),
        Ok(_) => {}
    }
    let mobile = MobileNumber::parse(&p.mobile);
    match &mobile {
        Err(message) => fields.push(FieldError { field: "mobile", message: (*message).to_owned() }),
        Ok(m) => {
            if let Some(message) = crate::codes::country_refusal(allowed_countries, m) {
                fields.push(FieldError { field: "mobile", message });
            }
        }
    }
    match (email, mobile) {
        (Ok(email), Ok(mobile)) if fields.is_empty() => Ok((name.to_owned(), email, mobile)),
        _ => Err(Error::invalid(fields)),
    }
}

/// Adds a person to an organisation and emails their activation link, inside `tx`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn add_person(
    app: &App,
    tx: &mut Tx,
    org: &Organisation,
    role: Role,
    person: &NewPerson,
    added_by: &User,
    ctx: &RequestContext,
    now: Timestamp,
) -> Result<UserListing, Error> {
    let action = if role == Role::OrganisationAdministrator { "administrator.invited" } else { "user.added" };
    let refused = |detail: &str| {
        let mut event = ctx.event(action, "failure");
        event.actor_id = Some(added_by.id.to_string());
        event.organisation_id = Some(org.id.to_string());
        event.detail = Some(detail.to_owned());
        event
    };
    let (full_name, email, mobile) = match validate(org, person, &app.config.sms.allowed_countries) {
        Ok(v) => v,
        Err(e) => {
            let fields: Vec<&str> = e.fields.iter().map(|f| f.field).collect();
            tx.append_audit(&refused(&format!("invalid {}", fields.join(", "))), now).await.map_err(store_error)?;
            return Err(e);
        }
    };
    if tx.user_by_email(&email).await.map_err(store_error)?.is_some() {
        tx.append_audit(&refused("email address already in use"), now).await.map_err(store_error)?;
        return Err(email_in_use());
    }
    let new = NewUser {
        id: UserId::generate(),
        role,
        organisation_id: Some(org.id.clone()),
        full_name,
        email,
        phone: Some(mobile.as_str().to_owned()),
        status: AccountStatus::Invited,
        added_by: Some(added_by.id.clone()),
    };
    if let Err(e) = tx.insert_user(&new, now).await {
        // Two administrators adding one address at once: the unique index decides.
        return Err(if e.is_unique_violation() { email_in_use() } else { store_error(e) });
    }
    let user = tx.user(&new.id).await.map_err(store_error)?.ok_or_else(|| Error::internal("new user vanished"))?;
    let expires_at = send_activation(app, tx, &user, added_by, org, now).await?;
    audit(tx, ctx, action, added_by, &user, None, now).await?;
    Ok(UserListing { user, activation_expires_at: Some(expires_at) })
}

fn email_in_use() -> Error {
    Error::field("email", "This email address already has an account. Each person can have only one")
}

/// Issues a new activation link (killing any earlier one) and queues the email.
async fn send_activation(
    app: &App,
    tx: &mut Tx,
    user: &User,
    added_by: &User,
    org: &Organisation,
    now: Timestamp,
) -> Result<Timestamp, Error> {
    let token = Token::generate();
    let expires_at = now.plus(app.policy.activation_link);
    let link = OneTimeLink::new(token.hash(), LinkPurpose::Activation, Some(user.id.clone()), now, expires_at);
    tx.replace_link(&link).await.map_err(store_error)?;
    let url = format!("{}/activate/{}", app.config.base_url(), token.expose());
    let mail = messages::activation(
        &app.config,
        user.email.as_str(),
        &user.full_name,
        &messages::who_to_ask(&app.config, Some(added_by)),
        &org.name,
        &url,
        expires_at,
    );
    tx.enqueue(&mail, &app.secret_key, now).await.map_err(store_error)?;
    Ok(expires_at)
}

async fn audit(
    tx: &mut Tx,
    ctx: &RequestContext,
    action: &str,
    actor: &User,
    subject: &User,
    detail: Option<String>,
    now: Timestamp,
) -> Result<(), Error> {
    let mut event = ctx.event(action, "success");
    event.actor_id = Some(actor.id.to_string());
    event.subject_id = Some(subject.id.to_string());
    event.organisation_id = subject.organisation_id.as_ref().map(ToString::to_string);
    event.detail = detail;
    tx.append_audit(&event, now).await.map_err(store_error)?;
    Ok(())
}

impl App {
    pub async fn members(&self, admin: OrganisationAdmin<'_>, search: &str) -> Result<Vec<UserListing>, Error> {
        // No name or address holds a control character: such a search matches nobody (it
        // must not be stripped down to "" and list everyone).
        if search.chars().any(char::is_control) {
            return Ok(Vec::new());
        }
        let search: String = search.chars().take(100).collect();
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        tx.users_of_organisation(admin.organisation(), &search, 500).await.map_err(store_error)
    }

    pub async fn add_member(
        &self,
        admin: OrganisationAdmin<'_>,
        person: &NewPerson,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<UserListing, Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let org = tx.organisation(admin.organisation()).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
        let result = add_person(self, &mut tx, &org, Role::User, person, admin.user(), ctx, now).await;
        commit_outcome(tx, result).await
    }

    /// One person of the administrator's organisation. Anyone else, or nobody, is "not found",
    /// and asking for someone of another organisation is audited.
    pub async fn member(
        &self,
        admin: OrganisationAdmin<'_>,
        id: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<UserListing, Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let listing = member_in(&mut tx, admin, id, ctx, now).await;
        tx.commit().await.map_err(store_error)?;
        listing
    }

    pub async fn correct_mobile(
        &self,
        admin: OrganisationAdmin<'_>,
        id: &str,
        mobile: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<UserListing, Error> {
        // Whose number it is comes first: another organisation's person is "not found" (and
        // audited) whatever number was sent.
        let (mut tx, listing) = self.member_transaction(admin, id, ctx, now).await?;
        let user = &listing.user;
        if user.id == admin.user().id {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "You cannot change your own mobile number here: ask another administrator of your organisation, or the helpdesk.",
            ));
        }
        let mobile = MobileNumber::parse(mobile).map_err(|m| Error::field("mobile", m))?;
        if let Some(message) = crate::codes::country_refusal(&self.config.sms.allowed_countries, &mobile) {
            return Err(Error::field("mobile", message));
        }
        tx.lock(&format!("user:{}", user.id)).await.map_err(store_error)?;
        if user.phone.as_deref() == Some(mobile.as_str()) {
            return Err(Error::field("mobile", "That is the number we already have"));
        }
        tx.update_phone(&user.id, mobile.as_str(), now).await.map_err(store_error)?;
        // A number confirmed during an unfinished activation was the old one.
        tx.reset_link_phone_confirmation(&user.id).await.map_err(store_error)?;
        let mail = messages::mobile_changed(
            &self.config,
            user.email.as_str(),
            &user.full_name,
            mobile.last_four(),
            &admin.user().full_name,
        );
        tx.enqueue(&mail, &self.secret_key, now).await.map_err(store_error)?;
        audit(
            &mut tx,
            ctx,
            "user.mobile_corrected",
            admin.user(),
            user,
            Some(format!("now ends {}", mobile.last_four())),
            now,
        )
        .await?;
        let updated = tx.user(&user.id).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
        tx.commit().await.map_err(store_error)?;
        Ok(UserListing { user: updated, activation_expires_at: listing.activation_expires_at })
    }

    /// A new activation link for someone who has not activated; the old link stops working.
    pub async fn resend_activation(
        &self,
        admin: OrganisationAdmin<'_>,
        id: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<UserListing, Error> {
        let (mut tx, listing) = self.member_transaction(admin, id, ctx, now).await?;
        // One resend at a time per person, on any node, so only one link stays alive.
        tx.lock(&format!("user:{}", listing.user.id)).await.map_err(store_error)?;
        let listing = tx
            .user_listing(admin.organisation(), &listing.user.id)
            .await
            .map_err(store_error)?
            .ok_or_else(Error::not_found)?;
        if listing.user.status != AccountStatus::Invited {
            return Err(Error::new(
                ErrorCode::Conflict,
                "This account is already activated, so there is nothing to resend.",
            ));
        }
        let org = tx.organisation(admin.organisation()).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
        let expires_at = send_activation(self, &mut tx, &listing.user, admin.user(), &org, now).await?;
        audit(&mut tx, ctx, "user.activation_resent", admin.user(), &listing.user, None, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(UserListing { user: listing.user, activation_expires_at: Some(expires_at) })
    }
}

/// Like `member_in`, but a refusal is `None` so the caller commits its audit event first.
impl App {
    /// Opens a use case's transaction on one person of the administrator's organisation; for
    /// anyone else the refusal is audited (and committed) and the answer is "not found".
    pub(crate) async fn member_transaction(
        &self,
        admin: OrganisationAdmin<'_>,
        id: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(Tx, UserListing), Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        match member_or_refusal(&mut tx, admin, id, ctx, now).await? {
            Some(listing) => Ok((tx, listing)),
            None => {
                tx.commit().await.map_err(store_error)?;
                Err(Error::not_found())
            }
        }
    }
}

pub(crate) async fn member_or_refusal(
    tx: &mut Tx,
    admin: OrganisationAdmin<'_>,
    id: &str,
    ctx: &RequestContext,
    now: Timestamp,
) -> Result<Option<UserListing>, Error> {
    match member_in(tx, admin, id, ctx, now).await {
        Ok(l) => Ok(Some(l)),
        Err(e) if e.code == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Finds a person of the administrator's organisation, auditing attempts on anyone else's.
async fn member_in(
    tx: &mut Tx,
    admin: OrganisationAdmin<'_>,
    id: &str,
    ctx: &RequestContext,
    now: Timestamp,
) -> Result<UserListing, Error> {
    let user = match UserId::parse(id) {
        Some(id) => tx.user(&id).await.map_err(store_error)?,
        None => None,
    };
    match user {
        Some(user) if user.organisation_id.as_ref() == Some(admin.organisation()) => {
            tx.user_listing(admin.organisation(), &user.id).await.map_err(store_error)?.ok_or_else(Error::not_found)
        }
        other => {
            // The administrator's own trail records the refusal the same way for a real person
            // of another organisation and for an ID that names nobody, so its view and exports
            // cannot tell real IDs from made-up ones.
            let mut event = ctx.event("authz.denied", "refused");
            event.actor_id = Some(admin.user().id.to_string());
            event.organisation_id = Some(admin.organisation().to_string());
            event.detail = Some("administrator asked for a person outside their organisation".into());
            tx.append_audit(&event, now).await.map_err(store_error)?;
            if let Some(other) = other {
                // Whom they asked for is recorded for the operator only (no organisation).
                let mut event = ctx.event("authz.denied", "refused");
                event.actor_id = Some(admin.user().id.to_string());
                event.subject_id = Some(other.id.to_string());
                event.detail =
                    Some(format!("administrator of organisation {} asked for this person", admin.organisation()));
                tx.append_audit(&event, now).await.map_err(store_error)?;
            }
            Err(Error::not_found())
        }
    }
}

impl App {
    /// The name of the administrator's organisation, for page captions.
    pub async fn organisation_name(&self, admin: OrganisationAdmin<'_>) -> Result<String, Error> {
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        Ok(tx.organisation(admin.organisation()).await.map_err(store_error)?.map(|o| o.name).unwrap_or_default())
    }
}

impl App {
    /// Unlocks a locked account of the administrator's organisation.
    pub async fn unlock_member(
        &self,
        admin: OrganisationAdmin<'_>,
        id: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<UserListing, Error> {
        let (mut tx, listing) = self.member_transaction(admin, id, ctx, now).await?;
        if !tx.unlock(&listing.user.id, now).await.map_err(store_error)? {
            return Err(Error::new(ErrorCode::Conflict, "This account is not locked."));
        }
        // Whatever other services still held from before the lock ends with it.
        tx.revoke_grants_of_user(&listing.user.id, "account unlocked", now).await.map_err(store_error)?;
        audit(&mut tx, ctx, "account.unlocked", admin.user(), &listing.user, Some("by an administrator".into()), now)
            .await?;
        let updated = tx
            .user_listing(admin.organisation(), &listing.user.id)
            .await
            .map_err(store_error)?
            .ok_or_else(Error::not_found)?;
        tx.commit().await.map_err(store_error)?;
        self.clear_limit(usher_domain::limits::SIGN_IN_PER_ACCOUNT, updated.user.email.as_str()).await?;
        Ok(updated)
    }

    /// Resets a person's second factors: every factor and recovery code goes, every session
    /// ends, and the person sets up a new factor at their next sign-in. The administrator never
    /// sees a secret (S19). The person is emailed.
    pub async fn reset_member_factors(
        &self,
        admin: OrganisationAdmin<'_>,
        id: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<UserListing, Error> {
        let (mut tx, listing) = self.member_transaction(admin, id, ctx, now).await?;
        let user = &listing.user;
        if user.id == admin.user().id {
            // Their own factors change on their security page, after their password (S24).
            return Err(Error::new(
                ErrorCode::Forbidden,
                "You cannot reset your own second factors here. Use your account's security page.",
            ));
        }
        let role = "your organisation administrator";
        self.reset_factors_of(&mut tx, admin.user(), role, user, ctx, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(listing)
    }

    /// The operator resets an organisation administrator's second factors (their way back from
    /// a lost device), without seeing any secret.
    pub async fn reset_administrator_factors(
        &self,
        operator: crate::authz::Operator<'_>,
        id: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<User, Error> {
        let id = UserId::parse(id).ok_or_else(Error::not_found)?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let user = tx
            .user(&id)
            .await
            .map_err(store_error)?
            .filter(|u| u.role == Role::OrganisationAdministrator)
            .ok_or_else(Error::not_found)?;
        let role = &format!("who runs {}", self.config.service_name);
        self.reset_factors_of(&mut tx, operator.user(), role, &user, ctx, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(user)
    }

    /// Removes every factor and recovery code of a person, ends their sessions, emails them and
    /// records it: they set up a new factor at their next sign-in.
    async fn reset_factors_of(
        &self,
        tx: &mut Tx,
        actor: &User,
        actor_role: &str,
        user: &User,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        tx.lock(&format!("user:{}", user.id)).await.map_err(store_error)?;
        let removed = tx.remove_all_factors(&user.id, now).await.map_err(store_error)?;
        if removed == 0 {
            return Err(Error::new(ErrorCode::Conflict, "This person has no second factors to reset."));
        }
        let ended = tx.end_all_sessions(&user.id, "second factors reset", now).await.map_err(store_error)?;
        self.tell_services(tx, ended, now).await?;
        let what = format!(
            "{}, {actor_role}, reset your second factors. At your next sign-in you will be asked to set up a new one.",
            actor.full_name
        );
        self.tell(tx, user, "factors_reset", "your second factors were reset", &what, now).await?;
        audit(tx, ctx, "mfa.factors_reset", actor, user, Some(format!("{removed} factors removed")), now).await
    }
}
