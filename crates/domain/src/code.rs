//! One-time codes sent by text message or email: 6 random digits, stored only as a keyed hash
//! (HMAC-SHA-256 under the deployment's secret key, so a copy of the database alone cannot be
//! searched for them), single use, newest only, short-lived, and guessing is limited per flow.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use crate::duration::Span;
use crate::secret::constant_time_eq;

/// The rules for the codes of one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeRules {
    /// How long a code works.
    pub lifetime: Span,
    /// Wrong codes allowed in the flow, whatever the number of codes sent.
    pub max_failures: i64,
    /// Codes that may be sent in the flow.
    pub max_sends: i64,
    /// The shortest wait between two codes.
    pub resend_after: Span,
}

/// Activation's text-message check of the mobile number. Texted codes last 5 minutes, as the
/// recovery phone's do (S12).
pub const ACTIVATION_SMS: CodeRules =
    CodeRules { lifetime: Span::minutes(5), max_failures: 5, max_sends: 5, resend_after: Span::seconds_(60) };

/// Texted codes for every other flow: the check of the registered mobile before an
/// authenticator app is added, proving a recovery phone, and recovery by text message.
pub const SMS_CODE: CodeRules = ACTIVATION_SMS;

/// Emailed codes (the email second factor and checks without a mobile): 15 minutes, newest
/// only (S11).
pub const EMAIL_CODE: CodeRules =
    CodeRules { lifetime: Span::minutes(15), max_failures: 5, max_sends: 5, resend_after: Span::seconds_(30) };

/// How many digits a sent code has.
pub const CODE_DIGITS: usize = 6;

/// A code as sent. Never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimeCode(String);

impl OneTimeCode {
    pub fn generate() -> Self {
        let top = 10u32.pow(CODE_DIGITS as u32);
        Self(format!("{:0width$}", rand::rng().random_range(0..top), width = CODE_DIGITS))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The keyed hash that is stored.
    pub fn hash(&self, key: &[u8]) -> String {
        keyed_hash(key, &self.0)
    }
}

impl fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeCode([redacted])")
    }
}

fn keyed_hash(key: &[u8], code: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return String::new() };
    mac.update(b"usher-one-time-code:");
    mac.update(code.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// What a person typed, tidied: spaces and dashes removed. `None` when it cannot be a code.
pub fn normalise_entered(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// Compares an entered code with a stored hash in constant time.
pub fn matches(key: &[u8], entered: &str, stored_hash: &str) -> bool {
    constant_time_eq(keyed_hash(key, entered).as_bytes(), stored_hash.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_hash_under_the_key() {
        let c = OneTimeCode::generate();
        assert_eq!(c.expose().len(), 6);
        assert!(c.expose().bytes().all(|b| b.is_ascii_digit()));
        let h = c.hash(b"key one");
        assert!(matches(b"key one", c.expose(), &h));
        assert!(!matches(b"key two", c.expose(), &h));
        assert!(!h.contains(c.expose()) || h.len() == 64);
        assert_eq!(format!("{c:?}"), "OneTimeCode([redacted])");
    }

    #[test]
    fn entered_codes_are_tidied() {
        assert_eq!(normalise_entered(" 123 456 ").as_deref(), Some("123456"));
        assert_eq!(normalise_entered("123-456").as_deref(), Some("123456"));
        for bad in ["12345", "1234567", "abcdef", "12345６", ""] {
            assert_eq!(normalise_entered(bad), None, "{bad}");
        }
    }
}
