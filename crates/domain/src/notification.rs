//! System notifications from the operator: a title, a body of plain paragraphs whose only links
//! go to the service's own address, an importance, a window of time, and an audience.

use crate::Timestamp;
use crate::organisation::OrganisationKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Importance {
    Information,
    Warning,
    Urgent,
}

impl Importance {
    pub const ALL: [Self; 3] = [Self::Information, Self::Warning, Self::Urgent];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Information => "information",
            Self::Warning => "warning",
            Self::Urgent => "urgent",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.as_str() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Information => "Information",
            Self::Warning => "Warning",
            Self::Urgent => "Urgent",
        }
    }

    /// Important notifications are shown as a banner on the sign-in and home pages.
    pub fn is_important(self) -> bool {
        self >= Self::Warning
    }
}

/// Who a notification is for: everyone, or the people of some kinds of organisation (operators
/// always see every notification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Everyone,
    Kinds(Vec<OrganisationKind>),
}

impl Audience {
    pub fn to_stored(&self) -> String {
        match self {
            Self::Everyone => String::new(),
            Self::Kinds(kinds) => kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(","),
        }
    }

    /// Read back; kinds that cannot be read are left out, so a damaged value reaches fewer
    /// people, never everyone.
    pub fn from_stored(text: &str) -> Self {
        if text.is_empty() {
            return Self::Everyone;
        }
        Self::Kinds(text.split(',').filter_map(OrganisationKind::parse).collect())
    }

    /// Whether someone of an organisation of `kind` (`None`: signed out, or no organisation)
    /// is in the audience.
    pub fn includes(&self, kind: Option<OrganisationKind>) -> bool {
        match self {
            Self::Everyone => true,
            Self::Kinds(kinds) => kind.is_some_and(|k| kinds.contains(&k)),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Everyone => "Everyone".into(),
            Self::Kinds(kinds) => kinds.iter().map(|k| k.label()).collect::<Vec<_>>().join(", "),
        }
    }
}

/// A piece of a paragraph: text, or a link to the service's own address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Link(String),
}

/// The body as paragraphs (separated by blank lines) of text and links. A web address that
/// does not start with `base_url` is refused, so a notification can never send people
/// elsewhere: that is what phishing emails do.
pub fn parse_body(body: &str, base_url: &str) -> Result<Vec<Vec<Part>>, String> {
    let base = base_url.trim_end_matches('/');
    let normalised = body.replace("\r\n", "\n");
    let mut paragraphs = Vec::new();
    for para in normalised.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let mut parts: Vec<Part> = Vec::new();
        let mut text = String::new();
        for (i, word) in para.split_whitespace().enumerate() {
            let bare = word.trim_end_matches(['.', ',', ';', ':', ')', '!', '?', '>', '"', '\'']);
            let trailing = &word[bare.len()..];
            let lower = word.to_ascii_lowercase();
            if i > 0 {
                text.push(' ');
            }
            // Anything an email program might turn into a link counts as one, wherever it
            // starts in the word: `(https://…`, `<www.…`, `Visit:ftp://…`.
            let looks_like_link = lower.contains("://") || lower.contains("www.") || lower.contains("mailto:");
            if looks_like_link {
                let ours =
                    bare == base || bare.strip_prefix(base).is_some_and(|rest| rest.starts_with(['/', '?', '#']));
                if !ours {
                    let shown: String = word.chars().take(80).collect();
                    return Err(format!("Links may only go to {base}: remove or change {shown}"));
                }
                parts.push(Part::Text(std::mem::take(&mut text)));
                parts.push(Part::Link(bare.to_owned()));
                text.push_str(trailing);
            } else {
                text.push_str(word);
            }
        }
        parts.push(Part::Text(text));
        parts.retain(|p| !matches!(p, Part::Text(t) if t.is_empty()));
        paragraphs.push(parts);
    }
    Ok(paragraphs)
}

/// Whether a notification shows at `now`.
pub fn is_published(from: Timestamp, until: Option<Timestamp>, now: Timestamp) -> bool {
    from <= now && until.is_none_or(|u| now < u)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://signin.example.org";

    #[test]
    fn bodies_are_paragraphs_with_links_to_the_service_only() {
        let p =
            parse_body("Planned work tonight.\n\nDetails at https://signin.example.org/notifications, as usual.", BASE)
                .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0], vec![Part::Text("Planned work tonight.".into())]);
        assert_eq!(
            p[1],
            vec![
                Part::Text("Details at ".into()),
                Part::Link("https://signin.example.org/notifications".into()),
                Part::Text(", as usual.".into())
            ]
        );
        for bad in [
            "See https://evil.example/login",
            "See https://signin.example.org.evil.example/",
            "See http://signin.example.org/",
            "See www.evil.example",
            "See HTTPS://EVIL.EXAMPLE",
            "See (https://evil.example)",
            "See <https://evil.example>",
            "Visit:https://evil.example",
            "ftp://evil.example/file",
            "mailto:someone@evil.example",
        ] {
            assert!(parse_body(bad, BASE).is_err(), "{bad}");
        }
        assert!(parse_body("<script>alert(1)</script>", BASE).is_ok(), "text is shown as text, escaped");
    }

    #[test]
    fn audiences_and_windows() {
        let law = Audience::Kinds(vec![OrganisationKind::LawFirm]);
        assert!(law.includes(Some(OrganisationKind::LawFirm)));
        assert!(!law.includes(Some(OrganisationKind::Court)));
        assert!(!law.includes(None));
        assert!(Audience::Everyone.includes(None));
        assert_eq!(Audience::from_stored(&law.to_stored()), law);
        assert_eq!(Audience::from_stored(""), Audience::Everyone);
        assert!(!Audience::from_stored("garbled").includes(Some(OrganisationKind::Court)), "fails closed");
        let t = Timestamp::from_unix;
        assert!(!is_published(t(10), Some(t(20)), t(9)));
        assert!(is_published(t(10), Some(t(20)), t(10)));
        assert!(!is_published(t(10), Some(t(20)), t(20)));
        assert!(is_published(t(10), None, t(1_000)));
        assert!(Importance::Urgent.is_important() && !Importance::Information.is_important());
    }
}
