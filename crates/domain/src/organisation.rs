//! Organisations: who they are and which email addresses their people may have.

use serde::Serialize;

use crate::email::EmailAddress;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrganisationKind {
    LawFirm,
    Chambers,
    Police,
    Prosecutor,
    Court,
    Other,
}

impl OrganisationKind {
    pub const ALL: [Self; 6] =
        [Self::LawFirm, Self::Chambers, Self::Police, Self::Prosecutor, Self::Court, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LawFirm => "law_firm",
            Self::Chambers => "chambers",
            Self::Police => "police",
            Self::Prosecutor => "prosecutor",
            Self::Court => "court",
            Self::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The name people see.
    pub fn label(self) -> &'static str {
        match self {
            Self::LawFirm => "Law firm",
            Self::Chambers => "Barristers' chambers",
            Self::Police => "Police force",
            Self::Prosecutor => "Prosecutor",
            Self::Court => "Court",
            Self::Other => "Other",
        }
    }
}

/// The email domains an organisation's people must use; empty means any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EmailDomains(Vec<String>);

impl EmailDomains {
    /// Reads domains separated by commas, spaces or new lines (`cps.gov.uk, example.org`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut domains = Vec::new();
        for raw in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|d| !d.is_empty()) {
            let d = raw.trim_start_matches('@').to_lowercase();
            // A domain is valid when an address at it is.
            if EmailAddress::parse(&format!("x@{d}")).is_err() {
                return Err(format!(
                    "'{}' is not an email domain, like example.org",
                    raw.chars().take(60).collect::<String>()
                ));
            }
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        if domains.len() > 50 {
            return Err("List 50 email domains or fewer".into());
        }
        Ok(Self(domains))
    }

    /// As stored: comma-separated.
    pub fn to_stored(&self) -> String {
        self.0.join(",")
    }

    pub fn from_stored(text: &str) -> Self {
        Self(text.split(',').filter(|d| !d.is_empty()).map(str::to_owned).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn list(&self) -> &[String] {
        &self.0
    }

    /// True when the address may belong to someone of this organisation.
    pub fn allows(&self, email: &EmailAddress) -> bool {
        self.0.is_empty() || self.0.iter().any(|d| email.domain() == d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_parse_and_restrict() {
        let d = EmailDomains::parse(" @CPS.gov.uk, example.org\nexample.org ").unwrap();
        assert_eq!(d.list(), ["cps.gov.uk", "example.org"]);
        assert_eq!(EmailDomains::from_stored(&d.to_stored()), d);
        assert!(d.allows(&EmailAddress::parse("a@cps.gov.uk").unwrap()));
        assert!(!d.allows(&EmailAddress::parse("a@evil-cps.gov.uk").unwrap()));
        assert!(!d.allows(&EmailAddress::parse("a@sub.cps.gov.uk").unwrap()));
        assert!(EmailDomains::parse("").unwrap().allows(&EmailAddress::parse("a@b.co").unwrap()));
        assert!(EmailDomains::parse("not a domain!").is_err());
        assert_eq!(OrganisationKind::parse("chambers"), Some(OrganisationKind::Chambers));
        assert_eq!(OrganisationKind::parse("bank"), None);
    }
}
