//! What a session has proven, and when: the evidence a relying party is later told about as
//! `amr` (RFC 8176 authentication method references), `acr` and `auth_time` (OpenID Connect
//! Core 1.0 §2), and that `max_age` and `prompt=login` are judged against.
//!
//! Pure: the app records a proof at each step of signing in and carries the evidence forward
//! each time a session is replaced; the store keeps it in its stored form ([`Evidence::stored`]).

use std::fmt;

use crate::Timestamp;
use crate::duration::Span;

/// A way of proving who one is, as a session records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthMethod {
    Password,
    /// A code from an authenticator app (TOTP).
    Totp,
    /// A code sent to the account's email address.
    EmailCode,
    /// A code texted to a phone (the recovery phone).
    Sms,
    /// One of the person's recovery codes.
    RecoveryCode,
    /// A passkey (WebAuthn) with user verification, bound to one device.
    Passkey,
    /// A passkey with user verification that may be copied between a person's devices (its
    /// authenticator says it is backup-eligible): a software-held key.
    SyncedPasskey,
}

/// What kind of factor a method is, for counting distinct factors (NIST SP 800-63B §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FactorClass {
    Knowledge,
    Possession,
    /// Something one is or knows, checked by the authenticator itself (a passkey's user
    /// verification: a fingerprint, a face or a PIN).
    Verified,
}

impl AuthMethod {
    pub const ALL: [Self; 7] = [
        Self::Password,
        Self::Totp,
        Self::EmailCode,
        Self::Sms,
        Self::RecoveryCode,
        Self::Passkey,
        Self::SyncedPasskey,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Totp => "totp",
            Self::EmailCode => "email_code",
            Self::Sms => "sms",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey => "passkey",
            Self::SyncedPasskey => "passkey_synced",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Its RFC 8176 values. Emailed and recovery codes are one-time passwords; RFC 8176 has
    /// no value of its own for either.
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            Self::Password => &["pwd"],
            Self::Totp | Self::EmailCode | Self::RecoveryCode => &["otp"],
            Self::Sms => &["sms"],
            // A hardware-bound key, used with user verification.
            Self::Passkey => &["hwk", "user"],
            // A software-held (synced) key, used with user verification.
            Self::SyncedPasskey => &["swk", "user"],
        }
    }

    /// Whether the method cannot be phished: the browser binds a passkey to Usher's origin.
    pub fn is_phishing_resistant(self) -> bool {
        matches!(self, Self::Passkey | Self::SyncedPasskey)
    }

    /// The kinds of factor the method proves: a passkey with user verification proves two
    /// (the device held, and the person verified by it).
    fn classes(self) -> &'static [FactorClass] {
        match self {
            Self::Password => &[FactorClass::Knowledge],
            Self::Totp | Self::EmailCode | Self::Sms | Self::RecoveryCode => &[FactorClass::Possession],
            Self::Passkey | Self::SyncedPasskey => &[FactorClass::Possession, FactorClass::Verified],
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One method proven at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    pub method: AuthMethod,
    pub at: Timestamp,
}

/// A session's evidence: each method it has proven with the latest time, and when it last
/// completed a full authentication (every step its sign-in required).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// At most one proof per method, in the order first proven.
    proofs: Vec<Proof>,
    authenticated_at: Option<Timestamp>,
}

impl Evidence {
    /// `method` proven at `at`; a method proven again keeps only its latest time.
    #[must_use]
    pub fn proven(mut self, method: AuthMethod, at: Timestamp) -> Self {
        match self.proofs.iter_mut().find(|p| p.method == method) {
            Some(p) => p.at = p.at.max(at),
            None => self.proofs.push(Proof { method, at }),
        }
        self
    }

    /// Every step the sign-in required is proven, at `at`: a full authentication.
    #[must_use]
    pub fn completed(mut self, at: Timestamp) -> Self {
        self.authenticated_at = Some(at);
        self
    }

    pub fn proofs(&self) -> &[Proof] {
        &self.proofs
    }

    /// When `method` was last proven in this session.
    pub fn proven_at(&self, method: AuthMethod) -> Option<Timestamp> {
        self.proofs.iter().find(|p| p.method == method).map(|p| p.at)
    }

    /// OpenID Connect's `auth_time`: the last full authentication. A password entered again
    /// later (to change a factor) refreshes the password's proof, not this: `max_age` and
    /// `prompt=login` ask for a whole sign-in.
    pub fn auth_time(&self) -> Option<Timestamp> {
        self.authenticated_at
    }

    /// Whether the last full authentication is within `max_age` of `now` (`max_age` of zero
    /// demands one at `now`, as `prompt=login` does).
    pub fn authenticated_within(&self, max_age: Span, now: Timestamp) -> bool {
        self.authenticated_at.is_some_and(|at| at <= now && now.seconds_since(at) <= max_age.seconds())
    }

    /// Proofs of more than one kind of factor (something known and something held).
    pub fn is_multi_factor(&self) -> bool {
        let mut classes = self.proofs.iter().flat_map(|p| p.method.classes().iter().copied());
        let Some(first) = classes.next() else { return false };
        classes.any(|c| c != first)
    }

    /// Whether a method that cannot be phished was proven.
    pub fn is_phishing_resistant(&self) -> bool {
        self.proofs.iter().any(|p| p.method.is_phishing_resistant())
    }

