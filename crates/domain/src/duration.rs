//! Lengths of time written the way operators write them: `90s`, `15m`, `12h`, `28d`, `1w`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(i64);

impl Span {
    pub const fn seconds_(n: i64) -> Self {
        Self(n)
    }
    pub const fn minutes(n: i64) -> Self {
        Self(n * 60)
    }
    pub const fn hours(n: i64) -> Self {
        Self(n * 3600)
    }
    pub const fn days(n: i64) -> Self {
        Self(n * 86_400)
    }
    pub const fn seconds(self) -> i64 {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a length of time: write a whole number and a unit, such as 90s, 15m, 12h, 28d or 1w")]
pub struct SpanParseError(String);

impl FromStr for Span {
    type Err = SpanParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || SpanParseError(text.chars().take(40).collect());
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (digits, unit) = t.split_at(split);
        let n: i64 = digits.parse().map_err(|_| bad())?;
        let scale = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return Err(bad()),
        };
        n.checked_mul(scale).map(Span).ok_or_else(bad)
    }
}

impl Span {
    /// In words: "90 days", "12 hours", "15 minutes", "30 seconds".
    pub fn describe(self) -> String {
        let (n, unit) = match self.0 {
            s if s != 0 && s % 86_400 == 0 => (s / 86_400, "day"),
            s if s != 0 && s % 3600 == 0 => (s / 3600, "hour"),
            s if s != 0 && s % 60 == 0 => (s / 60, "minute"),
            s => (s, "second"),
        };
        format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
    }

    /// In words for a sentence: as [`Span::describe`], but one unit reads "an hour", "a day",
    /// "a minute" ("the link works for an hour").
    pub fn in_words(self) -> String {
        match self.describe().as_str() {
            "1 hour" => "an hour".to_owned(),
            "1 day" => "a day".to_owned(),
            "1 minute" => "a minute".to_owned(),
            "1 second" => "a second".to_owned(),
            other => other.to_owned(),
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s != 0 && s % 86_400 == 0 {
            write!(f, "{}d", s / 86_400)
        } else if s != 0 && s % 3600 == 0 {
            write!(f, "{}h", s / 3600)
        } else if s != 0 && s % 60 == 0 {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Span({self})")
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!("90s".parse::<Span>().unwrap(), Span::seconds_(90));
        assert_eq!("15m".parse::<Span>().unwrap(), Span::minutes(15));
        assert_eq!("12h".parse::<Span>().unwrap(), Span::hours(12));
        assert_eq!("28d".parse::<Span>().unwrap(), Span::days(28));
        assert_eq!(" 1w ".parse::<Span>().unwrap(), Span::days(7));
        assert_eq!(Span::days(28).to_string(), "28d");
        assert_eq!(Span::seconds_(61).to_string(), "61s");
        assert_eq!(Span::hours(1).in_words(), "an hour");
        assert_eq!(Span::minutes(15).in_words(), "15 minutes");
        assert_eq!(Span::days(28).in_words(), "28 days");
    }

    #[test]
    fn refuses_nonsense_without_panicking() {
        for bad in ["", "d", "12", "12x", "-5d", "99999999999999999999d", "9223372036854775807d", "1.5h"] {
            assert!(bad.parse::<Span>().is_err(), "{bad}");
        }
    }
}
