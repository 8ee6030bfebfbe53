//! Layered configuration: defaults, then the TOML file given with `--config`, then `USHER_*`
//! environment variables. Every secret may instead be read from a file named by the same
//! variable with `_FILE` appended (for example `USHER_EMAIL_SMTP_PASSWORD_FILE`).

use std::path::Path;

use toml::{Table, Value};
use usher_app::Config;

/// What kind of value a setting holds, so an environment variable is read correctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Secret,
    Integer,
    /// Comma-separated.
    List,
    /// `true` or `false`.
    Boolean,
}

/// Every setting that can come from the environment: its dotted path and kind. The variable is
/// `USHER_` followed by the path in capitals with `.` replaced by `_`.
const SETTINGS: &[(&str, Kind)] = &[
    ("service_name", Kind::Text),
    ("public_base_url", Kind::Text),
    ("listen", Kind::Text),
    ("management_listen", Kind::Text),
    ("data_dir", Kind::Text),
    ("database_url", Kind::Secret),
    ("database_max_connections", Kind::Integer),
    ("secret_key", Kind::Secret),
    ("secret_key_file", Kind::Text),
    ("previous_secret_keys", Kind::List),
    ("log.format", Kind::Text),
    ("log.level", Kind::Text),
    ("email.provider", Kind::Text),
    ("email.sender_address", Kind::Text),
    ("email.sender_name", Kind::Text),
    ("email.smtp.host", Kind::Text),
    ("email.smtp.port", Kind::Integer),
    ("email.smtp.tls", Kind::Text),
    ("email.smtp.username", Kind::Text),
    ("email.smtp.password", Kind::Secret),
    ("email.smtp.timeout_seconds", Kind::Integer),
    ("email.smtp.max_connections", Kind::Integer),
    ("email.notify.api_key", Kind::Secret),
    ("email.notify.base_url", Kind::Text),
    ("email.notify.email_template_id", Kind::Text),
    ("email.notify.sms_template_id", Kind::Text),
    ("sms.provider", Kind::Text),
    ("sms.notify.api_key", Kind::Secret),
    ("sms.notify.base_url", Kind::Text),
    ("sms.notify.email_template_id", Kind::Text),
    ("sms.notify.sms_template_id", Kind::Text),
    ("sms.twilio.account_sid", Kind::Text),
    ("sms.twilio.auth_token", Kind::Secret),
    ("sms.twilio.from", Kind::Text),
    ("sms.twilio.base_url", Kind::Text),
    ("sms.allowed_countries", Kind::List),
    ("mfa.required", Kind::Boolean),
    ("mfa.email_codes", Kind::Boolean),
    ("lifecycle.deregister_after", Kind::Text),
    ("lifecycle.delete_after", Kind::Text),
    ("lifecycle.reminders", Kind::List),
    ("lifecycle.run_every", Kind::Text),
    ("policy.profile", Kind::Text),
    ("sessions.idle_timeout", Kind::Text),
    ("sessions.absolute_timeout", Kind::Text),
    ("helpdesk.name", Kind::Text),
    ("helpdesk.email", Kind::Text),
    ("helpdesk.phone", Kind::Text),
    ("helpdesk.hours", Kind::Text),
    ("password_hashing.memory_kib", Kind::Integer),
    ("password_hashing.iterations", Kind::Integer),
    ("password_hashing.parallelism", Kind::Integer),
    ("hashing_threads", Kind::Integer),
    ("trusted_proxies", Kind::List),
    ("insecure_dev_mailbox_on_public_url", Kind::Boolean),
];

pub fn env_name(path: &str) -> String {
    format!("USHER_{}", path.replace('.', "_").to_uppercase())
}

/// Loads the configuration. The error is one line naming the setting or file to fix.
pub fn load(file: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
    let mut table = Table::new();
    if let Some(path) = file {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("--config: cannot read {}: {e}", path.display()))?;
        table = text
            .parse::<Table>()
            .map_err(|e| format!("--config: {} is not valid TOML: {}", path.display(), one_line(&e.to_string())))?;
    }
    for (path, kind) in SETTINGS {
        let name = env_name(path);
        let value = match (env(&name), *kind == Kind::Secret) {
            (Some(v), _) => Some(v),
            (None, true) => match env(&format!("{name}_FILE")) {
                Some(file) => Some(
                    std::fs::read_to_string(&file)
                        .map_err(|e| format!("{name}_FILE: cannot read {file}: {e}"))?
                        .trim_end_matches(['\r', '\n'])
                        .to_owned(),
                ),
                None => None,
            },
            (None, false) => None,
        };
        if let Some(value) = value {
            let value = match kind {
                Kind::Integer => Value::Integer(
                    value.trim().parse().map_err(|_| format!("{name}: '{value}' is not a whole number"))?,
                ),
                Kind::Boolean => match value.trim() {
                    "true" | "1" | "yes" => Value::Boolean(true),
                    "false" | "0" | "no" => Value::Boolean(false),
                    _ => return Err(format!("{name}: '{value}' is not true or false")),
                },
                Kind::List => Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(|v| Value::String(v.to_owned()))
                        .collect(),
                ),
                Kind::Text | Kind::Secret => Value::String(value),
            };
            insert(&mut table, path, value);
        }
    }
    let config: Config = Value::Table(table).try_into().map_err(|e: toml::de::Error| {
        let source = file.map_or_else(|| "configuration".to_owned(), |p| p.display().to_string());
        format!("{source}: {}", one_line(&e.to_string()))
    })?;
    // A benchmark may hash at another service's lower cost to compare like with like; nothing else may.
    let checked = if env("USHER_ALLOW_BENCHMARK_HASHING").as_deref() == Some("1") {
        config.validate_for_benchmark()
    } else {
        config.validate()
    };
    checked.map_err(|e| format!("{} (set it in the config file or {})", e, env_name(&e.setting)))?;
    Ok(config)
}

