//! Scopes and the claims each one releases.

use std::fmt;

/// A scope Usher knows. A client may ask only for those it was registered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Required: this is an OpenID Connect request.
    OpenId,
    /// `name`.
    Profile,
    /// `email`, `email_verified`.
    Email,
    /// `phone_number`, `phone_number_verified`.
    Phone,
    /// `organisation` (ID, name, kind) and `role`.
    Organisation,
}

impl Scope {
    pub const ALL: [Self; 5] = [Self::OpenId, Self::Profile, Self::Email, Self::Phone, Self::Organisation];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenId => "openid",
            Self::Profile => "profile",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Organisation => "organisation",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The claims this scope releases, for the discovery document.
    pub fn claims(self) -> &'static [&'static str] {
        match self {
            Self::OpenId => &["sub"],
            Self::Profile => &["name"],
            Self::Email => &["email", "email_verified"],
            Self::Phone => &["phone_number", "phone_number_verified"],
            Self::Organisation => &["organisation", "role"],
        }
    }
}

/// A set of scopes, in a fixed order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Parses a space-separated list. Unknown scopes are reported by name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut scopes = Vec::new();
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            let scope = Scope::parse(word).ok_or_else(|| {
                let shown: String = word.chars().filter(|c| !c.is_control()).take(40).collect();
                format!("unknown scope \"{shown}\"")
            })?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes.sort();
        Ok(Self(scopes))
    }

    pub fn from_list(list: &[Scope]) -> Self {
        let mut scopes = list.to_vec();
        scopes.sort();
        scopes.dedup();
        Self(scopes)
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    /// Whether every scope here is also in `allowed`.
    pub fn within(&self, allowed: &Scopes) -> bool {
        self.0.iter().all(|s| allowed.contains(*s))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_in_a_fixed_order_once_each() {
        let s = Scopes::parse("email openid  email organisation").unwrap_or_default();
        assert_eq!(s.to_string(), "openid email organisation");
        assert!(s.within(&Scopes::from_list(&Scope::ALL)));
        assert!(!s.within(&Scopes::from_list(&[Scope::OpenId])));
        assert_eq!(Scopes::parse("openid admin\n").err().as_deref(), Some("unknown scope \"admin\""));
    }
}
