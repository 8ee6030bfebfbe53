//! SMTP: plain-text email through any mail server, over STARTTLS (the default), implicit TLS,
//! or, only for a local test server, no TLS at all.

use std::fmt;
use std::time::Duration;

use lettre::Address;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use serde::Deserialize;
use usher_domain::ids::MessageId;
use usher_domain::message::{Channel, OutgoingMessage};
use usher_domain::secret::SecretString;

use crate::smtp_connections::Connections;
use crate::{Provider, SendError, SendFuture, Sender};

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Connect in the clear and require an upgrade with STARTTLS (usually port 587).
    #[default]
    StartTls,
    /// Implicit TLS from the first byte (usually port 465).
    Tls,
    /// No encryption at all: only for a mail server on the same machine, in tests.
    None,
}

impl SmtpTls {
    /// The usual port for this kind of connection: 587, 465, or 587 for `none`.
    pub fn default_port(self) -> u16 {
        match self {
            Self::StartTls | Self::None => 587,
            Self::Tls => 465,
        }
    }
}

/// The `smtp` section of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// When unset: 587 for `starttls` and `none`, 465 for `tls` (see [`SmtpConfig::port`]).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    /// For connecting and the server's greeting; the outbox worker bounds a whole send
    /// (`DeliveryPolicy::send_timeout_seconds`).
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Connections kept open to the server and reused, one per message being sent at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_timeout_seconds() -> u64 {
    20
}

fn default_max_connections() -> u32 {
    8
}

impl SmtpConfig {
    /// The port to connect to: the one configured, or the usual one for [`SmtpConfig::tls`].
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }
}

pub struct SmtpProvider {
    connections: Connections,
    from: Mailbox,
    host: String,
    port: u16,
    tls: SmtpTls,
    username: Option<String>,
}

impl fmt::Debug for SmtpProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpProvider")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpProvider {
    /// Checks the configuration and the sender; connects only when a message is sent, and then
    /// keeps up to `max_connections` connections open for the messages after it.
    pub fn new(config: SmtpConfig, sender: Sender) -> Result<Self, String> {
        let host = config.host.trim().to_owned();
        if host.is_empty() {
            return Err("smtp.host must not be empty".to_owned());
        }
        let port = config.port();
        if port == 0 {
            return Err("smtp.port must not be 0".to_owned());
        }
        if config.timeout_seconds == 0 {
            return Err("smtp.timeout_seconds must be at least 1".to_owned());
        }
        if config.max_connections == 0 {
            return Err("smtp.max_connections must be at least 1".to_owned());
        }
        let address: Address =
            sender.address.parse().map_err(|e| format!("the sender address {:?} is not valid: {e}", sender.address))?;
        let name = sender.name.trim();
        let from = Mailbox::new((!name.is_empty()).then(|| name.to_owned()), address);

        let username = config.username.filter(|u| !u.is_empty());
        let credentials = match (&username, config.password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.expose().to_owned())),
            (Some(_), None) => return Err("smtp.password is required when smtp.username is set".to_owned()),
            (None, Some(_)) => return Err("smtp.username is required when smtp.password is set".to_owned()),
            (None, None) => None,
        };
        let connections = Connections::new(
            host.clone(),
            port,
            config.tls,
            Duration::from_secs(config.timeout_seconds),
            credentials,
            config.max_connections,
        )?;
        Ok(Self { connections, from, host, port, tls: config.tls, username })
    }

    /// `<outbox-id@sender-domain>`: the same on every attempt and from every server, so a
    /// receiver (and our own sink) can drop the second copy when a send is repeated after a
    /// crash; unique, as outbox IDs are; at a domain we speak for rather than this machine.
    pub fn message_id(&self, id: &MessageId) -> String {
        format!("<{id}@{}>", self.from.email.domain())
    }

    fn build(&self, id: &MessageId, message: &OutgoingMessage) -> Result<Message, SendError> {
        let to: Mailbox = message
            .recipient
            .parse()
            .map_err(|e| SendError::Permanent(format!("the recipient address is not valid: {e}")))?;
        Message::builder()
            .message_id(Some(self.message_id(id)))
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(message.body.clone())
            .map_err(|e| SendError::Permanent(format!("could not build the email: {e}")))
    }
}

