//! The deployment's rules merged with an organisation's own: an organisation may tighten the
//! deployment's policy, never loosen it. One pure function per rule, so every reader agrees.

/// Whether a second factor is required, and whether emailed codes may be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondFactorPolicy {
    pub required: bool,
    pub email_codes: bool,
}

/// What an organisation chose; `None` leaves the deployment's rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecondFactorChoice {
    pub required: Option<bool>,
    pub email_codes: Option<bool>,
}

impl SecondFactorPolicy {
    /// The rules for an organisation's people: required if either asks for it, emailed codes
    /// only if both allow them. A choice looser than the deployment's (saved before this rule,
    /// or by hand) has no effect.
    pub fn tightened_by(self, choice: SecondFactorChoice) -> Self {
        Self {
            required: self.required || choice.required.unwrap_or(false),
            email_codes: self.email_codes && choice.email_codes.unwrap_or(true),
        }
    }

    /// Why `choice` would loosen this policy, as the message for its field, or `None`.
    pub fn loosened_by(self, choice: SecondFactorChoice) -> Option<(&'static str, &'static str)> {
        if self.required && choice.required == Some(false) {
            return Some((
                "second_factor",
                "This service requires a second factor for everyone, so it cannot be made optional for an organisation",
            ));
        }
        if !self.email_codes && choice.email_codes == Some(true) {
            return Some((
                "email_codes",
                "This service does not allow emailed codes, so they cannot be allowed for an organisation",
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_organisation_may_tighten_never_loosen() {
        let strict = SecondFactorPolicy { required: true, email_codes: false };
        let lax = SecondFactorPolicy { required: false, email_codes: true };
        let loosen = SecondFactorChoice { required: Some(false), email_codes: Some(true) };
        let tighten = SecondFactorChoice { required: Some(true), email_codes: Some(false) };
        assert_eq!(strict.tightened_by(loosen), strict);
        assert_eq!(lax.tightened_by(tighten), strict);
        assert_eq!(lax.tightened_by(SecondFactorChoice::default()), lax);
        assert_eq!(strict.loosened_by(loosen).map(|(f, _)| f), Some("second_factor"));
        let only_email = SecondFactorChoice { required: None, email_codes: Some(true) };
        assert_eq!(strict.loosened_by(only_email).map(|(f, _)| f), Some("email_codes"));
        assert_eq!(lax.loosened_by(loosen), None);
        assert_eq!(strict.loosened_by(tighten), None);
    }
}
