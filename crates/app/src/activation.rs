//! Activating an account from the emailed link, as the court platform's guide describes it:
//! agree to the terms, confirm the mobile number (only its last 4 digits are shown) with a
//! texted code, create a password. The link can be left and resumed until it is used or expires.

use usher_domain::phone::MobileNumber;
use usher_domain::secret::SecretString;
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::{LinkPurpose, OneTimeLink, Terms, Tx, User};

use crate::codes::{Checked, Medium};
use crate::links::{LinkState, find_link};
use crate::{App, RequestContext, commit_outcome, messages, store_error};

pub use crate::codes::TEXTS_PER_NUMBER_PER_DAY;

/// Where a person is in their activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationStep {
    /// Read and agree to the terms and conditions.
    Terms,
    /// Check the last 4 digits of the mobile number and ask for a code.
    ConfirmMobile,
    /// Type the texted code.
    EnterCode,
    /// Create a password.
    Password,
}

#[derive(Debug, Clone)]
pub struct ActivationView {
    pub user: User,
    pub step: ActivationStep,
    pub terms: Terms,
    /// Who to ask for help ("Ada Admin, your organisation administrator").
    pub administrator: String,
    pub organisation: String,
    pub mobile_last_four: String,
    pub expires_at: Timestamp,
    pub password_rules: Vec<String>,
}

/// The code flow of an activation and the number being proven: a corrected number starts a
/// new flow, since codes sent to the old one prove nothing about the new.
fn flow_of(link: &OneTimeLink, user: &User) -> String {
    format!("activation:{}:{}", link.token_hash.as_str(), user.phone.as_deref().unwrap_or(""))
}

impl App {
    /// The activation behind a link, at the step the person has reached.
    pub async fn open_activation(&self, token: &str, now: Timestamp) -> Result<ActivationView, Error> {
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let (_, view) = self.live_activation(&mut tx, token, now).await?;
        Ok(view)
    }