impl Provider for SmtpProvider {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn send<'a>(&'a self, id: &'a MessageId, message: &'a OutgoingMessage) -> SendFuture<'a> {
        Box::pin(async move {
            if message.channel != Channel::Email {
                return Err(SendError::Permanent("the smtp provider sends only email, not text messages".to_owned()));
            }
            let email = self.build(id, message)?;
            self.connections.send(email.envelope(), &email.formatted()).await
        })
    }
}

/// A 5xx answer will never change; anything else (no connection, a timeout, TLS trouble, a 4xx
/// answer) may.
pub(crate) fn smtp_error(host: &str, port: u16, error: &lettre::transport::smtp::Error) -> SendError {
    use std::error::Error as _;
    let mut text = format!("SMTP {host}:{port}: {error}");
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    if error.is_permanent() { SendError::Permanent(text) } else { SendError::Transient(text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> Sender {
        Sender { name: "Usher".to_owned(), address: "no-reply@example.com".to_owned() }
    }

    fn config() -> SmtpConfig {
        SmtpConfig {
            host: "smtp.example.com".to_owned(),
            port: None,
            tls: SmtpTls::StartTls,
            username: Some("usher".to_owned()),
            password: Some(SecretString::new("hunter2-smtp")),
            timeout_seconds: 20,
            max_connections: 8,
        }
    }

    #[test]
    fn config_has_defaults_and_refuses_unknown_fields() {
        let c: SmtpConfig = serde_json::from_value(serde_json::json!({"host": "mail.example.com"})).unwrap();
        assert_eq!(
            (c.port(), c.tls, c.timeout_seconds, c.max_connections, c.username, c.password),
            (587, SmtpTls::StartTls, 20, 8, None, None)
        );
        let c: SmtpConfig = serde_json::from_value(serde_json::json!({"host": "h", "tls": "tls"})).unwrap();
        assert_eq!(c.port(), 465);
        let c: SmtpConfig =
            serde_json::from_value(serde_json::json!({"host": "h", "tls": "none", "port": 2525})).unwrap();
        assert_eq!((c.port(), c.tls), (2525, SmtpTls::None));
        let c: SmtpConfig = serde_json::from_value(serde_json::json!({"host": "h", "tls": "starttls"})).unwrap();
        assert_eq!(c.tls, SmtpTls::StartTls);
        assert!(serde_json::from_value::<SmtpConfig>(serde_json::json!({"host": "h", "tls": "ssl"})).is_err());
        assert!(serde_json::from_value::<SmtpConfig>(serde_json::json!({"host": "h", "user": "x"})).is_err());
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let mut c = config();
        c.password = None;
        assert!(SmtpProvider::new(c, sender()).unwrap_err().starts_with("smtp.password"));
        let mut c = config();
        c.username = None;
        assert!(SmtpProvider::new(c, sender()).unwrap_err().starts_with("smtp.username"));
        let mut c = config();
        c.host = " ".to_owned();
        assert!(SmtpProvider::new(c, sender()).unwrap_err().starts_with("smtp.host"));
        let bad_sender = Sender { name: "Usher".to_owned(), address: "not an address".to_owned() };
        assert!(SmtpProvider::new(config(), bad_sender).unwrap_err().contains("sender address"));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let p = SmtpProvider::new(config(), sender()).unwrap();
        let shown = format!("{p:?} {:?}", config());
        assert!(shown.contains("smtp.example.com") && !shown.contains("hunter2-smtp"), "{shown}");
        assert_eq!(p.name(), "smtp");
    }

    #[tokio::test]
    async fn text_messages_and_bad_recipients_are_refused_without_connecting() {
        let p = SmtpProvider::new(config(), sender()).unwrap();
        let id = MessageId::generate();
        let mut m = OutgoingMessage {
            channel: Channel::Sms,
            purpose: "test".to_owned(),
            recipient: "+447700900123".to_owned(),
            subject: String::new(),
            body: "123456".to_owned(),
            expires_at: None,
        };
        assert!(matches!(p.send(&id, &m).await, Err(SendError::Permanent(_))));
        m.channel = Channel::Email;
        m.recipient = "not an address".to_owned();
        assert!(matches!(p.send(&id, &m).await, Err(SendError::Permanent(_))));
    }
}
