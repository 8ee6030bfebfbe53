//! The account lifecycle of the seed guide: an account unused for 90 days is deregistered
//! after reminders; 28 days later, unless an administrator has reregistered it, it is deleted.
//! Pure decisions: given when the account was last in use and `now`, what is due.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::duration::Span;

/// The lifecycle's timings (configurable; the seed's by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecyclePolicy {
    /// An account unused this long is deregistered.
    pub deregister_after: Span,
    /// A deregistered account not reregistered within this is deleted.
    pub delete_after: Span,
    /// Reminders, each this long before deregistration.
    pub reminders: Vec<Span>,
}

impl Default for LifecyclePolicy {
    fn default() -> Self {
        Self {
            deregister_after: Span::days(90),
            delete_after: Span::days(28),
            reminders: vec![Span::days(14), Span::days(3)],
        }
    }
}

impl LifecyclePolicy {
    /// When an account last in use at `active_since` is deregistered.
    pub fn deregistration_at(&self, active_since: Timestamp) -> Timestamp {
        active_since.plus(self.deregister_after)
    }

    /// The latest last-use that is due for deregistration at `now`.
    pub fn deregister_if_unused_since(&self, now: Timestamp) -> Timestamp {
        now.minus(self.deregister_after)
    }

    /// The latest deregistration that is due for deletion at `now`.
    pub fn delete_if_deregistered_before(&self, now: Timestamp) -> Timestamp {
        now.minus(self.delete_after)
    }

    /// For each reminder: its name and the latest last-use that is due for it at `now`
    /// (`14d` is due once the account has been unused for 90 − 14 = 76 days).
    pub fn reminders_due(&self, now: Timestamp) -> Vec<(String, Timestamp)> {
        self.reminders
            .iter()
            .filter(|r| r.seconds() > 0 && r.seconds() < self.deregister_after.seconds())
            .map(|r| (format!("reminder_{r}"), now.minus(self.deregister_after).plus(*r)))
            .collect()
    }

    /// A reminder of `before` is sent only while it is still early enough to be useful: not
    /// once a later (shorter) reminder is due, so a server that was off sends one email.
    pub fn later_reminder_due(&self, before: Span, active_since: Timestamp, now: Timestamp) -> bool {
        self.reminders
            .iter()
            .any(|r| r.seconds() < before.seconds() && now >= self.deregistration_at(active_since).minus(*r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn the_seed_timings() {
        let p = LifecyclePolicy::default();
        let start = Timestamp::from_unix(1_000 * DAY);
        assert_eq!(p.deregistration_at(start), Timestamp::from_unix(1_090 * DAY));
        let now = Timestamp::from_unix(1_100 * DAY);
        assert_eq!(p.deregister_if_unused_since(now), Timestamp::from_unix(1_010 * DAY));
        assert_eq!(p.delete_if_deregistered_before(now), Timestamp::from_unix(1_072 * DAY));
        let due = p.reminders_due(Timestamp::from_unix(1_076 * DAY));
        assert_eq!(due[0], ("reminder_14d".into(), Timestamp::from_unix(1_000 * DAY)), "day 76: the 14-day reminder");
        assert_eq!(due[1].1, Timestamp::from_unix(989 * DAY), "the 3-day reminder waits until day 87");
    }

    #[test]
    fn a_late_run_sends_only_the_latest_reminder() {
        let p = LifecyclePolicy::default();
        let start = Timestamp::from_unix(1_000 * DAY);
        assert!(!p.later_reminder_due(Span::days(14), start, Timestamp::from_unix(1_080 * DAY)));
        assert!(p.later_reminder_due(Span::days(14), start, Timestamp::from_unix(1_088 * DAY)));
        assert!(!p.later_reminder_due(Span::days(3), start, Timestamp::from_unix(1_088 * DAY)));
    }
}