    pub async fn accept_terms(
        &self,
        token: &str,
        agreed: bool,
        version: i64,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<ActivationView, Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let (link, view) = self.live_activation(&mut tx, token, now).await?;
        if view.step != ActivationStep::Terms {
            // A form sent again (after Back): the person is past this step already.
            return Ok(view);
        }
        let refusal = if !agreed {
            Some("Confirm that you agree to the terms and conditions to continue")
        } else if version != view.terms.version {
            Some("The terms have just been updated. Read them again and agree to continue")
        } else {
            None
        };
        if let Some(message) = refusal {
            let detail = Some("not agreed to the current version".to_owned());
            audit(&mut tx, ctx, "activation.terms_refused", &view.user, detail, now).await?;
            return commit_outcome(tx, Err(Error::field("agree", message))).await;
        }
        tx.record_terms_acceptance(&view.user.id, version, now).await.map_err(store_error)?;
        tx.record_link_terms(&link.token_hash, version).await.map_err(store_error)?;
        audit(&mut tx, ctx, "activation.terms_accepted", &view.user, Some(format!("version {version}")), now).await?;
        let (_, view) = self.live_activation(&mut tx, token, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(view)
    }

    /// Texts a code to the registered mobile number.
    pub async fn send_activation_code(
        &self,
        token: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<ActivationView, Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let (link, view) = self.locked_activation(&mut tx, token, now).await?;
        if view.step == ActivationStep::Terms {
            return Err(Error::field("agree", "Agree to the terms and conditions first"));
        }
        if view.step == ActivationStep::Password {
            return Ok(view);
        }
        let phone = view.user.phone.clone().ok_or_else(|| Error::internal("invited user without a mobile"))?;
        let phone = MobileNumber::from_trusted(phone);
        let rules = self.policy.activation_code;
        if let Err((reason, e)) = self.may_text(&mut tx, &phone, view.user.id.as_str(), ctx, now).await? {
            audit(&mut tx, ctx, "activation.code_refused", &view.user, Some(reason.into()), now).await?;
            tx.commit().await.map_err(store_error)?;
            let message = format!("{} For help, ask {}.", e.message, view.administrator);
            return Err(Error { message: message.into(), ..e });
        }
        let flow = flow_of(&link, &view.user);
        let code = match self.issue_code(&mut tx, &flow, view.user.id.as_str(), "activation", rules, now).await? {
            Ok(code) => code,
            Err(refusal) => {
                audit(&mut tx, ctx, "activation.code_refused", &view.user, Some("send limit".into()), now).await?;
                tx.commit().await.map_err(store_error)?;
                let again = format!("To get a new activation email, ask {}.", view.administrator);
                return Err(refusal.message(&again));
            }
        };
        let expires_at = now.plus(rules.lifetime);
        let sms = messages::mobile_code(
            &self.config,
            phone.as_str(),
            code.expose(),
            expires_at,
            rules.lifetime.seconds() / 60,
        );
        tx.enqueue(&sms, &self.secret_key, now).await.map_err(store_error)?;
        audit(&mut tx, ctx, "activation.code_sent", &view.user, None, now).await?;
        let (_, view) = self.live_activation(&mut tx, token, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(view)
    }

    /// Checks the texted code; the mobile number is then confirmed.
    pub async fn verify_activation_code(
        &self,
        token: &str,
        entered: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<ActivationView, Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let (link, view) = self.locked_activation(&mut tx, token, now).await?;
        if view.step != ActivationStep::EnterCode {
            return Ok(view);
        }
        let flow = flow_of(&link, &view.user);
        let refusal =
            match self.check_code(&mut tx, &flow, self.policy.activation_code, entered, Medium::Text, now).await? {
                Checked::Accepted => {
                    let phone = view.user.phone.clone().unwrap_or_default();
                    tx.record_link_phone_confirmed(&link.token_hash, &phone, now).await.map_err(store_error)?;
                    audit(&mut tx, ctx, "activation.mobile_confirmed", &view.user, None, now).await?;
                    let (_, view) = self.live_activation(&mut tx, token, now).await?;
                    tx.commit().await.map_err(store_error)?;
                    return Ok(view);
                }
                Checked::Refused(message) => message.to_owned(),
                Checked::Exhausted => {
                    format!("Too many wrong codes. To get a new activation email, ask {}.", view.administrator)
                }
            };
        audit(
            &mut tx,
            ctx,
            "activation.code_rejected",
            &view.user,
            Some(usher_domain::audit::clean_words(&refusal, 60)),
            now,
        )
        .await?;
        tx.commit().await.map_err(store_error)?;
        Err(Error::field("code", refusal))
    }

    /// Sets the password and completes the activation. It does not sign the person in.
    pub async fn complete_activation(
        &self,
        token: &str,
        password: &SecretString,
        confirm: &SecretString,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<User, Error> {
        let view = self.open_activation(token, now).await?;
        if view.step != ActivationStep::Password {
            return Err(Error::new(ErrorCode::Conflict, "Confirm your mobile number first."));
        }
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let problems = self.new_password_problems(&mut tx, &view.user, password, confirm).await?;
        drop(tx);
        if !problems.is_empty() {
            return Err(Error::invalid(problems));
        }
        let hash = self.hasher.hash(password.expose().to_owned()).await?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let (link, view) = self.locked_activation(&mut tx, token, now).await?;
        if view.step != ActivationStep::Password {
            return Err(Error::new(ErrorCode::Conflict, "Your mobile number changed: confirm the new one first."));
        }
        if !tx.use_link(&link.token_hash, now).await.map_err(store_error)? {
            return Err(link_used(&view.administrator));
        }
        let confirmed = link.phone_confirmed.clone().unwrap_or_default();
        if !tx.activate(&view.user.id, &hash, &confirmed, now).await.map_err(store_error)? {
            return Err(link_used(&view.administrator));
        }
        tx.remember_password(&view.user.id, &hash, now).await.map_err(store_error)?;
        tx.enqueue(
            &messages::account_activated(&self.config, view.user.email.as_str(), &view.user.full_name),
            &self.secret_key,
            now,
        )
        .await
        .map_err(store_error)?;
        audit(&mut tx, ctx, "activation.completed", &view.user, None, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(view.user)
    }

    /// Like `live_activation`, but first serialises with every other change to the same person
    /// on any node (a code check, a corrected number, a resend), then reads afresh.
    async fn locked_activation(
        &self,
        tx: &mut Tx,
        token: &str,
        now: Timestamp,
    ) -> Result<(OneTimeLink, ActivationView), Error> {
        let (_, view) = self.live_activation(tx, token, now).await?;
        tx.lock(&format!("user:{}", view.user.id)).await.map_err(store_error)?;
        self.live_activation(tx, token, now).await
    }

    /// Reads a usable activation link and works out the step.
    async fn live_activation(
        &self,
        tx: &mut Tx,
        token: &str,
        now: Timestamp,
    ) -> Result<(OneTimeLink, ActivationView), Error> {
        let state = find_link(tx, token, &[LinkPurpose::Activation], now).await?;
        let Some(user_id) = &state.link().user_id else { return Err(Error::not_found()) };
        let user = tx.user(user_id).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
        let added_by = match &user.added_by {
            Some(id) => tx.user(id).await.map_err(store_error)?,
            None => None,
        };
        let administrator = messages::who_to_ask(&self.config, added_by.as_ref());
        let link = match state {
            LinkState::Live(link) => link,
            LinkState::Used(_) => return Err(link_used(&administrator)),
            LinkState::Expired(_) => {
                return Err(Error::new(
                    ErrorCode::LinkExpired,
                    format!(
                        "Activation links work for {lifetime} and this one has expired. To get a new activation email, ask {administrator}.",
                        lifetime = self.policy.activation_link.describe()
                    ),
                ));
            }
        };
        let organisation = match &user.organisation_id {
            Some(id) => tx.organisation(id).await.map_err(store_error)?.map(|o| o.name).unwrap_or_default(),
            None => String::new(),
        };
        let terms = tx.current_terms().await.map_err(store_error)?;
        let code_sent = tx.code_flow(&flow_of(&link, &user)).await.map_err(store_error)?.is_some_and(|f| f.sends > 0);
        let step = if link.terms_version != Some(terms.version) {
            ActivationStep::Terms
        } else if link.phone_confirmed_at.is_none() || link.phone_confirmed != user.phone {
            if code_sent { ActivationStep::EnterCode } else { ActivationStep::ConfirmMobile }
        } else {
            ActivationStep::Password
        };
        let mobile_last_four =
            user.phone.clone().map(|p| MobileNumber::from_trusted(p).last_four().to_owned()).unwrap_or_default();
        let policy = self.policy_for(tx, &user).await?.password;
        let view = ActivationView {
            step,
            terms,
            administrator,
            organisation,
            mobile_last_four,
            expires_at: link.expires_at,
            password_rules: policy.describe(),
            user,
        };
        Ok((link, view))
    }
}

fn link_used(administrator: &str) -> Error {
    Error::new(
        ErrorCode::LinkUsed,
        format!(
            "This activation link has already been used or a newer one has replaced it. If you have activated your account, sign in. If not, to get a new activation email, ask {administrator}."
        ),
    )
}

async fn audit(
    tx: &mut Tx,
    ctx: &RequestContext,
    action: &str,
    user: &User,
    detail: Option<String>,
    now: Timestamp,
) -> Result<(), Error> {
    let outcome = if action.ends_with("rejected") || action.ends_with("refused") { "failure" } else { "success" };
    let mut event = ctx.person_event(action, outcome, user);
    event.detail = detail;
    tx.append_audit(&event, now).await.map_err(store_error)?;
    Ok(())
}
