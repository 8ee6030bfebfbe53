//! What the operator does: register organisations, appoint their administrators, publish the
//! terms and conditions.

use usher_domain::account::Role;
use usher_domain::error::FieldError;
use usher_domain::ids::OrganisationId;
use usher_domain::organisation::{EmailDomains, OrganisationKind};
use usher_domain::policy::SecondFactorChoice;
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::{Organisation, Terms, UserListing};

use crate::authz::Operator;
use crate::members::{NewPerson, add_person};
use crate::{App, RequestContext, commit_outcome, store_error};

/// The answers on "Register an organisation".
#[derive(Debug, Clone, Default)]
pub struct OrganisationForm {
    pub name: String,
    pub kind: String,
    pub email_domains: String,
    /// Optional: a longer minimum password length than the deployment's (never shorter).
    pub min_password_length: String,
    /// `required`, `optional`, or empty for the deployment's default.
    pub second_factor: String,
    /// `allowed`, `not_allowed`, or empty for the deployment's default.
    pub email_codes: String,
}

/// Reads a three-way choice: the deployment's default (`None`), yes or no.
fn choice(text: &str, yes: &str, no: &str) -> Result<Option<bool>, ()> {
    match text.trim() {
        "" | "default" => Ok(None),
        t if t == yes => Ok(Some(true)),
        t if t == no => Ok(Some(false)),
        _ => Err(()),
    }
}

/// An organisation with its administrators, for the operator.
#[derive(Debug, Clone)]
pub struct OrganisationView {
    pub organisation: Organisation,
    pub administrators: Vec<UserListing>,
}

