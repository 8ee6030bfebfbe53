//! The wording of every email and text message. Each email ends with the same footer: the one
//! address genuine emails come from and the one web address they link to, so that a phishing
//! email stands out.

use usher_domain::Timestamp;
use usher_domain::message::{Channel, OutgoingMessage};

use crate::config::Config;

pub fn footer(config: &Config) -> String {
    format!(
        "\n\n--\n{service} emails only ever come from {sender} and only link to {base}. \
         If an email claiming to be from {service} comes from anywhere else, do not open its links.\n\
         Help: {helpdesk} – {email} – {phone} ({hours})",
        service = config.service_name,
        sender = config.email.sender_address,
        base = config.base_url(),
        helpdesk = config.helpdesk.name,
        email = config.helpdesk.email,
        phone = config.helpdesk.phone,
        hours = config.helpdesk.hours,
    )
}

fn email(
    config: &Config,
    purpose: &str,
    to: &str,
    subject: String,
    body: String,
    expires_at: Option<Timestamp>,
) -> OutgoingMessage {
    OutgoingMessage {
        channel: Channel::Email,
        purpose: purpose.to_owned(),
        recipient: to.to_owned(),
        subject,
        body: format!("{body}{}", footer(config)),
        expires_at,
    }
}

pub fn operator_account_created(config: &Config, to: &str, name: &str) -> OutgoingMessage {
    email(
        config,
        "operator_account_created",
        to,
        format!("Your {} operator account is set up", config.service_name),
        format!(
            "Dear {name},\n\nYour operator account for {service} is set up. Sign in at {base}/sign-in.\n\n\
             If you did not do this, contact your helpdesk at once.",
            service = config.service_name,
            base = config.base_url(),
        ),
        None,
    )
}

pub fn password_changed(config: &Config, to: &str, name: &str, when: Timestamp) -> OutgoingMessage {
    email(
        config,
        "password_changed",
        to,
        format!("Your {} password has been changed", config.service_name),
        format!(
            "Dear {name},\n\nThe password for your {service} account was changed on {when}. \
             Every session that was signed in has been signed out.\n\n\
             If you did not do this, contact your helpdesk at once.",
            service = config.service_name,
            when = when.human(),
        ),
        None,
    )
}
