//! Password rules and password hashing.
//!
//! The default ("seed") profile follows the court platform's activation guide: 8 or more
//! characters, upper and lower case, letters, digits and special characters, changed every
//! 90 days, the last 5 not reused. The NIST SP 800-63B profile asks for length instead of
//! composition and never expires passwords. Both refuse common passwords and the user's own
//! name or email. Passwords are never truncated: anything up to 1,024 characters is accepted.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::{Deserialize, Serialize};

use crate::duration::Span;
use crate::secret::{constant_time_eq, random_bytes};

/// The longest password we hash; longer input is refused with a message, never cut short.
pub const MAX_LENGTH: usize = 1024;

static COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The rules of the seed documents (the default).
    Seed,
    /// NIST SP 800-63B: length, deny list, no composition rules and no expiry.
    Nist,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Seed => "seed",
            Self::Nist => "nist",
        }
    }
}

/// The rules in force for one person at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub profile: Profile,
    pub min_length: usize,
    pub require_composition: bool,
    /// How many earlier passwords may not be reused.
    pub history: usize,
    /// After this long a new password is required; `None` means never.
    pub max_age: Option<Span>,
}

impl PasswordPolicy {
    pub fn for_profile(profile: Profile, has_second_factor: bool) -> Self {
        match profile {
            Profile::Seed => {
                Self { profile, min_length: 8, require_composition: true, history: 5, max_age: Some(Span::days(90)) }
            }
            Profile::Nist => Self {
                profile,
                min_length: if has_second_factor { 8 } else { 15 },
                require_composition: false,
                history: 0,
                max_age: None,
            },
        }
    }

    /// Plain-language lines describing the rules, for the hint beside a new-password field.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!("{} characters or more", self.min_length)];
        if self.require_composition {
            lines.push("a mix of uppercase and lowercase letters".to_owned());
            lines.push("at least one number and one special character, such as ! ? # or %".to_owned());
        }
        lines.push("not a common password, and not your name or email address".to_owned());
        lines
    }

    /// What is wrong with the password, as one message naming everything it is missing (a
    /// field gets one short message, not one per rule). `None` means acceptable.
    pub fn check(&self, password: &str, person: &PersonalWords<'_>) -> Option<String> {
        if password.is_empty() {
            return Some("Enter a password".to_owned());
        }
        if password.chars().any(char::is_control) {
            return Some(
                "Password must not contain a tab, a line break or other characters that cannot be typed".to_owned(),
            );
        }
        let length = password.chars().count();
        if length > MAX_LENGTH {
            return Some(format!("Password must be {MAX_LENGTH} characters or fewer"));
        }
        let mut needs = Vec::new();
        if length < self.min_length {
            needs.push(format!("be {} characters or more", self.min_length));
        }
        if self.require_composition {
            let missing: Vec<&str> = [
                (password.chars().any(char::is_uppercase), "an uppercase letter"),
                (password.chars().any(char::is_lowercase), "a lowercase letter"),
                (password.chars().any(char::is_numeric), "a number"),
                (password.chars().any(|c| !c.is_alphanumeric() && !c.is_whitespace()), SPECIAL),
            ]
            .into_iter()
            .filter_map(|(present, what)| (!present).then_some(what))
            .collect();
            if !missing.is_empty() {
                needs.push(format!("include {}", and_list(&missing)));
            }
        }
        if !needs.is_empty() {
            return Some(format!("Password must {}", needs.join(" and ")));
        }
        if is_common(password) {
            return Some("Password is too common and easy to guess. Choose a different one".to_owned());
        }
        if person.appears_in(password) {
            return Some("Password must not include your name or email address".to_owned());
        }
        None
    }
}

const SPECIAL: &str = "a special character, such as ! ? # or %";

/// "a", "a and b", "a, b and c".
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Words of the person's own that may not appear in their password.
#[derive(Debug, Clone, Copy, Default)]
pub struct PersonalWords<'a> {
    pub full_name: &'a str,
    pub email: &'a str,
}

