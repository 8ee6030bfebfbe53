//! The delivery worker inside `usher serve`: builds the configured providers and delivers due
//! outbox messages on a short interval, reading the clock once per pass.

use std::sync::Arc;
use std::time::Duration;

use usher_delivery::dev::DevMailbox;
use usher_delivery::notify::NotifyProvider;
use usher_delivery::smtp::SmtpProvider;
use usher_delivery::twilio::TwilioProvider;
use usher_delivery::{Channels, DeliveryPolicy, Outcome, Provider, Sender, deliver_due};
use usher_domain::Error;
use usher_store::OutboxMessage;

use crate::config::{Config, ConfigError, EmailProviderKind, SmsProviderKind};
use crate::{App, clock, store_error};

/// The providers for each channel.
#[derive(Debug, Clone)]
pub struct Providers {
    pub email: Arc<dyn Provider>,
    pub sms: Arc<dyn Provider>,
    /// Back-channel logout tokens to services (set by [`Providers::with_logout`]; until then
    /// they fail at once).
    pub logout: Arc<dyn Provider>,
}

fn bad(setting: &str, problem: String) -> ConfigError {
    ConfigError { setting: setting.into(), problem }
}

impl Providers {
    /// Builds the providers the configuration names. `print_dev` prints dev-mailbox messages.
    pub fn from_config(config: &Config, print_dev: bool) -> Result<Self, ConfigError> {
        let sender = Sender { name: config.email.sender_name.clone(), address: config.email.sender_address.clone() };
        let dev = Arc::new(DevMailbox::new(sender.clone(), print_dev));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| bad("email", format!("cannot start the HTTP client: {e}")))?;
        let unix_now: Arc<dyn Fn() -> i64 + Send + Sync> = Arc::new(|| clock::system_now().unix());
        let email: Arc<dyn Provider> = match (config.email.provider, &config.email.smtp, &config.email.notify) {
            (EmailProviderKind::Smtp, Some(smtp), _) => {
                Arc::new(SmtpProvider::new(smtp.clone(), sender).map_err(|e| bad("email.smtp", e))?)
            }
            (EmailProviderKind::Notify, _, Some(notify)) => Arc::new(
                NotifyProvider::new(notify.clone(), http.clone(), unix_now.clone())
                    .map_err(|e| bad("email.notify", e))?,
            ),
            _ => dev.clone(),
        };
        let sms: Arc<dyn Provider> = match (config.sms.provider, &config.sms.notify, &config.sms.twilio) {
            (SmsProviderKind::Notify, Some(notify), _) => {
                Arc::new(NotifyProvider::new(notify.clone(), http.clone(), unix_now).map_err(|e| bad("sms.notify", e))?)
            }
            (SmsProviderKind::Twilio, _, Some(twilio)) => {
                Arc::new(TwilioProvider::new(twilio.clone(), http).map_err(|e| bad("sms.twilio", e))?)
            }
            _ => dev,
        };
        Ok(Self { email, sms, logout: Arc::new(NoLogout) })
    }

    /// The same providers, sending logout tokens as `app` (which signs them).
    pub fn with_logout(self, app: &App) -> Result<Self, Error> {
        Ok(Self { logout: Arc::new(crate::oidc::logout::LogoutSender::new(app.clone())?), ..self })
    }
}

/// Refuses logout tokens: for providers built before the application.
#[derive(Debug)]
struct NoLogout;

impl Provider for NoLogout {
    fn name(&self) -> &'static str {
        "none"
    }

    fn send<'a>(
        &'a self,
        _id: &'a usher_domain::ids::MessageId,
        _message: &'a usher_domain::message::OutgoingMessage,
    ) -> usher_delivery::SendFuture<'a> {
        Box::pin(async {
            Err(usher_delivery::SendError::Permanent("this process was not set up to send logout tokens".into()))
        })
    }
}

impl App {
    /// One delivery pass at the current moment.
    pub async fn deliver_outbox(&self, providers: &Providers, policy: &DeliveryPolicy) -> Result<Outcome, Error> {
        let now = self.clock.now().await?;
        let channels = Channels {
            email: providers.email.as_ref(),
            sms: providers.sms.as_ref(),
            logout: providers.logout.as_ref(),
        };
        deliver_due(&self.store, &self.secret_key, channels, policy, now).await.map_err(store_error)
    }

    /// The newest outbox messages first, bodies opened, for `usher outbox list`.
    pub async fn outbox_messages(&self, limit: i64) -> Result<Vec<OutboxMessage>, Error> {
        let messages = self.store.recent_messages(limit).await.map_err(store_error)?;
        Ok(messages.into_iter().map(|m| self.opened(m)).collect())
    }

    /// What the dev mailbox delivered and kept, newest first, bodies opened, for its page.
    pub async fn dev_mailbox_messages(&self, limit: i64) -> Result<Vec<OutboxMessage>, Error> {
        let messages = self.store.dev_mailbox_messages(limit).await.map_err(store_error)?;
        Ok(messages.into_iter().map(|m| self.opened(m)).collect())
    }

    /// How many messages are still waiting in the outbox to be delivered.
    pub async fn pending_messages(&self) -> Result<i64, Error> {
        self.store.pending_messages().await.map_err(store_error)
    }

    /// A body that cannot be opened is shown as such, never as its sealed text.
    fn opened(&self, m: OutboxMessage) -> OutboxMessage {
        let id = m.id.clone();
        m.clone().opened(&self.secret_key).unwrap_or_else(|e| {
            tracing::warn!(message_id = %id, error = %e, "outbox body could not be opened");
            let mut shown = m;
            shown.message.body = format!("[sealed; {e}]");
            shown.body_sealed = false;
            shown
        })
    }

    /// Seals every outbox body stored before sealing began (rows from before migration 8);
    /// returns how many. Run at `usher migrate` and at start, where the key is at hand.
    pub async fn seal_plain_outbox_bodies(&self) -> Result<u64, Error> {
        let mut total = 0;
        loop {
            let sealed = self.store.seal_plain_outbox_bodies(&self.secret_key, 500).await.map_err(store_error)?;
            total += sealed;
            if sealed == 0 {
                return Ok(total);
            }
        }
    }

    /// Seals again under the current key every kept outbox body sealed under an older key, after
    /// a rotation (`usher keys reencrypt`). Returns how many were sealed again and how many no
    /// configured key opens.
    pub async fn reseal_outbox_bodies(&self) -> Result<(u64, u64), Error> {
        let (mut resealed, mut unopenable, mut after) = (0, 0, String::new());
        loop {
            let (done, closed, last) =
                self.store.reseal_stale_outbox_bodies(&self.secret_key, &after, 500).await.map_err(store_error)?;
            resealed += done;
            unopenable += closed;
            match last {
                Some(id) => after = id,
                None => return Ok((resealed, unopenable)),
            }
        }
    }

    /// Runs delivery passes until the process ends. Errors are logged and the loop goes on.
    pub async fn run_delivery_worker(self, providers: Providers, policy: DeliveryPolicy, interval: Duration) {
        loop {
            match self.deliver_outbox(&providers, &policy).await {
                // Something was handled: look for the next message at once.
                Ok(outcome) if outcome != Outcome::default() => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "delivery pass failed"),
            }
            tokio::time::sleep(interval).await;
        }
    }
}
