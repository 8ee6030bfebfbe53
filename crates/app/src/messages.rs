//! The wording of every email and text message. Each email ends with the same footer: the one
//! address genuine emails come from and the one web address they link to, so that a phishing
//! email stands out.

use usher_domain::Timestamp;
use usher_domain::message::{Channel, OutgoingMessage};
use usher_domain::policy::Policy;

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

/// Who to ask about an account: the administrator who added the person, or for an
/// administrator appointed by the operator, the operator who runs the service.
pub fn who_to_ask(config: &Config, added_by: Option<&usher_store::User>) -> String {
    use usher_domain::account::Role;
    match added_by {
        Some(u) if u.role == Role::OrganisationAdministrator => {
            format!("{}, your organisation administrator", u.full_name)
        }
        Some(u) => format!("{}, who runs {}", u.full_name, config.service_name),
        None => "your organisation administrator".to_owned(),
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

/// The activation email: who added them, by when to activate, and not to share the link.
pub fn activation(
    config: &Config,
    to: &str,
    name: &str,
    added_by: &str,
    organisation: &str,
    link: &str,
    expires_at: Timestamp,
) -> OutgoingMessage {
    email(
        config,
        "activation",
        to,
        format!("Activate your {} account", config.service_name),
        format!(
            "Dear {name},\n\nYou have an account on {service} for {organisation}, added by {added_by}.\n\n\
             Activate it by {deadline} with this link:\n\n{link}\n\n\
             Allow about 10 minutes and have your mobile phone with you: we will text a code to it.\n\n\
             The link works once and is for you alone. Do not share it or forward this email.\n\
             If it expires, ask for a new one from {added_by}.",
            service = config.service_name,
            deadline = expires_at.human(),
        ),
        Some(expires_at),
    )
}

/// The text message with a code that proves the mobile number.
pub fn mobile_code(config: &Config, to: &str, code: &str, expires_at: Timestamp, minutes: i64) -> OutgoingMessage {
    OutgoingMessage {
        channel: Channel::Sms,
        purpose: "mobile_code".to_owned(),
        recipient: to.to_owned(),
        subject: String::new(),
        body: format!(
            "{code} is your {service} code. It works for {minutes} minutes. Never share it: {service} staff will never ask for it.",
            service = config.service_name
        ),
        expires_at: Some(expires_at),
    }
}

pub fn account_activated(config: &Config, to: &str, name: &str) -> OutgoingMessage {
    email(
        config,
        "account_activated",
        to,
        format!("Your {} account is active", config.service_name),
        format!(
            "Dear {name},\n\nYour {service} account is active. Sign in at {base}/sign-in.\n\n\
             If you did not activate it, contact your organisation administrator at once.",
            service = config.service_name,
            base = config.base_url(),
        ),
        None,
    )
}

pub fn mobile_changed(config: &Config, to: &str, name: &str, last_four: &str, by: &str) -> OutgoingMessage {
    email(
        config,
        "mobile_changed",
        to,
        format!("Your mobile number on {} has been changed", config.service_name),
        format!(
            "Dear {name},\n\n{by} changed the mobile number on your {service} account to one ending {last_four}.\n\n\
             If this is wrong, contact your organisation administrator.",
            service = config.service_name,
        ),
        None,
    )
}

pub fn account_locked(config: &Config, policy: &Policy, to: &str, name: &str, when: Timestamp) -> OutgoingMessage {
    let why = format!("{} wrong passwords in a row", policy.lock_after_wrong_passwords);
    account_locked_because(config, to, name, when, &why)
}

/// The lock email, naming what locked the account.
pub fn account_locked_because(config: &Config, to: &str, name: &str, when: Timestamp, why: &str) -> OutgoingMessage {
    email(
        config,
        "account_locked",
        to,
        format!("Your {} account is locked", config.service_name),
        format!(
            "Dear {name},\n\nYour {service} account was locked on {when} after {why}.\n\n\
             To unlock it, reset your password at {base}/reset-password, or ask your organisation administrator.\n\n\
             If you did not try to sign in, someone may be guessing your password: tell your administrator.",
            service = config.service_name,
            when = when.human(),
            base = config.base_url(),
        ),
        None,
    )
}

pub fn password_reset(
    config: &Config,
    policy: &Policy,
    to: &str,
    name: &str,
    link: &str,
    expires_at: Timestamp,
) -> OutgoingMessage {
    email(
        config,
        "password_reset",
        to,
        format!("Reset your {} password", config.service_name),
        format!(
            "Dear {name},\n\nSomeone asked to reset the password of your {service} account. To choose a new one, use this \
             link by {deadline}:\n\n{link}\n\nThe link works once and only for {lifetime}. Do not share it.\n\n\
             If you did not ask, ignore this email: your password has not changed.",
            service = config.service_name,
            deadline = expires_at.human(),
            lifetime = policy.reset_link.in_words(),
        ),
        Some(expires_at),
    )
}

/// An emailed one-time code (the email second factor, or a check before a set-up).
pub fn email_code(
    config: &Config,
    policy: &Policy,
    to: &str,
    name: &str,
    code: &str,
    expires_at: Timestamp,
) -> OutgoingMessage {
    email(
        config,
        "email_code",
        to,
        format!("Your {} code", config.service_name),
        format!(
            "Dear {name},\n\nYour {service} code is {code}\n\nIt works once, until {deadline} ({lifetime}). If you \
             ask for another code, only the newest one works. Never share it: {service} staff will never ask for it.\n\n\
             If you did not try to sign in, someone may know your password: change it at {base}/account/password.",
            service = config.service_name,
            deadline = expires_at.human(),
            base = config.base_url(),
            lifetime = policy.email_code.lifetime.in_words(),
        ),
        Some(expires_at),
    )
}

/// A change to how the person proves who they are (S18). `what` completes "On {when}, ...".
pub fn security_change(
    config: &Config,
    purpose: &str,
    to: &str,
    name: &str,
    subject: &str,
    what: &str,
    when: Timestamp,
) -> OutgoingMessage {
    email(
        config,
        purpose,
        to,
        format!("{}: {subject}", config.service_name),
        format!(
            "Dear {name},\n\nOn {when}, {what}\n\nYou can see your second factors and recovery phone at \
             {base}/account/security.\n\nIf this was not you, someone may be using your account: reset your password \
             at {base}/reset-password and tell your organisation administrator at once.",
            when = when.human(),
            base = config.base_url(),
        ),
        None,
    )
}

/// A reminder that an unused account will be deregistered, and that signing in prevents it.
pub fn deregistration_reminder(config: &Config, to: &str, name: &str, on: Timestamp) -> OutgoingMessage {
    email(
        config,
        "deregistration_reminder",
        to,
        format!("Sign in to keep your {} account", config.service_name),
        format!(
            "Dear {name},\n\nYou have not signed in to {service} for a while. Unless you sign in before {on}, your \
             account will be deregistered, and you will need your organisation administrator to reregister you.\n\n\
             Signing in at {base}/sign-in is all it takes to keep it.",
            service = config.service_name,
            on = on.human(),
            base = config.base_url(),
        ),
        None,
    )
}

/// The account has been deregistered after going unused.
pub fn deregistered(config: &Config, to: &str, name: &str, who: &str, deleted_on: Timestamp) -> OutgoingMessage {
    email(
        config,
        "deregistered",
        to,
        format!("Your {} account has been deregistered", config.service_name),
        format!(
            "Dear {name},\n\nYour {service} account has been deregistered because it was not used for a long time, \
             and every session was signed out.\n\nTo use it again, ask to be reregistered by {who}. Unless you are \
             reregistered by {deleted_on}, your account will be deleted and a new one will be needed.",
            service = config.service_name,
            deleted_on = deleted_on.human(),
        ),
        None,
    )
}

/// The account has been reregistered by an administrator.
pub fn reregistered(config: &Config, to: &str, name: &str, by: &str) -> OutgoingMessage {
    email(
        config,
        "reregistered",
        to,
        format!("Your {} account has been reregistered", config.service_name),
        format!(
            "Dear {name},\n\n{by} has reregistered your {service} account. Sign in at {base}/sign-in with your usual \
             password and second factor. If your password has expired, you will choose a new one first.",
            service = config.service_name,
            base = config.base_url(),
        ),
        None,
    )
}

/// A system notification, emailed to its audience.
pub fn notification(config: &Config, to: &str, name: &str, title: &str, body: &str) -> OutgoingMessage {
    email(
        config,
        "system_notification",
        to,
        format!("{}: {title}", config.service_name),
        format!(
            "Dear {name},\n\n{body}\n\nAll current notifications are at {base}/notifications.",
            base = config.base_url()
        ),
        None,
    )
}
