//! Every number of the policy profile in one value ([`Policy`]), and the deployment's rules
//! merged with an organisation's own: an organisation may tighten the deployment's policy, never
//! loosen it ([`Policy::tightened_by`]). The app reads its numbers from here, and the emails
//! print them from here, so the rule and the wording cannot drift apart.

use crate::code::{ACTIVATION_SMS, CodeRules, EMAIL_CODE, SMS_CODE};
use crate::duration::Span;
use crate::lifecycle::LifecyclePolicy;
use crate::password::{PasswordPolicy, Profile};
use crate::recovery::CODES_IN_SET;

/// The rules in force for one person (or, before an organisation's choice is applied, for the
/// deployment). The seed documents' rules by default; the password part follows the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub password: PasswordPolicy,
    pub second_factor: SecondFactorPolicy,
    /// Consecutive wrong passwords that lock an account (seed: no more than 4 guesses).
    pub lock_after_wrong_passwords: i64,
    /// Consecutive wrong second factors (or set-up checks) that lock an account.
    pub lock_after_wrong_second_factors: i64,
    /// How long an activation link works (seed: 28 days).
    pub activation_link: Span,
    /// How long a password reset link works.
    pub reset_link: Span,
    /// Activation's texted check of the mobile number.
    pub activation_code: CodeRules,
    /// Texted codes of every other flow (set-up checks, recovery phone, recovery by text).
    pub sms_code: CodeRules,
    /// Emailed codes (the email second factor and checks without a mobile).
    pub email_code: CodeRules,
    /// Recovery codes in a set.
    pub recovery_codes: usize,
    /// How long a re-entered password lets a person change factors and phones (S24).
    pub reauthentication_window: Span,
    /// A session that has proven only the password ends this long after it began.
    pub pending_session_lifetime: Span,
    /// A session unused this long ends (from the deployment's configuration).
    pub idle_timeout: Span,
    /// A session ends this long after sign-in, however busy (from the configuration).
    pub absolute_timeout: Span,
    /// Reminders, deregistration and deletion of unused accounts (from the configuration).
    pub lifecycle: LifecyclePolicy,
}

impl Policy {
    /// The seed documents' rules with the password rules of `profile`. The deployment sets the
    /// parts its configuration decides (second factors, session timeouts, lifecycle) on top.
    pub fn for_profile(profile: Profile) -> Self {
        Self {
            password: PasswordPolicy::for_profile(profile, false),
            second_factor: SecondFactorPolicy { required: true, email_codes: true },
            lock_after_wrong_passwords: 4,
            lock_after_wrong_second_factors: 5,
            activation_link: Span::days(28),
            reset_link: Span::hours(1),
            activation_code: ACTIVATION_SMS,
            sms_code: SMS_CODE,
            email_code: EMAIL_CODE,
            recovery_codes: CODES_IN_SET,
            reauthentication_window: Span::minutes(10),
            pending_session_lifetime: Span::hours(1),
            idle_timeout: Span::minutes(30),
            absolute_timeout: Span::hours(12),
            lifecycle: LifecyclePolicy::default(),
        }
    }

    /// The rules for an organisation's people: the deployment's, tightened (never loosened)
    /// by what the organisation chose. The one place the two are merged.
    pub fn tightened_by(&self, choice: &OrganisationChoice) -> Self {
        let mut policy = self.clone();
        policy.second_factor = self.second_factor.tightened_by(choice.second_factor);
        if let Some(min) = choice.min_password_length {
            policy.password.min_length = policy.password.min_length.max(min);
        }
        policy
    }

    /// Whether an account with these counts has reached either lock.
    pub fn at_lock_limit(&self, failed_sign_ins: i64, failed_second_factors: i64) -> bool {
        failed_sign_ins >= self.lock_after_wrong_passwords
            || failed_second_factors >= self.lock_after_wrong_second_factors
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::for_profile(Profile::Seed)
    }
}

/// What an organisation chose for its people; `None` leaves the deployment's rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrganisationChoice {
    pub second_factor: SecondFactorChoice,
    /// A longer shortest password than the deployment's.
    pub min_password_length: Option<usize>,
}

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

    #[test]
    fn the_seed_numbers() {
        let p = Policy::default();
        assert_eq!((p.lock_after_wrong_passwords, p.lock_after_wrong_second_factors), (4, 5));
        assert_eq!(p.email_code.lifetime, Span::minutes(15));
        assert_eq!(p.sms_code.lifetime, Span::minutes(5));
        assert_eq!(p.activation_link, Span::days(28));
        assert_eq!(p.reset_link, Span::hours(1));
        assert_eq!(p.recovery_codes, 10);
        assert_eq!(p.reauthentication_window, Span::minutes(10));
        assert_eq!(p.lifecycle.deregister_after, Span::days(90));
        assert_eq!(p.password.min_length, 8);
        assert!(p.at_lock_limit(4, 0) && p.at_lock_limit(0, 5) && !p.at_lock_limit(3, 4));
    }

    #[test]
    fn an_organisation_tightens_the_whole_policy_in_one_merge() {
        let deployment = Policy::default();
        let choice = OrganisationChoice {
            second_factor: SecondFactorChoice { required: Some(false), email_codes: Some(false) },
            min_password_length: Some(12),
        };
        let merged = deployment.tightened_by(&choice);
        assert_eq!(merged.second_factor, SecondFactorPolicy { required: true, email_codes: false });
        assert_eq!(merged.password.min_length, 12);
        let shorter = OrganisationChoice { min_password_length: Some(6), ..OrganisationChoice::default() };
        assert_eq!(deployment.tightened_by(&shorter).password.min_length, 8, "never loosened");
        assert_eq!(deployment.tightened_by(&OrganisationChoice::default()), deployment);
        // The rest of the numbers are the deployment's.
        assert_eq!(merged.lock_after_wrong_passwords, deployment.lock_after_wrong_passwords);
        assert_eq!(merged.email_code, deployment.email_code);
    }
}