    /// The RFC 8176 `amr` values, each once, in a fixed order, with `mfa` when more than one
    /// kind of factor was proven. Empty until something is proven.
    pub fn amr(&self) -> Vec<&'static str> {
        let mut values: Vec<&'static str> = Vec::new();
        for method in AuthMethod::ALL {
            if self.proven_at(method).is_some() {
                for v in method.amr() {
                    if !values.contains(v) {
                        values.push(v);
                    }
                }
            }
        }
        if self.is_multi_factor() {
            values.push("mfa");
        }
        values
    }

    /// The stored form of the proofs: `password:1767603600 totp:1767603630`.
    pub fn stored(&self) -> String {
        self.proofs.iter().map(|p| format!("{}:{}", p.method, p.at.unix())).collect::<Vec<_>>().join(" ")
    }

    /// Evidence from its stored form and the stored time of the last full authentication.
    /// A method this version does not know is left out rather than refused, so a session
    /// written by a newer server still works.
    pub fn from_stored(proofs: &str, authenticated_at: Option<Timestamp>) -> Self {
        let mut evidence = Self { proofs: Vec::new(), authenticated_at };
        for item in proofs.split_whitespace() {
            let Some((name, at)) = item.split_once(':') else { continue };
            if let (Some(method), Ok(at)) = (AuthMethod::parse(name), at.parse::<i64>()) {
                evidence = evidence.proven(method, Timestamp::from_unix(at));
            }
        }
        evidence
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_767_603_600;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_unix(T + s)
    }

    #[test]
    fn password_then_app_is_multi_factor() {
        let e =
            Evidence::default().proven(AuthMethod::Password, at(0)).proven(AuthMethod::Totp, at(20)).completed(at(20));
        assert_eq!(e.amr(), ["pwd", "otp", "mfa"]);
        assert_eq!(e.auth_time(), Some(at(20)));
        assert!(e.is_multi_factor());
    }

    #[test]
    fn a_password_alone_is_one_factor_and_not_yet_authenticated_until_completed() {
        let e = Evidence::default().proven(AuthMethod::Password, at(0));
        assert_eq!(e.amr(), ["pwd"]);
        assert_eq!(e.auth_time(), None);
        assert!(!e.is_multi_factor());
        assert!(!e.authenticated_within(Span::hours(1), at(1)));
    }

    #[test]
    fn each_method_maps_to_rfc_8176_values() {
        let with = |m| Evidence::default().proven(AuthMethod::Password, at(0)).proven(m, at(1)).amr();
        assert_eq!(with(AuthMethod::EmailCode), ["pwd", "otp", "mfa"]);
        assert_eq!(with(AuthMethod::RecoveryCode), ["pwd", "otp", "mfa"]);
        assert_eq!(with(AuthMethod::Sms), ["pwd", "sms", "mfa"]);
        assert_eq!(with(AuthMethod::Passkey), ["pwd", "hwk", "user", "mfa"]);
        assert_eq!(with(AuthMethod::SyncedPasskey), ["pwd", "swk", "user", "mfa"]);
        // Two codes are two things held: still one kind of factor, and `otp` once.
        let codes = Evidence::default().proven(AuthMethod::Totp, at(0)).proven(AuthMethod::EmailCode, at(1));
        assert_eq!(codes.amr(), ["otp"]);
        assert_eq!(Evidence::default().amr(), Vec::<&str>::new());
    }

    #[test]
    fn a_passkey_alone_proves_two_factors_and_cannot_be_phished() {
        let device = Evidence::default().proven(AuthMethod::Passkey, at(0)).completed(at(0));
        assert_eq!(device.amr(), ["hwk", "user", "mfa"]);
        assert!(device.is_multi_factor() && device.is_phishing_resistant());
        let synced = Evidence::default().proven(AuthMethod::SyncedPasskey, at(0));
        assert_eq!(synced.amr(), ["swk", "user", "mfa"]);
        let codes = Evidence::default().proven(AuthMethod::Password, at(0)).proven(AuthMethod::Totp, at(1));
        assert!(!codes.is_phishing_resistant(), "a typed code can be phished");
        let stored = Evidence::from_stored(&synced.stored(), None);
        assert_eq!(stored.proven_at(AuthMethod::SyncedPasskey), Some(at(0)));
    }

    #[test]
    fn proving_again_keeps_the_latest_time_and_not_the_auth_time() {
        let e =
            Evidence::default().proven(AuthMethod::Password, at(0)).proven(AuthMethod::Totp, at(5)).completed(at(5));
        let later = e.clone().proven(AuthMethod::Password, at(600));
        assert_eq!(later.proven_at(AuthMethod::Password), Some(at(600)));
        assert_eq!(later.proofs().len(), 2);
        assert_eq!(later.auth_time(), Some(at(5)), "re-entering the password is not a new sign-in");
        assert_eq!(e.clone().proven(AuthMethod::Password, at(-5)).proven_at(AuthMethod::Password), Some(at(0)));
    }

    #[test]
    fn max_age_is_judged_against_the_last_full_authentication() {
        let e = Evidence::default().proven(AuthMethod::Password, at(0)).completed(at(0));
        assert!(e.authenticated_within(Span::minutes(5), at(300)));
        assert!(!e.authenticated_within(Span::minutes(5), at(301)));
        assert!(e.authenticated_within(Span::seconds_(0), at(0)));
        assert!(!e.authenticated_within(Span::seconds_(0), at(1)), "prompt=login: a new sign-in");
    }

    #[test]
    fn the_stored_form_round_trips_and_skips_what_it_does_not_know() {
        let e = Evidence::default()
            .proven(AuthMethod::Password, at(0))
            .proven(AuthMethod::EmailCode, at(9))
            .completed(at(9));
        let stored = e.stored();
        assert_eq!(stored, format!("password:{T} email_code:{}", T + 9));
        assert_eq!(Evidence::from_stored(&stored, Some(at(9))), e);
        let odd = Evidence::from_stored("password:1 webauthn-v9:2 junk totp:x sms:3", None);
        assert_eq!(odd.stored(), "password:1 sms:3");
        assert_eq!(Evidence::from_stored("", None), Evidence::default());
    }
}
