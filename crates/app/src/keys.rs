//! The key that protects secrets at rest, kept outside the database: in the configuration, an
//! environment variable or a file. From it come the key that encrypts TOTP secrets and outbox
//! message bodies (AES-256-GCM, authenticated, each bound to its owner: see
//! [`usher_domain::sealing`]) and the key of the hashes of one-time and recovery codes.
//!
//! Rotation: make a new key, move the old one to `previous_secret_keys`, restart, then run
//! `usher keys reencrypt`. Until then the old key still opens what it sealed and still checks
//! the codes hashed under it; afterwards it can be dropped.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
pub use usher_domain::sealing::{KeyRing, Unsealable};
use usher_domain::secret::random_bytes;

use crate::config::{Config, ConfigError};

/// The configured key ring. It dereferences to [`KeyRing`], which seals and opens.
pub struct SecretKey(KeyRing);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl std::ops::Deref for SecretKey {
    type Target = KeyRing;

    fn deref(&self) -> &KeyRing {
        &self.0
    }
}

fn bad(setting: &str, problem: String) -> ConfigError {
    ConfigError { setting: setting.into(), problem }
}

impl SecretKey {
    /// Builds a key ring from raw keys (tests and tools).
    pub fn from_keys(current: [u8; 32], previous: Vec<[u8; 32]>) -> Self {
        Self(KeyRing::from_keys(current, previous))
    }

    fn decode(setting: &str, text: &str) -> Result<[u8; 32], ConfigError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| bad(setting, "is not base64; make one with: head -c 32 /dev/urandom | base64".into()))?;
        bytes.try_into().map_err(|_| {
            bad(setting, "must be 32 bytes in base64; make one with: head -c 32 /dev/urandom | base64".into())
        })
    }

    /// Loads the key: from `secret_key`, else from `secret_key_file`, else from
    /// `data_dir/secret.key`, which is created (readable by its owner only) on first start.
    pub fn load(config: &Config) -> Result<Self, ConfigError> {
        let previous = config
            .previous_secret_keys
            .iter()
            .map(|k| Self::decode("previous_secret_keys", k.expose()))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(key) = &config.secret_key {
            return Ok(Self::from_keys(Self::decode("secret_key", key.expose())?, previous));
        }
        let path = config.effective_secret_key_file();
        if !config.secret_key_file.is_empty() || path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad("secret_key_file", format!("cannot read {}: {e}", path.display())))?;
            return Ok(Self::from_keys(Self::decode("secret_key_file", &text)?, previous));
        }
        let key = random_bytes::<32>();
        write_private(&path, &STANDARD.encode(key))
            .map_err(|e| bad("data_dir", format!("cannot create {}: {e}", path.display())))?;
        Ok(Self::from_keys(key, previous))
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}
