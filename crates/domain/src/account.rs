//! Accounts: who someone is to Usher and what state their account is in.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the deployment.
    Operator,
    /// Manages the users of one organisation.
    OrganisationAdministrator,
    /// A professional who signs in to do their work.
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::OrganisationAdministrator => "organisation_administrator",
            Self::User => "user",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "operator" => Some(Self::Operator),
            "organisation_administrator" => Some(Self::OrganisationAdministrator),
            "user" => Some(Self::User),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Added; the activation link has been sent and not yet used.
    Invited,
    /// Activated and able to sign in.
    Active,
    /// Too many wrong passwords; a reset or an administrator unlocks it.
    Locked,
    /// Unused for too long; an administrator may reregister it.
    Deregistered,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Active => "active",
            Self::Locked => "locked",
            Self::Deregistered => "deregistered",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "invited" => Some(Self::Invited),
            "active" => Some(Self::Active),
            "locked" => Some(Self::Locked),
            "deregistered" => Some(Self::Deregistered),
            _ => None,
        }
    }
}
