//! GOV.UK Notify: email and text messages through Notify's v2 API.
//!
//! Our Notify templates are generic: the email template is `((subject))` / `((body))` and the
//! text message template is `((body))`, so the message is rendered by Usher and only passed
//! through as personalisation.
//!
//! Each request carries a fresh JWT (HS256, claims `iss` = service id, `iat` = now in unix
//! seconds) signed with the secret half of the API key. The clock is injected: this crate does
//! not read the wall clock.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use usher_domain::ids::MessageId;
use usher_domain::message::{Channel, OutgoingMessage};
use usher_domain::secret::SecretString;

use self::http::{classify_status, request_error, response_error_text, trimmed_base_url};
use crate::{Provider, SendError, SendFuture};

pub const DEFAULT_BASE_URL: &str = "https://api.notifications.service.gov.uk";

/// The `notify` section of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// `{key_name}-{service_id}-{secret_key}`, as Notify shows it when the key is created.
    pub api_key: SecretString,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The generic email template: `((subject))` and `((body))`.
    pub email_template_id: String,
    /// The generic text message template: `((body))`.
    pub sms_template_id: String,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

/// Returns the current time in unix seconds. Injected so this crate never reads the clock.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub struct NotifyProvider {
    client: reqwest::Client,
    base_url: String,
    service_id: String,
    secret_key: SecretString,
    email_template_id: String,
    sms_template_id: String,
    now: Clock,
}

impl fmt::Debug for NotifyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyProvider")
            .field("base_url", &self.base_url)
            .field("service_id", &self.service_id)
            .field("email_template_id", &self.email_template_id)
            .field("sms_template_id", &self.sms_template_id)
            .finish_non_exhaustive()
    }
}

impl NotifyProvider {
    /// Checks the configuration; `now` gives the current unix time for each request's token.
    pub fn new(config: NotifyConfig, client: reqwest::Client, now: Clock) -> Result<Self, String> {
        let (service_id, secret_key) = split_api_key(config.api_key.expose())?;
        let base_url = trimmed_base_url(&config.base_url, "notify.base_url")?;
        for (field, value) in [
            ("notify.email_template_id", &config.email_template_id),
            ("notify.sms_template_id", &config.sms_template_id),
        ] {
            if !is_uuid(value) {
                return Err(format!("{field} must be a Notify template id (a UUID such as 0f1e2d3c-...-...)"));
            }
        }
        Ok(Self {
            client,
            base_url,
            service_id: service_id.to_owned(),
            secret_key: SecretString::new(secret_key),
            email_template_id: config.email_template_id,
            sms_template_id: config.sms_template_id,
            now,
        })
    }

    /// A signed JWT for one request, issued at `iat` (unix seconds).
    fn token(&self, iat: i64) -> Result<String, SendError> {
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            iat: i64,
        }
        const HEADER: &str = r#"{"typ":"JWT","alg":"HS256"}"#;
        let claims = serde_json::to_vec(&Claims { iss: &self.service_id, iat })
            .map_err(|e| SendError::Permanent(format!("could not encode the Notify token: {e}")))?;
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(HEADER), URL_SAFE_NO_PAD.encode(claims));
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret_key.expose().as_bytes())
            .map_err(|e| SendError::Permanent(format!("could not sign the Notify token: {e}")))?;
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Ok(format!("{signing_input}.{signature}"))
    }

    async fn post(&self, path: &str, body: &serde_json::Value) -> Result<(), SendError> {
        let token = self.token((self.now)())?;
        let response = self
            .client
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| request_error("Notify", e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let detail = response_error_text(response, notify_error_message).await;
        Err(classify_status("Notify", status, &detail))
    }
}

