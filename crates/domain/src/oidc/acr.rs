//! Authentication context class references (`acr`), derived only from what a session proved,
//! never echoed from a request. Each value names what was proven; a higher one satisfies a
//! request for a lower one.

use crate::evidence::Evidence;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Acr {
    /// One factor (a password alone).
    Password,
    /// Two kinds of factor: a password and something held.
    MultiFactor,
    /// Two kinds of factor, one of them a passkey, which cannot be phished.
    PhishingResistant,
}

impl Acr {
    pub const ALL: [Self; 3] = [Self::Password, Self::MultiFactor, Self::PhishingResistant];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "urn:usher:acr:password",
            Self::MultiFactor => "urn:usher:acr:mfa",
            Self::PhishingResistant => "urn:usher:acr:phishing-resistant",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// What `evidence` proves.
    pub fn of(evidence: &Evidence) -> Self {
        if evidence.is_multi_factor() && evidence.is_phishing_resistant() {
            Self::PhishingResistant
        } else if evidence.is_multi_factor() {
            Self::MultiFactor
        } else {
            Self::Password
        }
    }

    /// Whether this level meets a request for `wanted`.
    pub fn meets(self, wanted: Self) -> bool {
        self >= wanted
    }
}

/// What a client asked for with `acr_values` (space-separated, voluntary) or an essential
/// `acr` claim: the lowest known value among them, since meeting any one is enough. Unknown
/// values are ignored; `None` when nothing known was asked.
pub fn lowest_requested(values: &str) -> Option<Acr> {
    values.split(' ').filter_map(Acr::parse).min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use crate::evidence::AuthMethod;

    #[test]
    fn acr_follows_the_evidence() {
        let t = Timestamp::from_unix(1_767_603_600);
        let pwd = Evidence::default().proven(AuthMethod::Password, t);
        assert_eq!(Acr::of(&pwd), Acr::Password);
        let mfa = pwd.clone().proven(AuthMethod::Totp, t);
        assert_eq!(Acr::of(&mfa), Acr::MultiFactor);
        assert_eq!(Acr::of(&mfa.proven(AuthMethod::Passkey, t)), Acr::PhishingResistant);
        let synced_alone = Evidence::default().proven(AuthMethod::SyncedPasskey, t);
        assert_eq!(Acr::of(&synced_alone), Acr::PhishingResistant, "a passkey with user verification alone");
        assert!(Acr::MultiFactor.meets(Acr::Password));
        assert!(!Acr::Password.meets(Acr::MultiFactor));
    }

    #[test]
    fn the_lowest_known_requested_value_counts() {
        assert_eq!(lowest_requested("urn:usher:acr:mfa urn:usher:acr:phishing-resistant"), Some(Acr::MultiFactor));
        assert_eq!(lowest_requested("loa2 something"), None);
        assert_eq!(lowest_requested(""), None);
    }
}
