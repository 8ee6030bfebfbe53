//! Points in time as whole seconds since the Unix epoch, UTC. Stored as a 64-bit integer in
//! both database engines, so queries compare them the same way everywhere.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::duration::Span;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix(seconds: i64) -> Self {
        Self(seconds)
    }

    pub const fn unix(self) -> i64 {
        self.0
    }

    #[must_use]
    pub fn plus(self, span: Span) -> Self {
        Self(self.0.saturating_add(span.seconds()))
    }

    #[must_use]
    pub fn minus(self, span: Span) -> Self {
        Self(self.0.saturating_sub(span.seconds()))
    }

    /// Seconds from `earlier` to `self` (negative when `earlier` is later).
    pub fn seconds_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    fn to_datetime(self) -> Option<::time::OffsetDateTime> {
        ::time::OffsetDateTime::from_unix_timestamp(self.0).ok()
    }

    /// RFC 3339, for APIs and logs: `2026-11-23T12:00:00Z`.
    pub fn rfc3339(self) -> String {
        self.to_datetime()
            .and_then(|t| t.format(&::time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| self.0.to_string())
    }

    /// For people, in GOV.UK style: `23 November 2026 at 2:05pm (UTC)`.
    pub fn human(self) -> String {
        let Some(t) = self.to_datetime() else {
            return self.0.to_string();
        };
        let (hour, suffix) = match t.hour() {
            0 => (12, "am"),
            h @ 1..=11 => (h, "am"),
            12 => (12, "pm"),
            h => (h - 12, "pm"),
        };
        format!("{} {} {} at {}:{:02}{} (UTC)", t.day(), t.month(), t.year(), hour, t.minute(), suffix)
    }

    /// The date alone, for people: `23 November 2026`.
    pub fn human_date(self) -> String {
        match self.to_datetime() {
            Some(t) => format!("{} {} {}", t.day(), t.month(), t.year()),
            None => self.0.to_string(),
        }
    }

    /// Parses RFC 3339 (`2026-11-23T12:00:00Z`).
    /// Midnight UTC at the start of a `YYYY-MM-DD` day.
    pub fn parse_date(text: &str) -> Option<Self> {
        let format = ::time::macros::format_description!("[year]-[month]-[day]");
        let date = ::time::Date::parse(text.trim(), &format).ok()?;
        Some(Self(date.midnight().assume_utc().unix_timestamp()))
    }

    /// A `YYYY-MM-DD HH:MM` moment in UTC (also `YYYY-MM-DDTHH:MM`, or a date alone for midnight).
    pub fn parse_minute(text: &str) -> Option<Self> {
        let t = text.trim().replace('T', " ");
        if t.len() == 10 {
            return Self::parse_date(&t);
        }
        let format = ::time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
        let at = ::time::PrimitiveDateTime::parse(&t, &format).ok()?;
        Some(Self(at.assume_utc().unix_timestamp()))
    }

    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        ::time::OffsetDateTime::parse(text.trim(), &::time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| Self(t.unix_timestamp()))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_for_people_and_machines() {
        let t = Timestamp::from_unix(1_795_440_300); // 2026-11-23T13:25:00Z
        assert_eq!(t.rfc3339(), "2026-11-23T13:25:00Z");
        assert_eq!(t.human(), "23 November 2026 at 1:25pm (UTC)");
        assert_eq!(t.human_date(), "23 November 2026");
        assert_eq!(Timestamp::parse_rfc3339("2026-11-23T13:25:00Z"), Some(t));
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_unix(i64::MAX - 1);
        assert_eq!(t.plus(Span::days(1)).unix(), i64::MAX);
        assert_eq!(Timestamp::from_unix(10).seconds_since(Timestamp::from_unix(4)), 6);
    }
}

#[cfg(test)]
mod parse_tests {
    use super::Timestamp;

    #[test]
    fn dates_and_minutes_are_read_in_utc_and_nonsense_is_refused() {
        assert_eq!(Timestamp::parse_date("2026-01-05").unwrap().unix(), 1_767_571_200);
        assert_eq!(Timestamp::parse_minute("2026-01-05 09:00").unwrap().unix(), 1_767_603_600);
        assert_eq!(Timestamp::parse_minute("2026-01-05T09:00").unwrap().unix(), 1_767_603_600);
        assert_eq!(Timestamp::parse_minute("2026-01-05").unwrap().unix(), 1_767_571_200);
        for bad in ["", "2026-13-01", "5 Jan", "2026-01-05 25:00", "2026-01-05 09:00:00x", "ééé"] {
            assert!(Timestamp::parse_minute(bad).is_none(), "{bad}");
        }
    }
}
