//! Rate limits: how many requests of one kind one key (an IP address, an account) may make in
//! a window. Counted in the database, so they hold across nodes.

use crate::duration::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Names the bucket family in storage and logs.
    pub name: &'static str,
    pub max: i64,
    pub window: Span,
}

/// Sign-in attempts from one IP address.
pub const SIGN_IN_PER_IP: RateLimit = RateLimit { name: "sign_in_ip", max: 60, window: Span::minutes(15) };
/// Sign-in attempts for one email address, whether or not it has an account.
pub const SIGN_IN_PER_ACCOUNT: RateLimit = RateLimit { name: "sign_in_account", max: 20, window: Span::minutes(15) };
/// Password reset requests from one IP address.
pub const RESET_PER_IP: RateLimit = RateLimit { name: "reset_ip", max: 20, window: Span::hours(1) };
/// Reset emails to one address (further requests get the same answer but send nothing).
pub const RESET_EMAILS_PER_ACCOUNT: RateLimit = RateLimit { name: "reset_account", max: 3, window: Span::hours(1) };
