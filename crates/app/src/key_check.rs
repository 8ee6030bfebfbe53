//! The secret key against the database it protects. The database keeps a check value per key
//! (a known text sealed under it), so a start with a lost key file or another key is refused
//! with one line, before anything new is sealed under the wrong key and before every
//! authenticator app starts getting "wrong code". A key is made only for a database that has
//! never sealed anything.

use usher_domain::Timestamp;
use usher_store::{KeyCheck, Store, Tx};

use crate::config::{Config, ConfigError};
use crate::keys::SecretKey;

const CHECK_TEXT: &[u8] = b"usher secret key check v1";
const CHECK_BINDING: &str = "key-check";

/// What a start would do with the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyVerdict {
    /// The key opens the database's check value.
    Opens,
    /// The key is new to the database and may be recorded: a first start, the first start
    /// after this check existed, or a rotation whose previous key opens the old check.
    Record,
    /// No key yet and nothing sealed: one will be made.
    Generate,
}

impl SecretKey {
    fn check_value(&self) -> Result<KeyCheck, ConfigError> {
        let sealed = self
            .seal(CHECK_TEXT, CHECK_BINDING)
            .map_err(|e| ConfigError { setting: "secret_key".into(), problem: e.to_string() })?;
        Ok(KeyCheck { key_id: self.current_id(), sealed })
    }

    fn opens_check(&self, check: &KeyCheck) -> bool {
        self.open(&check.sealed, CHECK_BINDING).is_ok_and(|plain| plain == CHECK_TEXT)
    }
}

fn store_error(e: usher_store::StoreError) -> ConfigError {
    ConfigError { setting: "database_url".into(), problem: e.to_string() }
}

fn key_setting(config: &Config) -> &'static str {
    if config.secret_key.is_some() { "secret_key" } else { "secret_key_file" }
}

fn wrong_key(config: &Config) -> ConfigError {
    ConfigError {
        setting: key_setting(config).into(),
        problem: "this key does not open what the database holds (it was sealed under another key): \
                  restore the key the database was started with, or keep it in previous_secret_keys while rotating"
            .into(),
    }
}

fn key_dropped(ids: &[String]) -> ConfigError {
    ConfigError {
        setting: "previous_secret_keys".into(),
        problem: format!(
            "the database still holds data sealed under {} (key {}) that no configured key opens: put the old key \
             back in previous_secret_keys, start, and run `usher keys reencrypt` before dropping it",
            if ids.len() == 1 { "an older key" } else { "older keys" },
            ids.join(", ")
        ),
    }
}

/// The lock that serialises the check and the recording of a key across servers.
const KEY_CHECK_LOCK: &str = "key-check";

/// Decides, changing nothing, what a start would do with `key` (None: no key configured and no
/// key file yet) against `store`, or why it must refuse.
pub async fn verdict(config: &Config, key: Option<&SecretKey>, store: &Store) -> Result<KeyVerdict, ConfigError> {
    let mut tx = store.begin_read().await.map_err(store_error)?;
    verdict_in(config, key, &mut tx).await
}

async fn verdict_in(config: &Config, key: Option<&SecretKey>, tx: &mut Tx) -> Result<KeyVerdict, ConfigError> {
    let checks = tx.key_checks().await.map_err(store_error)?;
    let Some(key) = key else {
        if !checks.is_empty() || tx.holds_keyed_data().await.map_err(store_error)? {
            return Err(ConfigError {
                setting: "secret_key_file".into(),
                problem: format!(
                    "{} is missing, but the database holds data sealed under a secret key: restore the key file from \
                     your backup (a new key would leave every authenticator app and recovery code unusable)",
                    config.effective_secret_key_file().display()
                ),
            });
        }
        return Ok(KeyVerdict::Generate);
    };
    let verdict = if checks.is_empty() {
        // A database from before the check values: try the key on a sealed secret, if there is one.
        if let Some((owner, sealed)) = tx.a_sealed_secret().await.map_err(store_error)?
            && key.open(&sealed, &owner).is_err()
        {
            return Err(wrong_key(config));
        }
        KeyVerdict::Record
    } else {
        let current = key.current_id();
        match checks.iter().find(|c| c.key_id == current) {
            Some(check) if key.opens_check(check) => KeyVerdict::Opens,
            Some(_) => return Err(wrong_key(config)),
            None if checks.iter().any(|c| key.opens_check(c)) => KeyVerdict::Record,
            None => return Err(wrong_key(config)),
        }
    };
    // A previous key dropped too soon: what it sealed would fail closed (every authenticator
    // app "wrong"), so the start is refused while sealed data still names it.
    let unknown: Vec<String> =
        tx.sealing_key_ids().await.map_err(store_error)?.into_iter().filter(|id| !key.knows(id)).collect();
    if !unknown.is_empty() {
        return Err(key_dropped(&unknown));
    }
    Ok(verdict)
}

/// The key for a migrated database: loaded, checked against the database's check values, and
/// recorded there when new. Refuses a lost or different key with one line naming the setting.
/// The check and the recording run under one lock, so two servers starting at once on a new
/// database agree on one key (the second sees the first's check value and is refused if its
/// key differs).
pub async fn open_for(config: &Config, store: &Store, now: Timestamp) -> Result<SecretKey, ConfigError> {
    let mut tx = store.begin().await.map_err(store_error)?;
    tx.lock(KEY_CHECK_LOCK).await.map_err(store_error)?;
    let existing = SecretKey::load_existing(config)?;
    let key = match verdict_in(config, existing.as_ref(), &mut tx).await? {
        KeyVerdict::Opens => return existing.ok_or_else(|| wrong_key(config)),
        KeyVerdict::Record => existing.ok_or_else(|| wrong_key(config))?,
        KeyVerdict::Generate => SecretKey::generate(config)?,
    };
    tx.record_key_check(&key.check_value()?, now.unix()).await.map_err(store_error)?;
    tx.commit().await.map_err(store_error)?;
    Ok(key)
}
