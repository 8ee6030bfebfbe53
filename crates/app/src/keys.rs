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
    /// Commands that open a database use [`crate::key_check::open_for`] instead, which creates
    /// a key only for a database that has never sealed anything.
    pub fn load(config: &Config) -> Result<Self, ConfigError> {
        match Self::load_existing(config)? {
            Some(key) => Ok(key),
            None => Self::generate(config),
        }
    }

    /// The configured key, or `None` when none is configured and `data_dir/secret.key` does not
    /// exist yet.
    pub fn load_existing(config: &Config) -> Result<Option<Self>, ConfigError> {
        let previous = Self::previous(config)?;
        if let Some(key) = &config.secret_key {
            return Ok(Some(Self::from_keys(Self::decode("secret_key", key.expose())?, previous)));
        }
        let path = config.effective_secret_key_file();
        if !config.secret_key_file.is_empty() || path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad("secret_key_file", format!("cannot read {}: {e}", path.display())))?;
            return Ok(Some(Self::from_keys(Self::decode("secret_key_file", &text)?, previous)));
        }
        Ok(None)
    }

    /// Makes a new key and writes it to `data_dir/secret.key`, readable by its owner only.
    pub fn generate(config: &Config) -> Result<Self, ConfigError> {
        let previous = Self::previous(config)?;
        let path = config.effective_secret_key_file();
        let key = random_bytes::<32>();
        write_private(&path, &STANDARD.encode(key))
            .map_err(|e| bad("data_dir", format!("cannot create {}: {e}", path.display())))?;
        Ok(Self::from_keys(key, previous))
    }

    fn previous(config: &Config) -> Result<Vec<[u8; 32]>, ConfigError> {
        config.previous_secret_keys.iter().map(|k| Self::decode("previous_secret_keys", k.expose())).collect()
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
