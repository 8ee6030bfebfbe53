//! Messages Usher sends. The application writes them to the outbox in the same transaction as
//! the change that causes them; the delivery worker sends them later.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    /// A back-channel logout token to a service's logout address (the recipient).
    Logout,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Logout => "logout",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "email" => Some(Self::Email),
            "sms" => Some(Self::Sms),
            "logout" => Some(Self::Logout),
            _ => None,
        }
    }
}

/// One email or text message, fully rendered. `expires_at` is set when the message carries a
/// code or link that stops working then: such a message is dropped rather than sent late.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    pub channel: Channel,
    /// What kind of message this is (`operator_setup`, `activation`...), for logs and metrics.
    pub purpose: String,
    /// An email address or an E.164 phone number.
    pub recipient: String,
    /// Email subject; empty for SMS.
    pub subject: String,
    pub body: String,
    pub expires_at: Option<Timestamp>,
}

impl std::fmt::Debug for OutgoingMessage {
    // The body may hold a code or a one-time link: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMessage")
            .field("channel", &self.channel)
            .field("purpose", &self.purpose)
            .field("recipient", &self.recipient)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
