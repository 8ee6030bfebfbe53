//! The delivery worker inside `usher serve`: builds the configured providers and delivers due
//! outbox messages on a short interval, reading the clock once per pass.

use std::sync::Arc;
use std::time::Duration;

use usher_delivery::dev::DevMailbox;
use usher_delivery::notify::NotifyProvider;
use usher_delivery::smtp::SmtpProvider;
use usher_delivery::twilio::TwilioProvider;
use usher_delivery::{DeliveryPolicy, Outcome, Provider, Sender, deliver_due};
use usher_domain::Error;

use crate::config::{Config, ConfigError, EmailProviderKind, SmsProviderKind};
use crate::{App, clock, store_error};

/// The providers for each channel.
#[derive(Debug, Clone)]
pub struct Providers {
    pub email: Arc<dyn Provider>,
    pub sms: Arc<dyn Provider>,
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
        Ok(Self { email, sms })
    }
}

impl App {
    /// One delivery pass at the current moment.
    pub async fn deliver_outbox(&self, providers: &Providers, policy: &DeliveryPolicy) -> Result<Outcome, Error> {
        let now = self.clock.now().await?;
        deliver_due(&self.store, providers.email.as_ref(), providers.sms.as_ref(), policy, now)
            .await
            .map_err(store_error)
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