impl Provider for NotifyProvider {
    fn name(&self) -> &'static str {
        "notify"
    }

    fn send<'a>(&'a self, _id: &'a MessageId, message: &'a OutgoingMessage) -> SendFuture<'a> {
        Box::pin(async move {
            match message.channel {
                Channel::Email => {
                    let body = serde_json::json!({
                        "email_address": message.recipient,
                        "template_id": self.email_template_id,
                        "personalisation": { "subject": message.subject, "body": message.body },
                    });
                    self.post("/v2/notifications/email", &body).await
                }
                Channel::Sms => {
                    let body = serde_json::json!({
                        "phone_number": message.recipient,
                        "template_id": self.sms_template_id,
                        "personalisation": { "body": message.body },
                    });
                    self.post("/v2/notifications/sms", &body).await
                }
                Channel::Logout => {
                    Err(SendError::Permanent("GOV.UK Notify sends emails and text messages only".to_owned()))
                }
            }
        })
    }
}

/// Splits `{key_name}-{service_id}-{secret_key}` into the service id and the secret key.
fn split_api_key(key: &str) -> Result<(&str, &str), String> {
    const MALFORMED: &str = "notify.api_key is malformed: expected `{key_name}-{service_id}-{secret_key}`, \
         the whole key as Notify shows it (a name followed by two UUIDs)";
    const UUID_LEN: usize = 36;
    let key = key.trim();
    // name, '-', uuid, '-', uuid
    if !key.is_ascii() || key.len() < 1 + 1 + UUID_LEN + 1 + UUID_LEN {
        return Err(MALFORMED.to_owned());
    }
    let secret_start = key.len() - UUID_LEN;
    let service_start = secret_start - 1 - UUID_LEN;
    let (head, secret) = key.split_at(secret_start);
    let (name_and_dash, service_and_dash) = head.split_at(service_start);
    let service = service_and_dash.strip_suffix('-');
    let name = name_and_dash.strip_suffix('-');
    match (name, service) {
        (Some(name), Some(service)) if !name.is_empty() && is_uuid(service) && is_uuid(secret) => Ok((service, secret)),
        _ => Err(MALFORMED.to_owned()),
    }
}