impl App {
    pub async fn register_organisation(
        &self,
        operator: Operator<'_>,
        form: &OrganisationForm,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Organisation, Error> {
        let mut fields = Vec::new();
        let name =
            usher_domain::name::check_field(&form.name, "name", "Name", "Enter the organisation's name", &mut fields);
        let kind = OrganisationKind::parse(&form.kind);
        if kind.is_none() {
            fields.push(FieldError { field: "kind", message: "Select the kind of organisation".into() });
        }
        let domains = EmailDomains::parse(&form.email_domains);
        if let Err(message) = &domains {
            fields.push(FieldError { field: "email_domains", message: message.clone() });
        }
        let deployment_min = self.policy.password.min_length;
        let min_password_length = match form.min_password_length.trim() {
            "" => None,
            text => {
                match text.parse::<i64>() {
                    Ok(n) if n >= i64::try_from(deployment_min).unwrap_or(8) && n <= 128 => Some(n),
                    _ => {
                        fields.push(FieldError {
                        field: "min_password_length",
                        message: format!("Minimum password length must be a whole number from {deployment_min} to 128, or left empty"),
                    });
                        None
                    }
                }
            }
        };
        let mfa_required = choice(&form.second_factor, "required", "optional").unwrap_or_else(|()| {
            fields.push(FieldError {
                field: "second_factor",
                message: "Select whether a second factor is required".into(),
            });
            None
        });
        let email_codes_allowed = choice(&form.email_codes, "allowed", "not_allowed").unwrap_or_else(|()| {
            fields
                .push(FieldError { field: "email_codes", message: "Select whether emailed codes may be used".into() });
            None
        });
        let choice = SecondFactorChoice { required: mfa_required, email_codes: email_codes_allowed };
        if let Some((field, message)) = self.config.second_factor_policy().loosened_by(choice) {
            fields.push(FieldError { field, message: message.into() });
        }
        let (Some(kind), Ok(email_domains), true) = (kind, domains, fields.is_empty()) else {
            return Err(Error::invalid(fields));
        };
        let organisation = Organisation {
            id: OrganisationId::generate(),
            name: name.to_owned(),
            kind,
            email_domains,
            created_at: now,
            min_password_length,
            mfa_required,
            email_codes_allowed,
        };
        let mut tx = self.store.begin().await.map_err(store_error)?;
        if let Err(e) = tx.insert_organisation(&organisation, &operator.user().id).await {
            return Err(if e.is_unique_violation() {
                Error::field("name", "An organisation with this name is already registered")
            } else {
                store_error(e)
            });
        }
        let mut event = ctx.event("organisation.registered", "success");
        event.actor_id = Some(operator.user().id.to_string());
        event.organisation_id = Some(organisation.id.to_string());
        event.detail = Some(format!("kind {}", kind.as_str()));
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(organisation)
    }

    /// Changes an organisation's choices about second factors (empty: the deployment's default).
    pub async fn set_second_factor_rules(
        &self,
        operator: Operator<'_>,
        id: &str,
        second_factor: &str,
        email_codes: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Organisation, Error> {
        let id = OrganisationId::parse(id).ok_or_else(Error::not_found)?;
        let mut fields = Vec::new();
        let required = choice(second_factor, "required", "optional").unwrap_or_else(|()| {
            fields.push(FieldError {
                field: "second_factor",
                message: "Select whether a second factor is required".into(),
            });
            None
        });
        let email = choice(email_codes, "allowed", "not_allowed").unwrap_or_else(|()| {
            fields
                .push(FieldError { field: "email_codes", message: "Select whether emailed codes may be used".into() });
            None
        });
        let choice = SecondFactorChoice { required, email_codes: email };
        if let Some((field, message)) = self.config.second_factor_policy().loosened_by(choice) {
            fields.push(FieldError { field, message: message.into() });
        }
        if !fields.is_empty() {
            return Err(Error::invalid(fields));
        }
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.organisation(&id).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
        tx.set_second_factor_rules(&id, required, email).await.map_err(store_error)?;
        let mut event = ctx.event("organisation.second_factor_rules", "success");
        event.actor_id = Some(operator.user().id.to_string());
        event.organisation_id = Some(id.to_string());
        event.detail = Some(format!("second factor {second_factor:.12}, email codes {email_codes:.12}"));
        tx.append_audit(&event, now).await.map_err(store_error)?;
        let organisation = tx.organisation(&id).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
        tx.commit().await.map_err(store_error)?;
        Ok(organisation)
    }

    pub async fn organisations(&self, _operator: Operator<'_>) -> Result<Vec<Organisation>, Error> {
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        tx.organisations().await.map_err(store_error)
    }

    pub async fn organisation_view(&self, _operator: Operator<'_>, id: &str) -> Result<OrganisationView, Error> {
        let id = OrganisationId::parse(id).ok_or_else(Error::not_found)?;
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let organisation = tx.organisation(&id).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
        let administrators = tx.administrators_of(&id).await.map_err(store_error)?;
        Ok(OrganisationView { organisation, administrators })
    }

    /// Appoints an administrator by invitation: they activate like anyone else.
    pub async fn invite_administrator(
        &self,
        operator: Operator<'_>,
        organisation: &str,
        person: &NewPerson,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<UserListing, Error> {
        let id = OrganisationId::parse(organisation).ok_or_else(Error::not_found)?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let organisation = tx.organisation(&id).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
        let result = add_person(
            self,
            &mut tx,
            &organisation,
            Role::OrganisationAdministrator,
            person,
            operator.user(),
            ctx,
            now,
        )
        .await;
        commit_outcome(tx, result).await
    }

    pub async fn current_terms(&self) -> Result<Terms, Error> {
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        tx.current_terms().await.map_err(store_error)
    }

    /// Publishes a new version of the terms; people activating from now on agree to it.
    pub async fn publish_terms(
        &self,
        operator: Operator<'_>,
        body: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<i64, Error> {
        let body = body.trim().replace("\r\n", "\n");
        if body.is_empty() {
            return Err(Error::field("body", "Enter the terms and conditions"));
        }
        if body.chars().count() > 20_000 {
            return Err(Error::field("body", "Terms must be 20,000 characters or fewer"));
        }
        let mut tx = self.store.begin().await.map_err(store_error)?;
        if tx.current_terms().await.map_err(store_error)?.body == body {
            return Err(Error::new(ErrorCode::Conflict, "These are the terms already in force: change them first."));
        }
        let version = tx.publish_terms(&body, &operator.user().id, now).await.map_err(store_error)?;
        let mut event = ctx.event("terms.published", "success");
        event.actor_id = Some(operator.user().id.to_string());
        event.detail = Some(format!("version {version}"));
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(version)
    }
}
