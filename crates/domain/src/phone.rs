//! Mobile numbers, validated with libphonenumber's rules and kept in E.164 (`+447700900123`),
//! so that `07700 900123` and `+44 7700 900123` are one number. A number without a country
//! code is read as a United Kingdom number.

use std::fmt;

use phonenumber::{Mode, Type as PhoneNumberType, country};
use serde::Serialize;

#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct MobileNumber(String);

impl MobileNumber {
    /// The E.164 form of a UK or international mobile number, or a message for the person who
    /// typed it.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let t = text.trim();
        if t.is_empty() {
            return Err("Enter a mobile phone number");
        }
        // Only what people write in phone numbers reaches the parser, and not too much of it.
        let allowed = |c: char| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.');
        let plus_ok = t.rfind('+').is_none_or(|i| i == 0);
        if t.chars().count() > 32
            || !plus_ok
            || !t.chars().all(allowed)
            || t.chars().filter(char::is_ascii_digit).count() < 7
        {
            return Err("Enter a mobile phone number, like 07700 900 982 or +44 7700 900 982");
        }
        let international = t.replacen("00", "+", usize::from(t.starts_with("00")));
        let parsed = phonenumber::parse(Some(country::Id::GB), &international)
            .map_err(|_| "Enter a mobile phone number, like 07700 900 982 or +44 7700 900 982")?;
        let e164 = parsed.format().mode(Mode::E164).to_string();
        // Ofcom keeps 07700 900000 to 900999 for drama and training: never a real person's
        // number, so safe for examples and tests, though libphonenumber calls it invalid.
        if is_ofcom_drama_mobile(&e164) {
            return Ok(Self(e164));
        }
        if !phonenumber::is_valid(&parsed) {
            return Err("Enter a real mobile phone number, like 07700 900 982 or +44 7700 900 982");
        }
        let kind = parsed.number_type(&phonenumber::metadata::DATABASE);
        if !matches!(kind, PhoneNumberType::Mobile | PhoneNumberType::FixedLineOrMobile) {
            return Err("Enter a mobile phone number: codes are sent by text message");
        }
        Ok(Self(e164))
    }

    /// For numbers read back from our own database.
    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number's country as an ISO 3166 code (`GB`), for the allow-list of countries that
    /// may be texted. Ofcom's drama numbers are British.
    pub fn country(&self) -> Option<String> {
        if is_ofcom_drama_mobile(&self.0) {
            return Some("GB".to_owned());
        }
        let parsed = phonenumber::parse(None, &self.0).ok()?;
        parsed.country().id().map(|id| id.as_ref().to_owned())
    }

    /// The start of the number (country code and the first digits), the unit in which SMS
    /// pumping is counted: fraudsters rent consecutive numbers from one range.
    pub fn prefix(&self) -> &str {
        self.0.get(..self.0.len().saturating_sub(4).max(1)).unwrap_or("")
    }

    /// The last 4 digits: all that is ever shown of a number.
    pub fn last_four(&self) -> &str {
        self.0.get(self.0.len().saturating_sub(4)..).unwrap_or("")
    }
}

impl fmt::Display for MobileNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MobileNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MobileNumber(…{})", self.last_four())
    }
}

fn is_ofcom_drama_mobile(e164: &str) -> bool {
    e164.len() == 13 && e164.starts_with("+447700900")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_uk_number_are_one_value() {
        for spelling in
            ["07700 900123", "+44 7700 900123", "+447700900123", "0044 7700 900123", "(07700) 900-123", "07700900123"]
        {
            assert_eq!(MobileNumber::parse(spelling).unwrap().as_str(), "+447700900123", "{spelling}");
        }
        assert_eq!(MobileNumber::parse("07700 900123").unwrap().last_four(), "0123");
        assert_eq!(MobileNumber::parse("07911 123456").unwrap().as_str(), "+447911123456");
    }

    #[test]
    fn numbers_know_their_country_and_prefix() {
        assert_eq!(MobileNumber::parse("07700 900123").unwrap().country().as_deref(), Some("GB"));
        assert_eq!(MobileNumber::parse("07400 123456").unwrap().country().as_deref(), Some("GB"));
        assert_eq!(MobileNumber::parse("07911 123456").unwrap().country().as_deref(), Some("GG"));
        assert_eq!(MobileNumber::parse("+33 6 12 34 56 78").unwrap().country().as_deref(), Some("FR"));
        assert_eq!(MobileNumber::parse("07700 900123").unwrap().prefix(), "+44770090");
    }

    #[test]
    fn international_mobiles_are_accepted() {
        assert_eq!(MobileNumber::parse("+33 6 12 34 56 78").unwrap().as_str(), "+33612345678");
        assert_eq!(MobileNumber::parse("+1 201-555-0123").unwrap().as_str(), "+12015550123");
    }

    #[test]
    fn landlines_and_nonsense_are_refused_without_panicking() {
        for bad in [
            "",
            "020 7946 0000",
            "12345",
            "07700",
            "+44",
            "phone me",
            "  2 22#:",
            "+999 1234567",
            "0".repeat(40).as_str(),
            "+",
            "++447700900123",
            "\u{0}",
        ] {
            assert!(MobileNumber::parse(bad).is_err(), "{bad:?}");
        }
    }
}
