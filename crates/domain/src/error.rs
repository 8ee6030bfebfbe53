//! The one error type of Usher.
//!
//! Policy: every fallible use case returns [`Error`]. Each carries a stable [`ErrorCode`] (part of
//! the API contract, documented in the OpenAPI spec), a message written for the person who will
//! read it, and optionally per-field messages for forms. Internal detail (database or provider
//! text) goes only into `detail`, which is logged with the request ID and never shown. The web
//! layer maps an `Error` to an HTML page or to RFC 9457 problem details in one place.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::duration::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request was understood but some of what was sent is not acceptable.
    InvalidInput,
    /// Nothing was found, or the caller may not know whether it exists.
    NotFound,
    /// The caller must sign in first.
    Unauthenticated,
    /// Signed in, but not allowed to do this.
    Forbidden,
    /// The form or request did not carry a valid anti-forgery token or came from another site.
    CsrfRejected,
    /// A one-time link has passed its expiry time.
    LinkExpired,
    /// A one-time link has been used, or replaced by a newer one.
    LinkUsed,
    /// Too many requests; try again later.
    RateLimited,
    /// The change conflicts with something that already exists.
    Conflict,
    /// The test clock is not switched on for this server.
    TestClockOff,
    /// The password has expired and must be changed before anything else.
    PasswordExpired,
    /// The password is proven but the second factor (or its set-up) is still to come.
    SecondFactorRequired,
    /// This change needs the password entered again first (S24).
    ReauthenticationRequired,
    /// The account was deregistered after going unused; an administrator can reregister it.
    Deregistered,
    /// The address exists but does not take this method (a GET to a form's action, say).
    MethodNotAllowed,
    /// What was sent is larger than the service accepts.
    PayloadTooLarge,
    /// Something went wrong on our side.
    Internal,
    /// A dependency (the database) is not available just now.
    Unavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::NotFound => "not_found",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::CsrfRejected => "csrf_rejected",
            Self::LinkExpired => "link_expired",
            Self::LinkUsed => "link_used",
            Self::RateLimited => "rate_limited",
            Self::Conflict => "conflict",
            Self::TestClockOff => "test_clock_off",
            Self::PasswordExpired => "password_expired",
            Self::SecondFactorRequired => "second_factor_required",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::Deregistered => "deregistered",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    pub const ALL: [ErrorCode; 18] = [
        Self::InvalidInput,
        Self::NotFound,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::CsrfRejected,
        Self::LinkExpired,
        Self::LinkUsed,
        Self::RateLimited,
        Self::Conflict,
        Self::TestClockOff,
        Self::PasswordExpired,
        Self::SecondFactorRequired,
        Self::ReauthenticationRequired,
        Self::Deregistered,
        Self::MethodNotAllowed,
        Self::PayloadTooLarge,
        Self::Internal,
        Self::Unavailable,
    ];

    /// The title shown on an error page or in `title` of problem details.
    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidInput => "There is a problem",
            Self::NotFound => "Page not found",
            Self::Unauthenticated => "You need to sign in",
            Self::Forbidden => "You cannot do that",
            Self::CsrfRejected => "This form has expired",
            Self::LinkExpired => "This link has expired",
            Self::LinkUsed => "This link has already been used",
            Self::RateLimited => "Too many attempts",
            Self::Conflict => "That cannot be done now",
            Self::TestClockOff => "The test clock is off",
            Self::PasswordExpired => "Your password has expired",
            Self::SecondFactorRequired => "Confirm it is you",
            Self::ReauthenticationRequired => "Enter your password again",
            Self::Deregistered => "Your account has been deregistered",
            Self::MethodNotAllowed => "This page cannot be used that way",
            Self::PayloadTooLarge => "What you sent is too large",
            Self::Internal => "Sorry, there is a problem with the service",
            Self::Unavailable => "Sorry, the service is unavailable",
        }
    }
}

/// A message about one form field, shown beside it and in the error summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

pub struct Error {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    pub fields: Vec<FieldError>,
    /// For the log only; never shown to the caller.
    pub detail: Option<String>,
    /// For a rate limit: how long until it frees (sent as `Retry-After`).
    pub retry_after: Option<Span>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self { code, message: message.into(), fields: Vec::new(), detail: None, retry_after: None }
    }

    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let message = match fields.as_slice() {
            [only] => only.message.clone(),
            _ => "Check the highlighted answers and try again.".to_owned(),
        };
        Self { code: ErrorCode::InvalidInput, message: message.into(), fields, detail: None, retry_after: None }
    }

    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError { field, message: message.into() }])
    }

    pub fn not_found() -> Self {
        Self::new(
            ErrorCode::NotFound,
            "If you typed the web address, check it is correct. If you followed a link, it may be out of date.",
        )
    }

    /// An error on our side. `detail` is logged, never shown.
    pub fn internal(detail: impl fmt::Display) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "Try again later. If it keeps happening, contact the helpdesk and quote the reference below."
                .into(),
            fields: Vec::new(),
            detail: Some(detail.to_string()),
            retry_after: None,
        }
    }

    pub fn unavailable(detail: impl fmt::Display) -> Self {
        Self {
            code: ErrorCode::Unavailable,
            message: "Try again in a few minutes.".into(),
            fields: Vec::new(),
            detail: Some(detail.to_string()),
            retry_after: None,
        }
    }

    /// Too many requests: `message` says what to do, `retry_after` when the limit frees (at
    /// least a second, so a client never retries at once).
    pub fn rate_limited(message: impl Into<Cow<'static, str>>, retry_after: Span) -> Self {
        let retry_after = Span::seconds_(retry_after.seconds().max(1));
        Self { retry_after: Some(retry_after), ..Self::new(ErrorCode::RateLimited, message) }
    }

    pub fn is_server_side(&self) -> bool {
        matches!(self.code, ErrorCode::Internal | ErrorCode::Unavailable)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("fields", &self.fields)
            .field("detail", &self.detail)
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Defect 8: every 409 read "That already exists", also for "this account is not locked".
    #[test]
    fn the_conflict_title_fits_every_conflict() {
        let title = ErrorCode::Conflict.title();
        assert!(!title.contains("exists"), "{title}");
        assert_eq!(title, "That cannot be done now");
    }
}