impl PersonalWords<'_> {
    fn appears_in(&self, password: &str) -> bool {
        let lowered = password.to_lowercase();
        let local_part = self.email.split('@').next().unwrap_or("");
        self.full_name
            .split(|c: char| !c.is_alphanumeric())
            .chain(local_part.split(|c: char| !c.is_alphanumeric()))
            .chain(std::iter::once(self.email))
            .filter(|w| w.chars().count() >= 3)
            .any(|w| lowered.contains(&w.to_lowercase()))
    }
}

/// The shipped deny list, parsed once.
fn common_passwords() -> &'static std::collections::HashSet<&'static str> {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
    })
}

/// A password is common when it, or its letters before any trailing digits and symbols, is on
/// the shipped deny list ("Sunshine2024!" is "sunshine" with decoration).
fn is_common(password: &str) -> bool {
    let lowered = password.to_lowercase();
    let stem = lowered.trim_end_matches(|c: char| !c.is_alphabetic());
    let list = common_passwords();
    list.contains(lowered.as_str()) || (stem.chars().count() >= 4 && list.contains(stem))
}

/// Argon2id cost. The defaults are OWASP's minimum (19 MiB, 2 passes, 1 lane).
/// A setting left out takes its default, so raising one of them alone is enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        Self { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl HashCost {
    pub fn validate(&self) -> Result<(), String> {
        if !self.meets_floor() {
            return Err(
                "password hashing cost must be at least memory_kib = 19456, iterations = 2, parallelism = 1".into()
            );
        }
        self.validate_params()
    }

    /// True at or above OWASP's minimum (S1), below which no real deployment may go.
    pub fn meets_floor(&self) -> bool {
        self.memory_kib >= 19 * 1024 && self.iterations >= 2 && self.parallelism >= 1
    }

    /// Only that Argon2id accepts the parameters, whatever the floor: for benchmarks that put
    /// Usher beside services hashing at other costs.
    pub fn validate_params(&self) -> Result<(), String> {
        self.argon2().map(|_| ()).map_err(|e| e.0)
    }

    fn argon2(&self) -> Result<Argon2<'static>, HashError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| HashError(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Hashes with a fresh random salt; the result is a PHC string that records the cost.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        self.hash_in(password, &mut Workspace::default())
    }

    /// As [`HashCost::hash`], in memory kept from earlier hashes.
    pub fn hash_in(&self, password: &str, work: &mut Workspace) -> Result<String, HashError> {
        let failed = |e: &dyn std::fmt::Display| HashError(e.to_string());
        let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| failed(&e))?;
        let argon = self.argon2()?;
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes).map_err(|e| failed(&e))?;
        let mut out = [0u8; OUTPUT_LEN];
        work.with_blocks(argon.params(), |blocks| {
            argon.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks)
        })
        .map_err(|e| failed(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(argon.params()).map_err(|e| failed(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Argon2's work, in KiB passed over: how long a check at this cost takes, near enough.
    fn work(&self) -> u64 {
        u64::from(self.memory_kib) * u64::from(self.iterations)
    }

    /// The cost recorded in a stored PHC string, if it is an Argon2 hash.
    pub fn of_stored(stored: &str) -> Option<Self> {
        let parsed = PasswordHash::new(stored).ok()?;
        let params = Params::try_from(&parsed).ok()?;
        Some(Self { memory_kib: params.m_cost(), iterations: params.t_cost(), parallelism: params.p_cost() })
    }

    /// The extra work that makes a check of `stored` (a hash made before the cost was raised)
    /// take as long as a check at this cost: a one-pass hash of the missing memory. `None` when
    /// the stored cost is not lower. S6: an account with an older, cheaper hash must not answer
    /// a wrong password faster than an unknown email, which is checked at this cost.
    pub fn padding_for(&self, stored: &str) -> Option<Self> {
        let missing = self.work().saturating_sub(Self::of_stored(stored)?.work());
        let memory_kib = u32::try_from(missing).ok()?;
        (memory_kib >= 8).then_some(Self { memory_kib, iterations: 1, parallelism: 1 })
    }

    /// True when a stored hash was made with a lower cost than this one.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return true;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != "argon2id"
            || params.m_cost() < self.memory_kib
            || params.t_cost() < self.iterations
            || params.p_cost() < self.parallelism
    }
}

/// Bytes of hash output, as the `argon2` crate makes by default.
const OUTPUT_LEN: usize = 32;

/// Argon2's working memory (19 MiB at the default cost), kept from one hash to the next. A
/// fresh allocation per hash costs page faults and zeroing on every sign-in, and the allocator
/// keeps freed ones in per-thread arenas, so a busy server grew by hundreds of MiB.
/// It keeps at most its limit: a hash stored at a higher cost (from before the configured cost
/// was lowered, say) is computed in memory of its own, so one such hash cannot pin more.
#[derive(Debug, Default)]
pub struct Workspace {
    blocks: Vec<Block>,
    /// The most blocks (of 1 KiB) kept; 0 for no limit.
    limit: usize,
}

impl Workspace {
    /// A workspace that keeps memory for hashes up to `cost`.
    pub fn up_to(cost: HashCost) -> Self {
        Self { blocks: Vec::new(), limit: usize::try_from(cost.memory_kib).unwrap_or(usize::MAX) }
    }

    /// Runs `f` on `params.block_count()` blocks: kept ones when within the limit.
    fn with_blocks<T>(&mut self, params: &Params, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let wanted = params.block_count();
        if self.limit != 0 && wanted > self.limit {
            return f(&mut vec![Block::default(); wanted]);
        }
        if self.blocks.len() < wanted {
            self.blocks.reserve_exact(wanted - self.blocks.len());
            self.blocks.resize(wanted, Block::default());
        }
        f(&mut self.blocks[..wanted])
    }
}

/// Checks a password against a stored PHC string, using the cost recorded in it.
pub fn verify(stored: &str, password: &str) -> bool {
    verify_in(stored, password, &mut Workspace::default())
}

/// As [`verify`], in memory kept from earlier hashes.
pub fn verify_in(stored: &str, password: &str, work: &mut Workspace) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed)) else {
        return false;
    };
    let Ok(version) = parsed.version.map(Version::try_from).transpose() else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version.unwrap_or_default(), params);
    let mut out = vec![0u8; expected.len()];
    work.with_blocks(argon.params(), |blocks| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks)
    })
    .is_ok()
        && constant_time_eq(&out, expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANN: PersonalWords<'static> = PersonalWords { full_name: "Ann Smith-Jones", email: "ann.smith@example.org" };

    #[test]
    fn seed_profile_table() {
        let p = PasswordPolicy::for_profile(Profile::Seed, false);
        let cases: &[(&str, Option<&str>)] = &[
            ("Tr1ckyHorse!", None),
            ("", Some("Enter a password")),
            ("Ab1!", Some("Password must be 8 characters or more")),
            ("alllowercase1!", Some("Password must include an uppercase letter")),
            ("ALLUPPERCASE1!", Some("Password must include a lowercase letter")),
            ("NoDigitsHere!", Some("Password must include a number")),
            ("NoSpecials123", Some("Password must include a special character, such as ! ? # or %")),
            ("Password1!", Some("Password is too common and easy to guess. Choose a different one")),
            ("Sunshine2024!", Some("Password is too common and easy to guess. Choose a different one")),
            ("Smith#Horse9", Some("Password must not include your name or email address")),
            ("Ann.smith@example.org1", Some("Password must not include your name or email address")),
            // One message naming everything missing, not one line per rule.
            (
                "lowercase",
                Some("Password must include an uppercase letter, a number and a special character, such as ! ? # or %"),
            ),
            (
                "abc",
                Some(
                    "Password must be 8 characters or more and include an uppercase letter, a number and a special character, such as ! ? # or %",
                ),
            ),
            // Defect: a NUL byte (or any control character) was accepted.
            (
                "Tr1cky\0Horse!",
                Some("Password must not contain a tab, a line break or other characters that cannot be typed"),
            ),
            (
                "Tr1cky\tHorse!",
                Some("Password must not contain a tab, a line break or other characters that cannot be typed"),
            ),
        ];
        for (password, expected) in cases {
            assert_eq!(p.check(password, &ANN).as_deref(), *expected, "{password:?}");
        }
    }

    #[test]
    fn long_and_unicode_passwords_are_accepted_whole() {
        let p = PasswordPolicy::for_profile(Profile::Seed, false);
        let long = format!("Aa1!{}", "x".repeat(200));
        assert!(p.check(&long, &ANN).is_none());
        assert!(p.check("Ünïcødé-Pässwörd-9", &ANN).is_none());
        let too_long = format!("Aa1!{}", "x".repeat(MAX_LENGTH));
        assert_eq!(p.check(&too_long, &ANN).as_deref(), Some("Password must be 1024 characters or fewer"));
    }

    /// Defect 8: after the cost was raised, older cheaper hashes answered faster than unknown
    /// emails. A wrong password on one is padded with the missing work.
    #[test]
    fn a_cheaper_stored_hash_is_padded_up_to_the_configured_cost() {
        let now = HashCost::default();
        let keycloak = HashCost { memory_kib: 7168, iterations: 5, parallelism: 1 };
        let old = keycloak.hash("Tr1ckyHorse!").unwrap();
        assert_eq!(HashCost::of_stored(&old), Some(keycloak));
        let pad = now.padding_for(&old).unwrap();
        assert_eq!(pad, HashCost { memory_kib: 19 * 1024 * 2 - 7168 * 5, iterations: 1, parallelism: 1 });
        assert_eq!(pad.work() + keycloak.work(), now.work());
        assert_eq!(now.padding_for(&now.hash("Tr1ckyHorse!").unwrap()), None, "same cost: nothing to add");
        assert_eq!(keycloak.padding_for(&now.hash("Tr1ckyHorse!").unwrap()), None, "a dearer hash: nothing");
        assert_eq!(now.padding_for("not a hash"), None);
    }

    #[test]
    fn nist_profile_wants_length_not_composition() {
        let p = PasswordPolicy::for_profile(Profile::Nist, false);
        assert!(p.check("correct horse battery staple", &ANN).is_none());
        assert_eq!(p.check("short one", &ANN).as_deref(), Some("Password must be 15 characters or more"));
        assert_eq!(PasswordPolicy::for_profile(Profile::Nist, true).min_length, 8);
        assert_eq!(p.max_age, None);
    }

    #[test]
    fn kept_memory_gives_the_reference_results() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let cost = HashCost::default();
        let mut work = Workspace::default();
        let ours = cost.hash_in("Tr1ckyHorse!", &mut work).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"Tr1ckyHorse!", &parsed).is_ok(), "{ours}");
        // A hash made by the crate's own path, at a lower cost (Keycloak's), checked in memory
        // sized for a larger one, and the other way round.
        let salt = SaltString::encode_b64(b"sixteen byte sal").unwrap();
        let small = HashCost { memory_kib: 7 * 1024, iterations: 5, parallelism: 1 };
        let theirs = small.argon2().unwrap().hash_password(b"Tr1ckyHorse!", &salt).unwrap().to_string();
        assert!(verify_in(&theirs, "Tr1ckyHorse!", &mut work));
        assert!(!verify_in(&theirs, "Tr1ckyHorse?", &mut work));
        assert!(verify_in(&ours, "Tr1ckyHorse!", &mut Workspace::default()));
        // A workspace kept for Keycloak's cost checks ours in memory of its own and keeps none of it.
        let mut small_work = Workspace::up_to(small);
        assert!(verify_in(&ours, "Tr1ckyHorse!", &mut small_work));
        assert!(small_work.blocks.is_empty());
        assert!(verify_in(&theirs, "Tr1ckyHorse!", &mut small_work));
        assert!(small_work.blocks.len() <= 7 * 1024);
        assert!(!verify_in("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA", "x", &mut work), "no hash part");
    }

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let cost = HashCost::default();
        let a = cost.hash("Tr1ckyHorse!").unwrap();
        let b = cost.hash("Tr1ckyHorse!").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert!(verify(&a, "Tr1ckyHorse!"));
        assert!(!verify(&a, "Tr1ckyHorse?"));
        assert!(!verify("not a hash", "Tr1ckyHorse!"));
        assert!(!cost.needs_rehash(&a));
        let higher = HashCost { iterations: 3, ..cost };
        assert!(higher.needs_rehash(&a));
        assert!(HashCost { memory_kib: 1024, ..cost }.validate().is_err());
    }
}
