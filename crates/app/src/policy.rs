//! The policy in force: the deployment's (from [`crate::Config`], built once in
//! [`crate::App::new`]) and a person's (the deployment's tightened by their organisation's
//! choice, with [`usher_domain::policy::Policy::tightened_by`]).

use usher_domain::account::Role;
use usher_domain::policy::{OrganisationChoice, Policy, SecondFactorChoice};
use usher_domain::{Error, Timestamp};
use usher_store::{Tx, User};

use crate::{App, store_error};

impl crate::Config {
    /// The deployment's policy: the profile's rules, with the parts this configuration decides.
    pub fn policy(&self) -> Policy {
        Policy {
            second_factor: self.second_factor_policy(),
            idle_timeout: self.sessions.idle_timeout,
            absolute_timeout: self.sessions.absolute_timeout,
            lifecycle: self.lifecycle.policy(),
            ..Policy::for_profile(self.policy.profile)
        }
    }
}

impl App {
    /// The rules for a person: the deployment's, tightened (never loosened) by their
    /// organisation's choice. Operators follow the deployment's.
    pub async fn policy_for(&self, tx: &mut Tx, user: &User) -> Result<Policy, Error> {
        let org = match &user.organisation_id {
            Some(id) if user.role != Role::Operator => tx.organisation(id).await.map_err(store_error)?,
            _ => None,
        };
        let choice = org
            .map(|o| OrganisationChoice {
                second_factor: SecondFactorChoice { required: o.mfa_required, email_codes: o.email_codes_allowed },
                min_password_length: o.min_password_length.and_then(|m| usize::try_from(m).ok()),
            })
            .unwrap_or_default();
        Ok(self.policy.tightened_by(&choice))
    }

    /// When a person's password expires under the policy, if it ever does.
    pub fn password_expires_at(&self, user: &User) -> Option<Timestamp> {
        match (self.policy.password.max_age, user.password_changed_at) {
            (Some(age), Some(changed)) => Some(changed.plus(age)),
            _ => None,
        }
    }
}
