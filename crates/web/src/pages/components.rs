//! The form and table pieces the templates share: text inputs, radios and people rows.

use super::FormErrors;

/// A text input for `field.html`.
#[derive(Debug, Default)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub hint: Option<String>,
    pub value: String,
    pub error: Option<String>,
    pub input_type: &'static str,
    pub autocomplete: Option<&'static str>,
    pub width: Option<&'static str>,
    pub inputmode: Option<&'static str>,
}

impl Field {
    pub fn new(name: &'static str, label: &'static str, value: &str, errors: &FormErrors) -> Self {
        Self {
            name,
            label,
            value: value.to_owned(),
            error: errors.get(name).map(str::to_owned),
            input_type: "text",
            ..Self::default()
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn kind(mut self, input_type: &'static str, autocomplete: &'static str) -> Self {
        self.input_type = input_type;
        self.autocomplete = Some(autocomplete);
        self
    }

    /// A code field: numeric keyboard, filled in from a text message where the
    /// browser can.
    pub fn code(name: &'static str, label: &'static str, errors: &FormErrors) -> Self {
        let mut f = Self::new(name, label, "", errors).kind("text", "one-time-code").width("govuk-input--width-10");
        f.inputmode = Some("numeric");
        f
    }

    pub fn width(mut self, class: &'static str) -> Self {
        self.width = Some(class);
        self
    }

    pub fn described_by(&self) -> Option<String> {
        let ids: Vec<String> = [
            self.hint.as_ref().map(|_| format!("{}-hint", self.name)),
            self.error.as_ref().map(|_| format!("{}-error", self.name)),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!ids.is_empty()).then(|| ids.join(" "))
    }
}

/// A row of a people table.
#[derive(Debug)]
pub struct PersonRow {
    pub name: String,
    pub email: String,
    pub status: &'static str,
    pub tag_class: &'static str,
    pub last_sign_in: String,
    pub href: Option<String>,
}

impl PersonRow {
    pub fn of(l: &usher_app::UserListing, now: usher_domain::Timestamp, href: Option<String>) -> Self {
        let status = usher_domain::account::MemberStatus::of(l.user.status, l.activation_expires_at, now);
        Self {
            name: l.user.full_name.clone(),
            email: l.user.email.to_string(),
            status: status.label(),
            tag_class: status.tag_class(),
            last_sign_in: l.user.last_sign_in_at.map_or_else(|| "Never".to_owned(), |t| t.human()),
            href,
        }
    }
}

/// A radio choice.
#[derive(Debug)]
pub struct Choice {
    pub value: &'static str,
    pub label: String,
    pub checked: bool,
}

/// A group of radios for `radios.html`.
#[derive(Debug)]
pub struct Radios {
    pub name: &'static str,
    pub legend: &'static str,
    pub hint: Option<&'static str>,
    pub error: Option<String>,
    pub choices: Vec<Choice>,
}

impl Radios {
    pub fn new(
        name: &'static str,
        legend: &'static str,
        choices: &[(&'static str, String)],
        current: &str,
        errors: &FormErrors,
    ) -> Self {
        let current = if current.is_empty() { choices.first().map_or("", |c| c.0) } else { current };
        Self {
            name,
            legend,
            hint: None,
            error: errors.get(name).map(str::to_owned),
            choices: choices
                .iter()
                .map(|(value, label)| Choice { value, label: label.clone(), checked: *value == current })
                .collect(),
        }
    }

    pub fn hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }
}