/// 8-4-4-4-12 hexadecimal digits.
fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Notify's errors: `{"status_code": 400, "errors": [{"error": "...", "message": "..."}]}`.
fn notify_error_message(body: &serde_json::Value) -> Option<String> {
    let errors = body.get("errors")?.as_array()?;
    let parts: Vec<String> = errors
        .iter()
        .filter_map(|e| {
            let kind = e.get("error").and_then(|v| v.as_str());
            let message = e.get("message").and_then(|v| v.as_str());
            match (kind, message) {
                (Some(k), Some(m)) => Some(format!("{k}: {m}")),
                (None, Some(m)) => Some(m.to_owned()),
                (Some(k), None) => Some(k.to_owned()),
                (None, None) => None,
            }
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// What the HTTP providers (Notify and Twilio) share: base URLs, and turning failures into
/// [`SendError`]s without ever quoting the message itself.
pub(crate) mod http {
    use std::error::Error as _;

    use crate::SendError;

    /// The most of an error response that is read.
    const MAX_ERROR_BODY: usize = 64 * 1024;
    /// The most of a provider's error message kept in the error text.
    const MAX_DETAIL_CHARS: usize = 300;

    /// An `http` or `https` URL, without a trailing slash, ready for a path to be appended.
    pub(crate) fn trimmed_base_url(url: &str, field: &str) -> Result<String, String> {
        let trimmed = url.trim().trim_end_matches('/');
        match reqwest::Url::parse(trimmed) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() && u.query().is_none() => {
                Ok(trimmed.to_owned())
            }
            Ok(_) => Err(format!("{field} must be an http or https URL without a query, such as https://example.com")),
            Err(e) => Err(format!("{field} is not a valid URL: {e}")),
        }
    }

    /// A request that got no answer: a network failure is worth retrying; a request that could
    /// not even be built never will be.
    pub(crate) fn request_error(service: &str, error: reqwest::Error) -> SendError {
        let error = error.without_url();
        let mut text = format!("{service}: {error}");
        let mut source = error.source();
        while let Some(e) = source {
            text.push_str(&format!(": {e}"));
            source = e.source();
        }
        if error.is_builder() { SendError::Permanent(text) } else { SendError::Transient(text) }
    }

    /// 429 and 5xx are worth retrying; any other refusal is not.
    pub(crate) fn classify_status(service: &str, status: reqwest::StatusCode, detail: &str) -> SendError {
        let text = if detail.is_empty() {
            format!("{service} answered {status}")
        } else {
            format!("{service} answered {status}: {detail}")
        };
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() || !status.is_client_error() {
            SendError::Transient(text)
        } else {
            SendError::Permanent(text)
        }
    }

    /// The provider's own explanation from a JSON error body, as `extract` finds it. Anything
    /// else in the body is left out, so an error text never carries what was sent.
    pub(crate) async fn response_error_text(
        mut response: reqwest::Response,
        extract: fn(&serde_json::Value) -> Option<String>,
    ) -> String {
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ERROR_BODY {
                return String::new();
            }
        }
        let detail = serde_json::from_slice(&body).ok().as_ref().and_then(extract).unwrap_or_default();
        let detail: String = detail.chars().filter(|c| !c.is_control()).take(MAX_DETAIL_CHARS).collect();
        detail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "26785a09-ab16-4eb0-8407-a37497a57506";
    const SECRET: &str = "3d844edf-8d35-48ac-975b-e847b4f122b0";

    fn config(api_key: &str) -> NotifyConfig {
        NotifyConfig {
            api_key: SecretString::new(api_key),
            base_url: DEFAULT_BASE_URL.to_owned(),
            email_template_id: "f33517ff-2a88-4f6e-b855-c550268ce08a".to_owned(),
            sms_template_id: "a1b2c3d4-0000-4000-8000-000000000001".to_owned(),
        }
    }

    #[test]
    fn the_api_key_splits_into_service_and_secret() {
        assert_eq!(split_api_key(&format!("my-test-key-{SERVICE}-{SECRET}")), Ok((SERVICE, SECRET)));
        assert_eq!(split_api_key(&format!("k-{SERVICE}-{SECRET}\n")), Ok((SERVICE, SECRET)));
    }

    #[test]
    fn a_malformed_api_key_is_refused_by_name() {
        for bad in [
            String::new(),
            SECRET.to_owned(),
            format!("{SERVICE}-{SECRET}"),
            format!("-{SERVICE}-{SECRET}"),
            format!("name-{SERVICE}{SECRET}x"),
            format!("name-{SERVICE}-{}", SECRET.replace('-', "x")),
            format!("näme-{SERVICE}-{SECRET}"),
        ] {
            let err = NotifyProvider::new(config(&bad), reqwest::Client::new(), Arc::new(|| 0)).err();
            assert!(err.as_deref().is_some_and(|e| e.contains("notify.api_key")), "{bad:?} gave {err:?}");
            assert!(!err.unwrap_or_default().contains(SECRET));
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let p = NotifyProvider::new(config(&format!("key-{SERVICE}-{SECRET}")), reqwest::Client::new(), Arc::new(|| 0))
            .unwrap();
        let shown = format!("{p:?}");
        assert!(shown.contains(SERVICE) && !shown.contains(SECRET), "{shown}");
        let shown = format!("{:?}", config(&format!("key-{SERVICE}-{SECRET}")));
        assert!(!shown.contains(SECRET), "{shown}");
        assert_eq!(p.name(), "notify");
    }

    #[test]
    fn config_defaults_and_refuses_unknown_fields() {
        let c: NotifyConfig = serde_json::from_value(serde_json::json!({
            "api_key": "k", "email_template_id": "e", "sms_template_id": "s"
        }))
        .unwrap();
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert!(
            serde_json::from_value::<NotifyConfig>(serde_json::json!({
                "api_key": "k", "email_template_id": "e", "sms_template_id": "s", "typo": 1
            }))
            .is_err()
        );
    }

    #[test]
    fn notify_errors_are_summarised() {
        let body = serde_json::json!({"status_code": 400, "errors": [
            {"error": "BadRequestError", "message": "Can't send to this recipient using a team-only API key"},
            {"error": "ValidationError", "message": "phone_number Not a UK mobile number"}
        ]});
        assert_eq!(
            notify_error_message(&body).as_deref(),
            Some(
                "BadRequestError: Can't send to this recipient using a team-only API key; \
                 ValidationError: phone_number Not a UK mobile number"
            )
        );
        assert_eq!(notify_error_message(&serde_json::json!({"nope": 1})), None);
    }
}
