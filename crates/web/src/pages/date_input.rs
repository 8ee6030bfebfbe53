//! The GOV.UK date input with a time: day, month and year fields and a 24-hour time, read in
//! the web layer into the `YYYY-MM-DD HH:MM` (UTC) text the use cases take, with one short
//! message per date that names what is missing or wrong.

use usher_domain::Timestamp;
use usher_domain::error::FieldError;

use super::FormErrors;

/// The four parts, in the order they appear.
const PARTS: [(&str, &str, &str); 4] = [
    ("day", "Day", "govuk-input--width-2"),
    ("month", "Month", "govuk-input--width-2"),
    ("year", "Year", "govuk-input--width-4"),
    ("time", "Time", "govuk-input--width-5"),
];

/// A date and time field: its name (`publish_from`), the form field ID of each part (the
/// day's is the name itself, so that a message about the whole date links to it) and the
/// label used in messages ("Show from").
#[derive(Debug, Clone, Copy)]
pub struct DateTimeField {
    pub name: &'static str,
    pub ids: [&'static str; 4],
    pub legend: &'static str,
    pub label: &'static str,
}

/// What was typed, part by part.
#[derive(Debug, Clone, Default)]
pub struct DateTimeAnswer {
    pub parts: [String; 4],
}

/// Why an answer cannot be read: the message and which parts are wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateProblem {
    pub message: String,
    pub bad: [bool; 4],
}

impl DateProblem {
    /// The message as a form error on the first wrong part.
    pub fn field_error(&self, field: &DateTimeField) -> FieldError {
        let first = self.bad.iter().position(|b| *b).unwrap_or(0);
        FieldError { field: field.ids[first], message: self.message.clone() }
    }
}

impl DateTimeField {
    /// Reads the parts from the submitted pairs (`publish_from-day` and so on).
    pub fn answer(&self, pairs: &[(String, String)]) -> DateTimeAnswer {
        let value = |part: &str| {
            let key = format!("{}-{part}", self.name);
            pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.trim().to_owned()).unwrap_or_default()
        };
        DateTimeAnswer { parts: PARTS.map(|(part, _, _)| value(part)) }
    }

    /// `Ok("")` when every part is empty, `Ok("YYYY-MM-DD HH:MM")` for a real date and time.
    pub fn parse(&self, a: &DateTimeAnswer) -> Result<String, DateProblem> {
        let label = self.label;
        if a.parts.iter().all(String::is_empty) {
            return Ok(String::new());
        }
        let missing: Vec<usize> = (0..4).filter(|i| a.parts[*i].is_empty()).collect();
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|i| PARTS[*i].0).collect();
            let what = match names.as_slice() {
                [one] => (*one).to_owned(),
                [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
                [] => String::new(),
            };
            let mut bad = [false; 4];
            missing.iter().for_each(|i| bad[*i] = true);
            return Err(DateProblem { message: format!("{label} must include a {what}"), bad });
        }
        let number = |text: &str, max_len: usize| {
            (text.len() <= max_len && text.chars().all(|c| c.is_ascii_digit()))
                .then(|| text.parse::<u32>().ok())
                .flatten()
        };
        let (day, month) = (number(&a.parts[0], 2), number(&a.parts[1], 2));
        let year = (a.parts[2].len() == 4).then(|| number(&a.parts[2], 4)).flatten();
        let time = parse_time(&a.parts[3]);
        let bad = [
            !day.is_some_and(|d| (1..=31).contains(&d)),
            !month.is_some_and(|m| (1..=12).contains(&m)),
            year.is_none(),
            time.is_none(),
        ];
        if bad[2] && !bad[0] && !bad[1] {
            return Err(DateProblem { message: "Year must include 4 numbers".into(), bad });
        }
        if bad[3] && !bad[0] && !bad[1] && !bad[2] {
            return Err(DateProblem { message: format!("{label} time must be like 09:00 or 17:30"), bad });
        }
        let (Some(day), Some(month), Some(year), Some((hour, minute)), false) =
            (day, month, year, time, bad.iter().any(|b| *b))
        else {
            return Err(DateProblem { message: format!("{label} must be a real date and time"), bad });
        };
        let text = format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}");
        match Timestamp::parse_minute(&text) {
            Some(_) => Ok(text),
            None => {
                Err(DateProblem { message: format!("{label} must be a real date"), bad: [true, true, true, false] })
            }
        }
    }

    /// The field as the page shows it: the answers, the message (from reading it, or from
    /// the use case about the whole date) and the parts to mark.
    pub fn view(&self, a: &DateTimeAnswer, problem: Option<&DateProblem>, errors: &FormErrors) -> DateTimeInput {
        let (error, bad) = match problem {
            Some(p) => (Some(p.message.clone()), p.bad),
            None => match errors.get(self.name) {
                Some(m) => (Some(m.to_owned()), [true; 4]),
                None => (None, [false; 4]),
            },
        };
        DateTimeInput {
            name: self.name,
            legend: self.legend,
            error,
            parts: (0..4)
                .map(|i| DatePart {
                    id: self.ids[i],
                    input_name: format!("{}-{}", self.name, PARTS[i].0),
                    label: PARTS[i].1,
                    width: PARTS[i].2,
                    value: a.parts[i].clone(),
                    bad: bad[i],
                })
                .collect(),
        }
    }
}