fn insert(table: &mut Table, path: &str, value: Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut current = table;
    for part in parts {
        let entry = current.entry(part.to_owned()).or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(next) = entry else { return };
        current = next;
    }
    current.insert(last.to_owned(), value);
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The effective configuration as TOML, secrets shown as `[redacted]`.
pub fn render(config: &Config) -> String {
    toml::to_string_pretty(config).unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write as _;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_then_file_then_environment() {
        let dir = std::env::temp_dir().join(format!("usher-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("usher.toml");
        let mut f = std::fs::File::create(&file).unwrap();
        writeln!(f, "service_name = \"From file\"\nlisten = \"127.0.0.1:9000\"\n[sessions]\nidle_timeout = \"20m\"")
            .unwrap();
        let secret = dir.join("smtp-password");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let env = env_of(&[
            ("USHER_LISTEN", "127.0.0.1:9100"),
            ("USHER_EMAIL_PROVIDER", "smtp"),
            ("USHER_EMAIL_SMTP_HOST", "mail.example.org"),
            ("USHER_EMAIL_SMTP_PORT", "2525"),
            ("USHER_EMAIL_SMTP_PASSWORD_FILE", secret.to_str().unwrap()),
        ]);
        let c = load(Some(&file), &env).unwrap();
        assert_eq!(c.service_name, "From file");
        assert_eq!(c.listen, "127.0.0.1:9100");
        assert_eq!(c.sessions.idle_timeout.to_string(), "20m");
        let smtp = c.email.smtp.clone().unwrap();
        assert_eq!(smtp.host, "mail.example.org");
        assert_eq!(smtp.port(), 2525);
        assert_eq!(smtp.password.as_ref().unwrap().expose(), "s3cret");
        let shown = render(&c);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn mistakes_are_one_clear_line() {
        let dir = std::env::temp_dir().join(format!("usher-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let err = load(Some(&file), &env_of(&[])).unwrap_err();
        assert!(err.contains("lisen") && !err.contains('\n'), "{err}");
        std::fs::write(&file, "service_name = \n").unwrap();
        let err = load(Some(&file), &env_of(&[])).unwrap_err();
        assert!(err.contains("not valid TOML") && !err.contains('\n'), "{err}");
        let err = load(None, &env_of(&[("USHER_LISTEN", "nowhere")])).unwrap_err();
        assert!(err.starts_with("listen:") && err.contains("USHER_LISTEN"), "{err}");
        let err = load(None, &env_of(&[("USHER_DATABASE_MAX_CONNECTIONS", "many")])).unwrap_err();
        assert!(err.contains("USHER_DATABASE_MAX_CONNECTIONS"), "{err}");
        let err = load(None, &env_of(&[("USHER_SECRET_KEY_FILE", "/nonexistent/key")])).unwrap_err();
        assert!(err.starts_with("USHER_SECRET_KEY_FILE: cannot read /nonexistent/key"), "{err}");
    }

    #[test]
    fn only_a_benchmark_may_hash_below_the_floor() {
        let keycloak = [("USHER_PASSWORD_HASHING_MEMORY_KIB", "7168"), ("USHER_PASSWORD_HASHING_ITERATIONS", "5")];
        let err = load(None, &env_of(&keycloak)).unwrap_err();
        assert!(err.starts_with("password_hashing:") && err.contains("19456"), "{err}");
        let mut allowed = keycloak.to_vec();
        allowed.push(("USHER_ALLOW_BENCHMARK_HASHING", "1"));
        let c = load(None, &env_of(&allowed)).unwrap();
        assert_eq!((c.password_hashing.memory_kib, c.password_hashing.iterations), (7168, 5));
        assert!(!c.password_hashing.meets_floor());
        // Parameters Argon2id itself refuses stay refused.
        allowed[0] = ("USHER_PASSWORD_HASHING_MEMORY_KIB", "1");
        assert!(load(None, &env_of(&allowed)).is_err());
    }

    #[test]
    fn every_setting_maps_to_a_field() {
        // Setting each variable must never produce "unknown field": the list matches Config.
        for (path, kind) in SETTINGS {
            let value = match kind {
                Kind::Integer => "3",
                _ => "x",
            };
            let name = env_name(path);
            let result = load(None, &env_of(&[(name.as_str(), value)]));
            if let Err(e) = result {
                assert!(!e.contains("unknown field"), "{path}: {e}");
            }
        }
    }
}
