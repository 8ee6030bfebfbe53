//! Email addresses: length-checked, trimmed and lower-cased so one mailbox has one spelling.

use std::fmt;

use serde::Serialize;

#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Returns the normalised address, or a message saying what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let t = text.trim();
        if t.is_empty() {
            return Err("Enter an email address");
        }
        if t.len() > 254 {
            return Err("Email address must be 254 characters or fewer");
        }
        let Some((local, domain)) = t.rsplit_once('@') else {
            return Err("Enter an email address in the correct format, like name@example.com");
        };
        let domain_ok = domain.len() <= 253
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        if !domain_ok || !local_ok {
            return Err("Enter an email address in the correct format, like name@example.com");
        }
        Ok(Self(t.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_refuses() {
        assert_eq!(EmailAddress::parse("  Ann.Smith@Example.ORG ").unwrap().as_str(), "ann.smith@example.org");
        assert_eq!(EmailAddress::parse("a@b.co").unwrap().domain(), "b.co");
        for bad in [
            "",
            "a",
            "a@",
            "@b.co",
            "a@b",
            "a@.b.co",
            "a@b..co",
            "a b@c.co",
            "a@b.co\r\nBcc: x@y.z",
            ".a@b.co",
            "a..b@c.co",
            "a@-b.co",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        assert!(EmailAddress::parse(&format!("{}@b.co", "a".repeat(65))).is_err());
        assert!(EmailAddress::parse(&format!("a@{}.co", "b".repeat(250))).is_err());
    }
}
