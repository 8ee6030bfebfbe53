//! Settings. Defaults here; the binary layers a TOML file and `USHER_*` environment variables
//! on top (see `usher configtest`). Secrets are [`SecretString`]s, which never print.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use usher_delivery::notify::NotifyConfig;
use usher_delivery::smtp::SmtpConfig;
use usher_delivery::twilio::TwilioConfig;
use usher_domain::duration::Span;
use usher_domain::email::EmailAddress;
use usher_domain::password::{HashCost, Profile};
use usher_domain::secret::SecretString;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The name people see in page headers, emails and the browser title.
    pub service_name: String,
    /// The one web address Usher's emails link to, e.g. `https://signin.example.org`.
    pub public_base_url: String,
    /// Address and port to listen on.
    pub listen: String,
    /// Address and port of the management listener (Prometheus metrics at `/metrics`, and
    /// `/healthz`), kept off the public one. Empty: no management listener.
    pub management_listen: String,
    /// Where the SQLite database, the secret key and other local state live.
    pub data_dir: PathBuf,
    /// `sqlite:///path/usher.db` or `postgres://user@host/db`. Empty: SQLite in `data_dir`.
    /// May hold a password, so it is shown with the credentials hidden.
    #[serde(serialize_with = "serialize_redacted_url")]
    pub database_url: String,
    pub database_max_connections: u32,
    /// The key that encrypts secrets at rest: 32 random bytes in base64. Prefer
    /// `secret_key_file` or `USHER_SECRET_KEY_FILE`.
    pub secret_key: Option<SecretString>,
    /// A file holding that key. When neither is set, `data_dir/secret.key` is used and created
    /// on first start.
    pub secret_key_file: String,
    /// Keys in use before the last rotation: they still open secrets sealed under them and
    /// check codes hashed under them, until `usher keys reencrypt` has run.
    pub previous_secret_keys: Vec<SecretString>,
    pub log: LogConfig,
    pub email: EmailConfig,
    pub sms: SmsConfig,
    pub policy: PolicyConfig,
    pub sessions: SessionConfig,
    pub mfa: MfaConfig,
    pub lifecycle: LifecycleConfig,
    pub helpdesk: HelpdeskConfig,
    pub password_hashing: HashCost,
    /// Threads that may hash passwords at once (0: one per CPU).
    pub hashing_threads: usize,
    /// Addresses of the load balancers or reverse proxies in front of Usher. Only from these is
    /// `X-Forwarded-For` believed, to find the client's address for rate limits and the audit.
    pub trusted_proxies: Vec<String>,
    /// Lets the dev mailbox (and the dev providers behind it) run on a public web address,
    /// where anyone could read every code and link at `/dev/mailbox`. Never for real work.
    pub insecure_dev_mailbox_on_public_url: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `usher=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// `dev` (the dev mailbox), `smtp` or `notify`.
    pub provider: EmailProviderKind,
    /// The one address every email comes from.
    pub sender_address: String,
    pub sender_name: String,
    pub smtp: Option<SmtpConfig>,
    pub notify: Option<NotifyConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailProviderKind {
    Dev,
    Smtp,
    Notify,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// `dev` (the dev mailbox), `notify` or `twilio`.
    pub provider: SmsProviderKind,
    pub notify: Option<NotifyConfig>,
    pub twilio: Option<TwilioConfig>,
    /// Countries (ISO 3166 codes such as `GB`) whose numbers may be texted: a recovery phone
    /// elsewhere is refused, so the service cannot be used to pump texts abroad (S29).
    pub allowed_countries: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaConfig {
    /// Whether a second factor is required where an organisation has not said (operators
    /// always follow this).
    pub required: bool,
    /// Whether emailed codes may serve as a second factor where an organisation has not said.
    pub email_codes: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// An account unused this long (no sign-in) is deregistered.
    pub deregister_after: Span,
    /// A deregistered account not reregistered within this is deleted.
    pub delete_after: Span,
    /// Reminder emails, each this long before deregistration.
    pub reminders: Vec<Span>,
    /// How often `usher serve` runs the lifecycle jobs.
    pub run_every: Span,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        let policy = usher_domain::lifecycle::LifecyclePolicy::default();
        Self {
            deregister_after: policy.deregister_after,
            delete_after: policy.delete_after,
            reminders: policy.reminders,
            run_every: Span::minutes(15),
        }
    }
}

impl LifecycleConfig {
    pub fn policy(&self) -> usher_domain::lifecycle::LifecyclePolicy {
        usher_domain::lifecycle::LifecyclePolicy {
            deregister_after: self.deregister_after,
            delete_after: self.delete_after,
            reminders: self.reminders.clone(),
        }
    }
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self { required: true, email_codes: true }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsProviderKind {
    Dev,
    Notify,
    Twilio,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// `seed` (the rules of the seed documents) or `nist` (NIST SP 800-63B).
    pub profile: Profile,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A session unused for this long ends.
    pub idle_timeout: Span,
    /// A session ends this long after sign-in, however busy.
    pub absolute_timeout: Span,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HelpdeskConfig {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub hours: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            service_name: "Usher".into(),
            public_base_url: "http://localhost:8080".into(),
            listen: "127.0.0.1:8080".into(),
            management_listen: "127.0.0.1:9000".into(),
            data_dir: PathBuf::from("usher-data"),
            database_url: String::new(),
            database_max_connections: 10,
            secret_key: None,
            secret_key_file: String::new(),
            previous_secret_keys: Vec::new(),
            log: LogConfig::default(),
            email: EmailConfig::default(),
            sms: SmsConfig::default(),
            policy: PolicyConfig::default(),
            sessions: SessionConfig::default(),
            mfa: MfaConfig::default(),
            lifecycle: LifecycleConfig::default(),
            helpdesk: HelpdeskConfig::default(),
            password_hashing: HashCost::default(),
            hashing_threads: 0,
            trusted_proxies: Vec::new(),
            insecure_dev_mailbox_on_public_url: false,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Text, level: "info".into() }
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            provider: EmailProviderKind::Dev,
            sender_address: "noreply@usher.localhost".into(),
            sender_name: "Usher".into(),
            smtp: None,
            notify: None,
        }
    }
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self { provider: SmsProviderKind::Dev, notify: None, twilio: None, allowed_countries: vec!["GB".into()] }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self { profile: Profile::Seed }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { idle_timeout: Span::minutes(30), absolute_timeout: Span::hours(12) }
    }
}

impl Default for HelpdeskConfig {
    fn default() -> Self {
        Self {
            name: "Usher helpdesk".into(),
            email: "helpdesk@usher.localhost".into(),
            phone: "020 7946 0000".into(),
            hours: "Monday to Friday, 8am to 6pm".into(),
        }
    }
}

/// A URL with any user name and password replaced by `…`, for messages and `configtest`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => format!("{}://…{}", &url[..start], &url[at..]),
        _ => url.to_owned(),
    }
}

fn serialize_redacted_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

/// A setting that is wrong, named so the operator knows what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

fn bad(setting: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError { setting: setting.into(), problem: problem.into() }
}

impl Config {
    /// Checks what serde cannot. Returns the first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check(true)
    }

    /// As [`Config::validate`], but a password hashing cost below S1's floor is let through:
    /// only for benchmarks (`USHER_ALLOW_BENCHMARK_HASHING=1`), never for real work.
    pub fn validate_for_benchmark(&self) -> Result<(), ConfigError> {
        self.check(false)
    }

    fn check(&self, hash_floor: bool) -> Result<(), ConfigError> {
        if self.service_name.trim().is_empty() {
            return Err(bad("service_name", "must not be empty"));
        }
        let base = self.public_base_url.trim_end_matches('/');
        let scheme_ok = base.starts_with("https://") || base.starts_with("http://");
        if !scheme_ok || base.contains(['?', '#', ' ']) || base.split("://").nth(1).is_none_or(str::is_empty) {
            return Err(bad(
                "public_base_url",
                "must be an http:// or https:// address such as https://signin.example.org",
            ));
        }
        self.listen_addr()?;
        self.management_addr()?;
        if !self.database_url.is_empty() && usher_store::Engine::from_url(&self.database_url).is_none() {
            return Err(bad("database_url", "must start with sqlite: or postgres://"));
        }
        if self.database_max_connections == 0 {
            return Err(bad("database_max_connections", "must be at least 1"));
        }
        EmailAddress::parse(&self.email.sender_address).map_err(|m| bad("email.sender_address", m))?;
        if self.email.sender_name.trim().is_empty() || self.email.sender_name.contains(['<', '>', '"', '\r', '\n']) {
            return Err(bad("email.sender_name", "must be a plain name without < > or quotes"));
        }
        match self.email.provider {
            EmailProviderKind::Smtp if self.email.smtp.is_none() => {
                return Err(bad(
                    "email.smtp",
                    "email.provider is smtp, so set email.smtp.host (and port, tls, username, password)",
                ));
            }
            EmailProviderKind::Notify if self.email.notify.is_none() => {
                return Err(bad(
                    "email.notify",
                    "email.provider is notify, so set email.notify.api_key and the template IDs",
                ));
            }
            _ => {}
        }
        if self.uses_dev_providers() && !self.dev_mailbox_is_private() && !self.insecure_dev_mailbox_on_public_url {
            return Err(bad(
                "email.provider",
                "the dev mailbox shows every code and link to anyone, so it runs only on a localhost public_base_url \
                 and a loopback listen address: choose real providers (email.provider, sms.provider), or set \
                 insecure_dev_mailbox_on_public_url = true for a throwaway test server",
            ));
        }
        let l = &self.lifecycle;
        if l.deregister_after.seconds() <= 0 || l.delete_after.seconds() <= 0 || l.run_every.seconds() <= 0 {
            return Err(bad("lifecycle", "deregister_after, delete_after and run_every must be longer than nothing"));
        }
        if l.reminders.iter().any(|r| r.seconds() <= 0 || r.seconds() >= l.deregister_after.seconds()) {
            return Err(bad("lifecycle.reminders", "each reminder must come before deregistration, such as 14d,3d"));
        }
        if self.sms.allowed_countries.iter().any(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(bad("sms.allowed_countries", "must list two-letter country codes in capitals, such as GB"));
        }
        match self.sms.provider {
            SmsProviderKind::Notify if self.sms.notify.is_none() => {
                return Err(bad(
                    "sms.notify",
                    "sms.provider is notify, so set sms.notify.api_key and the template IDs",
                ));
            }
            SmsProviderKind::Twilio if self.sms.twilio.is_none() => {
                return Err(bad(
                    "sms.twilio",
                    "sms.provider is twilio, so set sms.twilio.account_sid, auth_token and from",
                ));
            }
            _ => {}
        }
        if self.sessions.idle_timeout.seconds() < 60 || self.sessions.absolute_timeout < self.sessions.idle_timeout {
            return Err(bad("sessions", "idle_timeout must be at least 1m and no longer than absolute_timeout"));
        }
        let hashing =
            if hash_floor { self.password_hashing.validate() } else { self.password_hashing.validate_params() };
        hashing.map_err(|m| bad("password_hashing", m))?;
        if let Some(bad_ip) = self.trusted_proxies.iter().find(|p| p.parse::<std::net::IpAddr>().is_err()) {
            return Err(bad("trusted_proxies", format!("'{bad_ip}' is not an IP address")));
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen
            .parse()
            .map_err(|_| bad("listen", format!("'{}' is not an address and port such as 127.0.0.1:8080", self.listen)))
    }

    /// The deployment's second-factor rules, which organisations may only tighten.
    pub fn second_factor_policy(&self) -> usher_domain::policy::SecondFactorPolicy {
        usher_domain::policy::SecondFactorPolicy { required: self.mfa.required, email_codes: self.mfa.email_codes }
    }

    /// The management listener's address, if there is one.
    pub fn management_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        match self.management_listen.trim() {
            "" => Ok(None),
            text => text.parse().map(Some).map_err(|_| {
                bad(
                    "management_listen",
                    format!("'{text}' is not an address and port such as 127.0.0.1:9000 (or empty for none)"),
                )
            }),
        }
    }

    /// True when email or texts go to the dev mailbox instead of being delivered.
    pub fn uses_dev_providers(&self) -> bool {
        self.email.provider == EmailProviderKind::Dev || self.sms.provider == SmsProviderKind::Dev
    }

    /// True when only this machine can reach the dev mailbox: the public address is loopback and
    /// so is the address listened on (a localhost base URL on 0.0.0.0 still serves the network).
    pub fn dev_mailbox_is_private(&self) -> bool {
        self.base_url_is_loopback() && self.listen_addr().is_ok_and(|a| a.ip().is_loopback())
    }

    /// True when the public address is this machine only: localhost (or a name under it),
    /// 127.0.0.0/8 or [::1].
    pub fn base_url_is_loopback(&self) -> bool {
        let rest = self.base_url().split_once("://").map_or("", |(_, rest)| rest);
        let authority = rest.split('/').next().unwrap_or("");
        let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        let host = if let Some(v6) = authority.strip_prefix('[') {
            v6.split(']').next().unwrap_or("")
        } else {
            authority.split(':').next().unwrap_or("")
        };
        let host = host.to_ascii_lowercase();
        host == "localhost"
            || host.ends_with(".localhost")
            || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.public_base_url.trim_end_matches('/')
    }

    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}?mode=rwc", self.data_dir.join("usher.db").display())
        } else {
            self.database_url.clone()
        }
    }

    pub fn effective_secret_key_file(&self) -> PathBuf {
        if self.secret_key_file.is_empty() {
            self.data_dir.join("secret.key")
        } else {
            PathBuf::from(&self.secret_key_file)
        }
    }

    pub fn hashing_threads(&self) -> usize {
        if self.hashing_threads == 0 {
            std::thread::available_parallelism().map_or(2, usize::from)
        } else {
            self.hashing_threads
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    /// Defect: with the default dev providers, a public address let anyone read every code.
    #[test]
    fn the_dev_mailbox_runs_only_on_this_machine_unless_loudly_allowed() {
        for local in ["http://localhost:8080", "http://127.0.0.1:9", "http://[::1]:8080/", "http://app.localhost"] {
            let c = Config { public_base_url: local.into(), ..Config::default() };
            assert!(c.base_url_is_loopback(), "{local}");
            c.validate().unwrap();
        }
        for public in [
            "https://signin.example.org",
            "http://10.0.0.5:8080",
            "http://localhost.example.org",
            "http://localhost@evil.example",
        ] {
            let mut c = Config { public_base_url: public.into(), ..Config::default() };
            assert!(!c.base_url_is_loopback(), "{public}");
            let e = c.validate().unwrap_err();
            assert_eq!(e.setting, "email.provider", "{public}");
            assert!(e.problem.contains("insecure_dev_mailbox_on_public_url"), "{e}");
            c.insecure_dev_mailbox_on_public_url = true;
            c.validate().unwrap();
        }
        // Found in review: a localhost base URL listened for on every interface still serves the network.
        for open in ["0.0.0.0:8080", "[::]:8080", "10.0.0.5:8080"] {
            let mut c = Config { listen: open.into(), ..Config::default() };
            assert!(c.base_url_is_loopback() && !c.dev_mailbox_is_private(), "{open}");
            let e = c.validate().unwrap_err();
            assert_eq!(e.setting, "email.provider", "{open}");
            assert!(e.problem.contains("loopback listen address"), "{e}");
            c.insecure_dev_mailbox_on_public_url = true;
            c.validate().unwrap();
        }
    }

    #[test]
    fn each_bad_setting_is_named() {
        type Change = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|c| c.public_base_url = "ftp://x".into()), "public_base_url"),
            (Box::new(|c| c.listen = "nowhere".into()), "listen"),
            (Box::new(|c| c.database_url = "mysql://x".into()), "database_url"),
            (Box::new(|c| c.email.sender_address = "not an address".into()), "email.sender_address"),
            (Box::new(|c| c.email.provider = EmailProviderKind::Smtp), "email.smtp"),
            (Box::new(|c| c.sms.provider = SmsProviderKind::Twilio), "sms.twilio"),
            (Box::new(|c| c.sessions.idle_timeout = Span::days(2)), "sessions"),
            (Box::new(|c| c.password_hashing.iterations = 1), "password_hashing"),
        ];
        for (change, setting) in cases {
            let mut c = Config::default();
            change(&mut c);
            assert_eq!(c.validate().unwrap_err().setting, setting);
        }
    }
}
