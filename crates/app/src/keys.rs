//! The key that encrypts secrets at rest (TOTP secrets, from the MFA issue on). It is kept
//! outside the database: in the configuration, an environment variable or a file.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use usher_domain::secret::random_bytes;

use crate::config::{Config, ConfigError};

pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

fn bad(setting: &str, problem: String) -> ConfigError {
    ConfigError { setting: setting.into(), problem }
}

impl SecretKey {
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn decode(setting: &str, text: &str) -> Result<Self, ConfigError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| bad(setting, "is not base64; make one with: head -c 32 /dev/urandom | base64".into()))?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            bad(setting, "must be 32 bytes in base64; make one with: head -c 32 /dev/urandom | base64".into())
        })?;
        Ok(Self(key))
    }

    /// Loads the key: from `secret_key`, else from `secret_key_file`, else from
    /// `data_dir/secret.key`, which is created (readable by its owner only) on first start.
    pub fn load(config: &Config) -> Result<Self, ConfigError> {
        if let Some(key) = &config.secret_key {
            return Self::decode("secret_key", key.expose());
        }
        let path = config.effective_secret_key_file();
        if !config.secret_key_file.is_empty() || path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad("secret_key_file", format!("cannot read {}: {e}", path.display())))?;
            return Self::decode("secret_key_file", &text);
        }
        let key = random_bytes::<32>();
        write_private(&path, &STANDARD.encode(key))
            .map_err(|e| bad("data_dir", format!("cannot create {}: {e}", path.display())))?;
        Ok(Self(key))
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
