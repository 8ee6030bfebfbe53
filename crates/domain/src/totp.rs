//! Authenticator apps: TOTP (RFC 6238) with SHA-1, 6 digits and 30-second steps, so that any
//! authenticator app works. A code is accepted for the current step or one step either side,
//! and the caller makes sure a step, once accepted, is never accepted again for that person.

use std::fmt;

use totp_rs::{Algorithm, TOTP};

use crate::Timestamp;
use crate::secret::{constant_time_eq, random_bytes};

/// Seconds in a step.
pub const STEP_SECONDS: i64 = 30;
/// Digits in a code.
pub const DIGITS: usize = 6;
/// Steps either side of the server's step that are still accepted (S8).
pub const DRIFT_STEPS: i64 = 1;
/// Bytes of a secret (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;

/// A TOTP secret. Prints as `[redacted]`; the bytes leave only encrypted, or on the set-up page.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        Self(random_bytes::<SECRET_BYTES>().to_vec())
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn totp(&self, digits: usize, issuer: Option<String>, account: String) -> TOTP {
        TOTP::new_unchecked(Algorithm::SHA1, digits, 0, STEP_SECONDS.unsigned_abs(), self.0.clone(), issuer, account)
    }

    /// The secret in base32 (RFC 4648, no padding), for typing into an app by hand, in groups
    /// of four so it can be read aloud.
    pub fn base32_grouped(&self) -> String {
        let plain = self.totp(DIGITS, None, String::new()).get_secret_base32();
        plain.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
    }

    /// The `otpauth://` URI an app reads from the QR code, naming the service and the account.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        // A colon would split the label the wrong way; apps show the issuer anyway.
        let issuer = issuer.replace(':', " ");
        self.totp(DIGITS, Some(issuer), account.to_owned()).get_url()
    }

    /// The code for a step, with `digits` digits (6 in use; 8 for the RFC's test vectors).
    pub fn code_for_step(&self, step: i64, digits: usize) -> String {
        let time = u64::try_from(step).unwrap_or(0).saturating_mul(STEP_SECONDS.unsigned_abs());
        self.totp(digits, None, String::new()).generate(time)
    }

    /// The step an entered code belongs to, if it is the code of the step at `now` or of one
    /// step either side. Every candidate is compared, in constant time, whatever matches.
    pub fn matching_step(&self, entered: &str, now: Timestamp) -> Option<i64> {
        let current = step_at(now);
        let mut found = None;
        for step in (current - DRIFT_STEPS)..=(current + DRIFT_STEPS) {
            if step >= 0 && constant_time_eq(self.code_for_step(step, DIGITS).as_bytes(), entered.as_bytes()) {
                found = found.or(Some(step));
            }
        }
        found
    }
}

/// The step a moment falls in.
pub fn step_at(now: Timestamp) -> i64 {
    now.unix().div_euclid(STEP_SECONDS)
}

/// Seconds left before the code of `now`'s step changes.
pub fn seconds_left(now: Timestamp) -> i64 {
    STEP_SECONDS - now.unix().rem_euclid(STEP_SECONDS)
}

/// What a person typed, tidied: spaces removed. `None` when it cannot be a code.
pub fn normalise_entered(text: &str) -> Option<String> {
    crate::code::normalise_entered(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    /// RFC 6238 Appendix B, the SHA-1 column: 8 digits, including times past 2^32 (S7).
    #[test]
    fn rfc_6238_appendix_b_sha1_vectors() {
        let vectors = [
            (59_i64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (time, code) in vectors {
            let step = step_at(Timestamp::from_unix(time));
            assert_eq!(rfc_secret().code_for_step(step, 8), code, "T = {time}");
        }
    }

    #[test]
    fn one_step_of_drift_either_side_and_no_more() {
        let s = TotpSecret::generate();
        let now = Timestamp::from_unix(1_767_603_615);
        let step = step_at(now);
        for offset in [-1, 0, 1] {
            let code = s.code_for_step(step + offset, DIGITS);
            assert_eq!(s.matching_step(&code, now), Some(step + offset), "offset {offset}");
        }
        for offset in [-2, 2] {
            let code = s.code_for_step(step + offset, DIGITS);
            // A code may by chance equal a neighbouring step's; then it belongs to that step.
            let found = s.matching_step(&code, now);
            assert!(found.is_none() || found.is_some_and(|f| (f - step).abs() <= 1), "offset {offset}");
            assert_ne!(found, Some(step + offset));
        }
        assert_eq!(s.matching_step("12345", now), None);
    }

    #[test]
    fn secrets_are_20_random_bytes_shown_in_base32_and_an_otpauth_uri() {
        let s = TotpSecret::generate();
        assert_eq!(s.bytes().len(), 20);
        assert_ne!(s, TotpSecret::generate());
        let b32 = s.base32_grouped().replace(' ', "");
        assert_eq!(b32.len(), 32);
        let uri = s.otpauth_uri("Usher", "ada@example.org");
        assert!(uri.starts_with("otpauth://totp/Usher:ada%40example.org?secret="), "{uri}");
        assert!(uri.contains(&b32) && uri.contains("issuer=Usher"), "{uri}");
        assert_eq!(format!("{s:?}"), "TotpSecret([redacted])");
    }

    #[test]
    fn time_is_counted_in_30_second_steps() {
        assert_eq!(step_at(Timestamp::from_unix(59)), 1);
        assert_eq!(seconds_left(Timestamp::from_unix(60)), 30);
        assert_eq!(seconds_left(Timestamp::from_unix(89)), 1);
    }
}
