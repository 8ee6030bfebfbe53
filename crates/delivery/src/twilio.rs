//! Twilio: text messages through the Programmable Messaging API.
//!
//! `POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP basic auth with the
//! account SID and auth token, a form with `To`, `Body` and either `From` (an E.164 number) or
//! `MessagingServiceSid` (a Messaging Service, `MG...`).

use std::fmt;

use usher_domain::ids::MessageId;
use usher_domain::message::{Channel, OutgoingMessage};
use usher_domain::secret::SecretString;

use crate::notify::http::{classify_status, request_error, response_error_text, trimmed_base_url};
use crate::{Provider, SendError, SendFuture};

pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// The `twilio` section of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// `AC...`
    pub account_sid: String,
    pub auth_token: SecretString,
    /// An E.164 number (`+447700900123`) or a Messaging Service SID (`MG...`).
    pub from: String,
    #[serde(default = "default_base_url")]
    pub base_url: String,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

pub struct TwilioProvider {
    client: reqwest::Client,
    messages_url: String,
    account_sid: String,
    auth_token: SecretString,
    from: From,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum From {
    Number(String),
    MessagingService(String),
}

impl fmt::Debug for TwilioProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioProvider")
            .field("messages_url", &self.messages_url)
            .field("account_sid", &self.account_sid)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl TwilioProvider {
    pub fn new(config: TwilioConfig, client: reqwest::Client) -> Result<Self, String> {
        let account_sid = config.account_sid.trim();
        if !is_sid(account_sid, "AC") {
            return Err(
                "twilio.account_sid must be a Twilio account SID: AC followed by 32 letters or digits".to_owned()
            );
        }
        if config.auth_token.expose().trim().is_empty() {
            return Err("twilio.auth_token must not be empty".to_owned());
        }
        let from = config.from.trim();
        let from = if from.starts_with("MG") {
            if !is_sid(from, "MG") {
                return Err("twilio.from: a Messaging Service SID is MG followed by 32 letters or digits".to_owned());
            }
            From::MessagingService(from.to_owned())
        } else if is_e164(from) {
            From::Number(from.to_owned())
        } else {
            return Err(
                "twilio.from must be a phone number in E.164 form (+447700900123) or a Messaging Service SID (MG...)"
                    .to_owned(),
            );
        };
        let base_url = trimmed_base_url(&config.base_url, "twilio.base_url")?;
        Ok(Self {
            client,
            messages_url: format!("{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json"),
            account_sid: account_sid.to_owned(),
            auth_token: SecretString::new(config.auth_token.expose().trim()),
            from,
        })
    }

    async fn send_sms(&self, message: &OutgoingMessage) -> Result<(), SendError> {
        let from = match &self.from {
            From::Number(number) => ("From", number.as_str()),
            From::MessagingService(sid) => ("MessagingServiceSid", sid.as_str()),
        };
        let form = [("To", message.recipient.as_str()), ("Body", message.body.as_str()), from];
        let response = self
            .client
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .form(&form)
            .send()
            .await
            .map_err(|e| request_error("Twilio", e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let detail = response_error_text(response, twilio_error_message).await;
        Err(classify_status("Twilio", status, &detail))
    }
}

impl Provider for TwilioProvider {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn send<'a>(&'a self, _id: &'a MessageId, message: &'a OutgoingMessage) -> SendFuture<'a> {
        Box::pin(async move {
            match message.channel {
                Channel::Sms => self.send_sms(message).await,
                Channel::Email | Channel::Logout => {
                    Err(SendError::Permanent("the twilio provider sends only text messages".to_owned()))
                }
            }
        })
    }
}

/// `prefix` followed by 32 ASCII letters or digits.
fn is_sid(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `+` and 2 to 15 digits, the first not 0.
fn is_e164(text: &str) -> bool {
    text.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
    })
}

/// Twilio's errors: `{"code": 21211, "message": "...", "more_info": "...", "status": 400}`.
fn twilio_error_message(body: &serde_json::Value) -> Option<String> {
    let code = body.get("code").and_then(|v| v.as_i64());
    let message = body.get("message").and_then(|v| v.as_str());
    match (code, message) {
        (Some(c), Some(m)) => Some(format!("error {c}: {m}")),
        (Some(c), None) => Some(format!("error {c}")),
        (None, Some(m)) => Some(m.to_owned()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "s3cr3t-auth-token";

    fn config(from: &str) -> TwilioConfig {
        TwilioConfig {
            account_sid: SID.to_owned(),
            auth_token: SecretString::new(TOKEN),
            from: from.to_owned(),
            base_url: DEFAULT_BASE_URL.to_owned(),
        }
    }

    #[test]
    fn from_is_a_number_or_a_messaging_service() {
        let p = TwilioProvider::new(config("+447700900123"), reqwest::Client::new()).unwrap();
        assert_eq!(p.from, From::Number("+447700900123".to_owned()));
        assert_eq!(p.messages_url, format!("https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"));
        let mg = "MG0123456789abcdef0123456789abcdef";
        let p = TwilioProvider::new(config(mg), reqwest::Client::new()).unwrap();
        assert_eq!(p.from, From::MessagingService(mg.to_owned()));
        for bad in ["", "447700900123", "+0123", "+44 7700 900123", "MG123", "Usher"] {
            let err = TwilioProvider::new(config(bad), reqwest::Client::new()).err();
            assert!(err.as_deref().is_some_and(|e| e.starts_with("twilio.from")), "{bad:?} gave {err:?}");
        }
    }

    #[test]
    fn bad_account_settings_are_refused_by_name() {
        let mut c = config("+447700900123");
        c.account_sid = "AC/../..".to_owned();
        assert!(TwilioProvider::new(c, reqwest::Client::new()).unwrap_err().starts_with("twilio.account_sid"));
        let mut c = config("+447700900123");
        c.auth_token = SecretString::new(" ");
        assert!(TwilioProvider::new(c, reqwest::Client::new()).unwrap_err().starts_with("twilio.auth_token"));
        let mut c = config("+447700900123");
        c.base_url = "ftp://example.com".to_owned();
        assert!(TwilioProvider::new(c, reqwest::Client::new()).unwrap_err().starts_with("twilio.base_url"));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let p = TwilioProvider::new(config("+447700900123"), reqwest::Client::new()).unwrap();
        let shown = format!("{p:?} {:?}", config("+447700900123"));
        assert!(shown.contains(SID) && !shown.contains(TOKEN), "{shown}");
        assert_eq!(p.name(), "twilio");
    }

    #[test]
    fn config_defaults_and_refuses_unknown_fields() {
        let c: TwilioConfig = serde_json::from_value(serde_json::json!({
            "account_sid": SID, "auth_token": TOKEN, "from": "+447700900123"
        }))
        .unwrap();
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert!(
            serde_json::from_value::<TwilioConfig>(serde_json::json!({
                "account_sid": SID, "auth_token": TOKEN, "from": "+447700900123", "to": "x"
            }))
            .is_err()
        );
    }

    #[test]
    fn twilio_errors_are_summarised() {
        let body = serde_json::json!({"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400});
        assert_eq!(twilio_error_message(&body).as_deref(), Some("error 21211: Invalid 'To' Phone Number"));
        assert_eq!(twilio_error_message(&serde_json::json!([])), None);
    }
}