/// `09:00`, `9:00`, `9.00` or `0900`, on the 24-hour clock.
fn parse_time(text: &str) -> Option<(u32, u32)> {
    let (h, m) = match text.split_once([':', '.']) {
        Some(hm) => hm,
        None if text.len() == 4 => text.split_at(2),
        None => return None,
    };
    let ok = |s: &str| !s.is_empty() && s.len() <= 2 && s.chars().all(|c| c.is_ascii_digit());
    if !ok(h) || m.len() != 2 || !ok(m) {
        return None;
    }
    let (h, m) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

/// For `date_input.html`.
#[derive(Debug)]
pub struct DateTimeInput {
    pub name: &'static str,
    pub legend: &'static str,
    pub error: Option<String>,
    pub parts: Vec<DatePart>,
}

#[derive(Debug)]
pub struct DatePart {
    pub id: &'static str,
    pub input_name: String,
    pub label: &'static str,
    pub width: &'static str,
    pub value: String,
    pub bad: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: DateTimeField = DateTimeField {
        name: "publish_from",
        ids: ["publish_from", "publish_from-month", "publish_from-year", "publish_from-time"],
        legend: "Show from (optional)",
        label: "Show from",
    };

    fn parse(parts: [&str; 4]) -> Result<String, DateProblem> {
        FROM.parse(&DateTimeAnswer { parts: parts.map(str::to_owned) })
    }

    fn message(parts: [&str; 4]) -> String {
        parse(parts).expect_err("refused").message
    }

    #[test]
    fn reads_a_real_date_and_time() {
        assert_eq!(parse(["", "", "", ""]), Ok(String::new()));
        assert_eq!(parse(["1", "12", "2026", "9:00"]), Ok("2026-12-01 09:00".into()));
        assert_eq!(parse(["01", "02", "2027", "17.30"]), Ok("2027-02-01 17:30".into()));
        assert_eq!(parse(["29", "2", "2028", "0000"]), Ok("2028-02-29 00:00".into()));
    }

    #[test]
    fn says_what_is_missing_or_wrong() {
        assert_eq!(message(["1", "", "2026", "09:00"]), "Show from must include a month");
        assert_eq!(message(["", "", "2026", ""]), "Show from must include a day, month and time");
        assert_eq!(message(["1", "12", "26", "09:00"]), "Year must include 4 numbers");
        assert_eq!(message(["1", "12", "2026", "9am"]), "Show from time must be like 09:00 or 17:30");
        assert_eq!(message(["1", "12", "2026", "24:00"]), "Show from time must be like 09:00 or 17:30");
        assert_eq!(message(["32", "12", "2026", "09:00"]), "Show from must be a real date and time");
        assert_eq!(message(["31", "2", "2026", "09:00"]), "Show from must be a real date");
        assert_eq!(message(["x", "13", "2026", "09:00"]), "Show from must be a real date and time");
        let p = parse(["1", "", "2026", ""]).expect_err("refused");
        assert_eq!(p.bad, [false, true, false, true]);
        assert_eq!(p.field_error(&FROM).field, "publish_from-month");
    }
}
