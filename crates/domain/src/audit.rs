//! The audit trail's hash chain. Each event's hash covers the previous event's hash and every
//! field of the event, so editing, removing or reordering a stored event breaks the chain at
//! that event.

use sha2::{Digest, Sha256};

/// The hash that comes before the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields of an event as stored, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFields<'a> {
    pub seq: i64,
    pub at: i64,
    pub actor_id: Option<&'a str>,
    pub subject_id: Option<&'a str>,
    pub organisation_id: Option<&'a str>,
    pub action: &'a str,
    pub outcome: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// Hash of one event chained to the one before. Fields are length-prefixed, so no choice of
/// field values can make two different events hash alike.
pub fn chain_hash(previous: &str, e: &AuditFields<'_>) -> String {
    let mut h = Sha256::new();
    let mut put = |v: Option<&str>| match v {
        None => h.update(b"-"),
        Some(s) => {
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
    };
    put(Some(previous));
    put(Some(&e.seq.to_string()));
    put(Some(&e.at.to_string()));
    put(e.actor_id);
    put(e.subject_id);
    put(e.organisation_id);
    put(Some(e.action));
    put(Some(e.outcome));
    put(e.ip);
    put(e.user_agent);
    put(e.request_id);
    put(e.detail);
    hex::encode(h.finalize())
}

/// Removes control characters (CR, LF and the rest) so that input cannot forge log lines,
/// and bounds the length.
pub fn clean(text: &str, max_chars: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max_chars).collect()
}

/// [`clean`] for a detail someone will read: a text longer than `max_chars` is cut at the
/// last word boundary that fits and ends with "…", never in the middle of a word.
pub fn clean_words(text: &str, max_chars: usize) -> String {
    let cleaned: String = text.chars().filter(|c| !c.is_control()).collect();
    if cleaned.chars().count() <= max_chars {
        return cleaned;
    }
    let room: String = cleaned.chars().take(max_chars.saturating_sub(1)).collect();
    let next_is_break = cleaned.chars().nth(room.chars().count()).is_some_and(char::is_whitespace);
    let kept = if next_is_break { room.as_str() } else { room.rsplit_once(char::is_whitespace).map_or("", |(k, _)| k) };
    format!("{}…", kept.trim_end_matches(|c: char| c.is_whitespace() || ",;:.".contains(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str) -> AuditFields<'_> {
        AuditFields {
            seq: 1,
            at: 10,
            actor_id: None,
            subject_id: Some("u"),
            organisation_id: None,
            action,
            outcome: "success",
            ip: Some("127.0.0.1"),
            user_agent: None,
            request_id: None,
            detail: None,
        }
    }

    #[test]
    fn any_change_changes_the_hash() {
        let a = chain_hash(GENESIS, &event("sign_in"));
        assert_eq!(a, chain_hash(GENESIS, &event("sign_in")));
        assert_ne!(a, chain_hash(GENESIS, &event("sign_out")));
        assert_ne!(a, chain_hash(&a, &event("sign_in")));
        let moved = AuditFields { subject_id: None, organisation_id: Some("u"), ..event("sign_in") };
        assert_ne!(a, chain_hash(GENESIS, &moved));
    }

    #[test]
    fn clean_strips_line_breaks() {
        assert_eq!(clean("evil\r\nforged line", 100), "evilforged line");
        assert_eq!(clean("abcdef", 3), "abc");
    }

    #[test]
    fn clean_words_cuts_between_words() {
        assert_eq!(clean_words("short\r\n", 60), "short");
        assert_eq!(
            clean_words("Too many wrong codes. To get a new activation email", 30),
            "Too many wrong codes. To get…"
        );
        assert_eq!(clean_words("one two three", 8), "one two…");
        assert_eq!(clean_words("one two three", 9), "one two…");
        assert_eq!(clean_words("Supercalifragilistic", 5), "…");
        for max in 1..40 {
            let cut = clean_words("The code is not right, check the text and try again", max);
            assert!(cut.chars().count() <= max, "{cut}");
            let words = cut.trim_end_matches('…');
            assert!("The code is not right, check the text and try again".starts_with(words));
        }
    }
}
