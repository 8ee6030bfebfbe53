//! The dev mailbox: the default provider. It sends nothing anywhere: each message is printed to
//! the console and kept in the outbox table, where the dev mailbox page and `usher outbox list`
//! show it.

use std::io::Write as _;

use usher_domain::ids::MessageId;
use usher_domain::message::{Channel, OutgoingMessage};

use crate::{Provider, SendFuture, Sender};

#[derive(Debug, Clone)]
pub struct DevMailbox {
    sender: Sender,
    /// Print each message to standard output (off in tests).
    print: bool,
}

impl DevMailbox {
    pub fn new(sender: Sender, print: bool) -> Self {
        Self { sender, print }
    }

    fn render(&self, m: &OutgoingMessage) -> String {
        match m.channel {
            Channel::Email => format!(
                "── dev mailbox: email ──\nFrom: {}\nTo: {}\nSubject: {}\n\n{}\n────────────────────────\n",
                self.sender, m.recipient, m.subject, m.body
            ),
            Channel::Sms => format!(
                "── dev mailbox: text message ──\nTo: {}\n\n{}\n────────────────────────\n",
                m.recipient, m.body
            ),
            Channel::Logout => format!("── dev mailbox: logout token for {} ──\n", m.recipient),
        }
    }
}

impl Provider for DevMailbox {
    fn name(&self) -> &'static str {
        "dev"
    }

    fn keeps_messages(&self) -> bool {
        true
    }

    fn send<'a>(&'a self, _id: &'a MessageId, message: &'a OutgoingMessage) -> SendFuture<'a> {
        Box::pin(async move {
            if self.print {
                // The dev mailbox's whole purpose is to show the message to the person at the console.
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(self.render(message).as_bytes());
                let _ = out.flush();
            }
            Ok(())
        })
    }
}
