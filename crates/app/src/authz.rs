//! Permissions as types: a handle that exists only once the check has passed. Use cases that
//! only an operator or an organisation administrator may run take the handle, so they cannot be
//! called without the check.

use usher_domain::account::Role;
use usher_domain::ids::OrganisationId;
use usher_domain::{Error, ErrorCode};
use usher_store::User;

use crate::sessions::Authenticated;

/// A signed-in operator.
#[derive(Debug, Clone, Copy)]
pub struct Operator<'a>(&'a User);

impl<'a> Operator<'a> {
    pub fn check(who: &'a Authenticated) -> Result<Self, Error> {
        match who.user.role {
            Role::Operator => Ok(Self(&who.user)),
            _ => Err(forbidden()),
        }
    }

    pub fn user(&self) -> &'a User {
        self.0
    }
}

/// A signed-in administrator of one organisation.
#[derive(Debug, Clone, Copy)]
pub struct OrganisationAdmin<'a> {
    user: &'a User,
    organisation: &'a OrganisationId,
}

impl<'a> OrganisationAdmin<'a> {
    pub fn check(who: &'a Authenticated) -> Result<Self, Error> {
        match (who.user.role, &who.user.organisation_id) {
            (Role::OrganisationAdministrator, Some(organisation)) => Ok(Self { user: &who.user, organisation }),
            _ => Err(forbidden()),
        }
    }

    pub fn user(&self) -> &'a User {
        self.user
    }

    pub fn organisation(&self) -> &'a OrganisationId {
        self.organisation
    }
}

fn forbidden() -> Error {
    Error::new(ErrorCode::Forbidden, "Your account cannot do this. If you think it should, contact the helpdesk.")
}
