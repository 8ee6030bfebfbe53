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
    /// Deregistered and not reregistered in time: personal data erased, only the ID remains
    /// (so the audit trail stays coherent).
    Deleted,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Active => "active",
            Self::Locked => "locked",
            Self::Deregistered => "deregistered",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "invited" => Some(Self::Invited),
            "active" => Some(Self::Active),
            "locked" => Some(Self::Locked),
            "deregistered" => Some(Self::Deregistered),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// What an administrator sees of a person's account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Invited,
    ActivationExpired,
    Active,
    Locked,
    Deregistered,
}

impl MemberStatus {
    /// An invited person whose newest activation link has lapsed shows as "activation expired".
    pub fn of(status: AccountStatus, activation_expires_at: Option<crate::Timestamp>, now: crate::Timestamp) -> Self {
        match status {
            AccountStatus::Invited if activation_expires_at.is_none_or(|at| now > at) => Self::ActivationExpired,
            AccountStatus::Invited => Self::Invited,
            AccountStatus::Active => Self::Active,
            AccountStatus::Locked => Self::Locked,
            AccountStatus::Deregistered | AccountStatus::Deleted => Self::Deregistered,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::ActivationExpired => "activation_expired",
            Self::Active => "active",
            Self::Locked => "locked",
            Self::Deregistered => "deregistered",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Invited => "Invited",
            Self::ActivationExpired => "Activation expired",
            Self::Active => "Active",
            Self::Locked => "Locked",
            Self::Deregistered => "Deregistered",
        }
    }

    /// The GOV.UK tag colour for the status.
    pub fn tag_class(self) -> &'static str {
        match self {
            Self::Invited => "govuk-tag--blue",
            Self::ActivationExpired => "govuk-tag--orange",
            Self::Active => "govuk-tag--green",
            Self::Locked => "govuk-tag--red",
            Self::Deregistered => "govuk-tag--grey",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    #[test]
    fn invited_people_show_activation_expired_once_their_link_lapses() {
        let at = Timestamp::from_unix(1000);
        assert_eq!(
            MemberStatus::of(AccountStatus::Invited, Some(at), Timestamp::from_unix(1000)),
            MemberStatus::Invited
        );
        assert_eq!(
            MemberStatus::of(AccountStatus::Invited, Some(at), Timestamp::from_unix(1001)),
            MemberStatus::ActivationExpired
        );
        assert_eq!(MemberStatus::of(AccountStatus::Invited, None, at), MemberStatus::ActivationExpired);
        assert_eq!(MemberStatus::of(AccountStatus::Locked, None, at), MemberStatus::Locked);
    }
}

/// How far a session has got. Only a `Full` session is signed in; the others may reach the
/// second-factor or set-up pages and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    /// Password and (where required or set up) second factor proven.
    Full,
    /// Password proven; a second factor is awaited.
    SecondFactor,
    /// Password proven; the person must set up a second factor before anything else.
    Setup,
}

impl SessionStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::SecondFactor => "second_factor",
            Self::Setup => "setup",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Full, Self::SecondFactor, Self::Setup].into_iter().find(|v| v.as_str() == s)
    }
}
