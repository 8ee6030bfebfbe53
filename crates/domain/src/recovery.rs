//! Recovery codes: 10 per person, shown once, each usable once at the second-factor step when
//! the person's app or email is out of reach. Stored only as keyed hashes.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use crate::secret::constant_time_eq;

/// Codes in a set.
pub const CODES_IN_SET: usize = 10;

/// Letters and digits that cannot be mistaken for one another when written down.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Characters in a code (10 from 31: about 50 bits).
const LENGTH: usize = 10;

/// A recovery code as shown, `abcde-fghjk`. Never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode([redacted])")
    }
}

impl RecoveryCode {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let chars: String = (0..LENGTH).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
        Self(chars)
    }

    /// A new set of the default size ([`CODES_IN_SET`]).
    pub fn set() -> Vec<Self> {
        Self::set_of(CODES_IN_SET)
    }

    /// A new set of `n` codes (the policy's number).
    pub fn set_of(n: usize) -> Vec<Self> {
        (0..n).map(|_| Self::generate()).collect()
    }

    /// As shown to the person: two groups of five.
    pub fn shown(&self) -> String {
        let (a, b) = self.0.split_at(LENGTH / 2);
        format!("{a}-{b}")
    }

    /// The keyed hash that is stored.
    pub fn hash(&self, key: &[u8]) -> String {
        keyed_hash(key, &self.0)
    }
}

/// What a person typed, tidied: spaces and dashes removed, lower case. `None` when it cannot
/// be a recovery code.
pub fn normalise_entered(text: &str) -> Option<String> {
    let t: String = text.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect();
    (t.len() == LENGTH && t.bytes().all(|b| ALPHABET.contains(&b))).then_some(t)
}

fn keyed_hash(key: &[u8], code: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return String::new() };
    mac.update(b"usher-recovery-code:");
    mac.update(code.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Compares a tidied entered code with a stored hash in constant time.
pub fn matches(key: &[u8], entered: &str, stored_hash: &str) -> bool {
    constant_time_eq(keyed_hash(key, entered).as_bytes(), stored_hash.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_ten_distinct_codes_that_hash_under_the_key() {
        let set = RecoveryCode::set();
        assert_eq!(set.len(), 10);
        let distinct: std::collections::HashSet<_> = set.iter().map(RecoveryCode::shown).collect();
        assert_eq!(distinct.len(), 10);
        let c = &set[0];
        assert_eq!(c.shown().len(), 11);
        let entered = normalise_entered(&c.shown().to_uppercase()).unwrap();
        assert!(matches(b"k", &entered, &c.hash(b"k")));
        assert!(!matches(b"other", &entered, &c.hash(b"k")));
        assert_eq!(format!("{c:?}"), "RecoveryCode([redacted])");
    }

    #[test]
    fn entered_codes_are_tidied_or_refused() {
        assert_eq!(normalise_entered(" ABCDE-fghjk ").as_deref(), Some("abcdefghjk"));
        for bad in ["", "abcde", "abcdefghjkl", "abcde-fghj1", "abcdé-fghjk", "0000000000"] {
            assert_eq!(normalise_entered(bad), None, "{bad}");
        }
    }
}
