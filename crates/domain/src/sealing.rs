//! Sealing: authenticated encryption (AES-256-GCM, aws-lc-rs) of secrets kept at rest, under a
//! key ring held outside the database. Pure computation: loading the key from a file or the
//! environment is the application's job.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::secret::random_bytes;

/// The current key and the keys in use before the last rotation, which still open what they
/// sealed.
#[derive(Clone)]
pub struct KeyRing {
    current: [u8; 32],
    previous: Vec<[u8; 32]>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing([redacted])")
    }
}

/// A sealed secret could not be opened: changed in the database, or sealed under a key that is
/// no longer configured. Whatever depended on it fails closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sealed secret could not be opened ({0})")]
pub struct Unsealable(&'static str);

impl Unsealable {
    /// What was opened is not what was sealed (it was not text, say).
    pub fn damaged() -> Self {
        Self("damaged")
    }
}

const SEAL_VERSION: &str = "v1";

/// Where a sealed value (`v1:<key id>:<base64>`) names its key, in characters: it starts after
/// the version and its colon, and a key ID is 4 bytes in hex. The store finds the keys that
/// sealed data names with these, in SQL, without reading every value.
pub const SEALED_KEY_ID_START: usize = SEAL_VERSION.len() + 1;
pub const SEALED_KEY_ID_LEN: usize = 8;

/// The ID of the key a sealed value was sealed under, if it is a sealed value.
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    sealed.strip_prefix(SEAL_VERSION)?.strip_prefix(':')?.split(':').next()
}

impl KeyRing {
    /// The current key: new code hashes are made under it.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.current
    }

    /// The current key and then the previous ones, to check a code hashed before a rotation.
    pub fn all(&self) -> impl Iterator<Item = &[u8; 32]> {
        std::iter::once(&self.current).chain(self.previous.iter())
    }

    /// The public name of the current key (it reveals nothing of the key).
    pub fn current_id(&self) -> String {
        key_id(&self.current)
    }

    /// Builds a key ring from raw keys (tests and tools).
    pub fn from_keys(current: [u8; 32], previous: Vec<[u8; 32]>) -> Self {
        Self { current, previous }
    }

    /// Encrypts a secret under the current key. `bound_to` (the owner's ID) is authenticated
    /// with it, so a sealed value moved to another row does not open.
    pub fn seal(&self, plain: &[u8], bound_to: &str) -> Result<String, Unsealable> {
        let key = aead_key(&self.current)?;
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut data = plain.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(bound_to), &mut data)
            .map_err(|_| Unsealable("encryption failed"))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{SEAL_VERSION}:{}:{}", key_id(&self.current), STANDARD.encode(out)))
    }

    /// Decrypts a sealed secret with whichever configured key sealed it.
    pub fn open(&self, sealed: &str, bound_to: &str) -> Result<Vec<u8>, Unsealable> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(SEAL_VERSION), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Unsealable("not a sealed value"));
        };
        let master = self.all().find(|k| key_id(k) == id).ok_or(Unsealable("sealed under a key not configured"))?;
        let bytes = STANDARD.decode(body).map_err(|_| Unsealable("damaged"))?;
        if bytes.len() < NONCE_LEN {
            return Err(Unsealable("damaged"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unsealable("damaged"))?;
        let mut data = ciphertext.to_vec();
        let plain = aead_key(master)?
            .open_in_place(nonce, Aad::from(bound_to), &mut data)
            .map_err(|_| Unsealable("authentication failed"))?;
        Ok(plain.to_vec())
    }

    /// True when `id` names the current key or one of the previous keys.
    pub fn knows(&self, id: &str) -> bool {
        self.all().any(|k| key_id(k) == id)
    }

    /// True when a sealed value is under an older key and should be sealed again.
    pub fn is_stale(&self, sealed: &str) -> bool {
        sealed_key_id(sealed) != Some(key_id(&self.current).as_str())
    }
}

/// The encryption key is derived from the configured key, so the code hashes and the
/// encryption never use the same key for two purposes.
fn aead_key(master: &[u8; 32]) -> Result<LessSafeKey, Unsealable> {
    let derived = hmac_sha256(master, b"usher-secret-encryption-v1");
    let unbound = UnboundKey::new(&AES_256_GCM, &derived).map_err(|_| Unsealable("bad key"))?;
    Ok(LessSafeKey::new(unbound))
}

/// Names a key without revealing it.
fn key_id(master: &[u8; 32]) -> String {
    hex::encode(&hmac_sha256(master, b"usher-key-id")[..4])
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key), data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_unchanged_for_their_owner() {
        let keys = KeyRing::from_keys([7; 32], vec![]);
        let sealed = keys.seal(b"twenty bytes secret!", "user-a").unwrap();
        assert!(!sealed.contains("twenty"));
        assert_eq!(keys.open(&sealed, "user-a").unwrap(), b"twenty bytes secret!");
        assert_ne!(keys.seal(b"twenty bytes secret!", "user-a").unwrap(), sealed, "a fresh nonce each time");
        assert!(keys.open(&sealed, "user-b").is_err(), "bound to its owner");
        // S10: any flipped bit fails closed.
        let (head, body) = sealed.rsplit_once(':').unwrap();
        let mut bytes = STANDARD.decode(body).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            let flipped = format!("{head}:{}", STANDARD.encode(&bytes));
            assert!(keys.open(&flipped, "user-a").is_err(), "bit flip at byte {i}");
            bytes[i] ^= 1;
        }
        assert!(keys.open("v1:nonsense", "user-a").is_err());
        assert!(keys.open("", "user-a").is_err());
    }

    #[test]
    fn a_rotated_key_still_opens_until_it_is_dropped() {
        let old = KeyRing::from_keys([1; 32], vec![]);
        let sealed = old.seal(b"secret", "u").unwrap();
        let rotated = KeyRing::from_keys([2; 32], vec![[1; 32]]);
        assert_eq!(rotated.open(&sealed, "u").unwrap(), b"secret");
        assert!(rotated.is_stale(&sealed));
        let resealed = rotated.seal(b"secret", "u").unwrap();
        assert!(!rotated.is_stale(&resealed));
        let id = sealed_key_id(&resealed).unwrap();
        assert_eq!(id, rotated.current_id());
        assert_eq!(&resealed[SEALED_KEY_ID_START..SEALED_KEY_ID_START + SEALED_KEY_ID_LEN], id, "the store's SQL");
        let dropped = KeyRing::from_keys([2; 32], vec![]);
        assert!(dropped.open(&sealed, "u").is_err());
        assert_eq!(dropped.open(&resealed, "u").unwrap(), b"secret");
    }
}
