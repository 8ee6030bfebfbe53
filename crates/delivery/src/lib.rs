//! Delivery: the outbox worker and the providers that carry messages out.
//!
//! Providers sit behind [`Provider`]. Each message is claimed from the outbox with a lease,
//! handed to the provider for its channel, and its outcome recorded. A message whose code or
//! link has expired is dropped, never sent late. Transient failures are retried with
//! exponential backoff; permanent ones fail at once.

pub mod dev;
pub mod notify;
pub mod smtp;
mod smtp_connections;
pub mod twilio;
mod worker;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use usher_domain::ids::MessageId;
use usher_domain::message::OutgoingMessage;

pub use worker::{Channels, DeliveryPolicy, Outcome, deliver_due};

/// Why a provider could not send a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (network trouble, rate limiting, a 5xx answer).
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Will never work as it is (bad credentials, invalid recipient, a 4xx answer).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// Carries a rendered message to its recipient.
pub trait Provider: Send + Sync + fmt::Debug {
    /// A short name for logs and the outbox record (`smtp`, `notify`, `twilio`, `dev`).
    fn name(&self) -> &'static str;

    /// True for the dev mailbox, which keeps message bodies so people can read them.
    fn keeps_messages(&self) -> bool {
        false
    }

    /// Sends one outbox message. `id` is the outbox message's ID: the same on every attempt,
    /// so a provider can label the message with it (SMTP's Message-ID) and a receiver can tell
    /// a repeat from a new message.
    fn send<'a>(&'a self, id: &'a MessageId, message: &'a OutgoingMessage) -> SendFuture<'a>;
}

/// The one sender every email comes from: `Name <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub name: String,
    pub address: String,
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <{}>", self.name, self.address)
    }
}
