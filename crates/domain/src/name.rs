//! Names people see in pages and in other people's emails: a person's full name, an
//! organisation's name. One line, a bounded length, and no invisible formatting characters
//! (bidirectional overrides, zero-width characters), which could make a name in an email read
//! differently from what it is.

/// The most characters a name may have.
pub const MAX_NAME_CHARS: usize = 200;

/// Why a name was refused; the caller words the message for its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    Empty,
    TooLongOrNotOneLine,
    HiddenCharacters,
}

/// Characters that change how the text around them is shown without being seen themselves:
/// bidirectional controls, zero-width characters and other format characters.
pub fn is_hidden_formatting(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// The trimmed name, or why it cannot be one.
pub fn plain_name(raw: &str) -> Result<&str, NameProblem> {
    let name = raw.trim();
    if name.is_empty() {
        Err(NameProblem::Empty)
    } else if name.chars().any(is_hidden_formatting) {
        Err(NameProblem::HiddenCharacters)
    } else if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        Err(NameProblem::TooLongOrNotOneLine)
    } else {
        Ok(name)
    }
}

/// The words for a refused name, `what` being the field's name in a sentence ("Full name").
pub fn problem_message(what: &str, problem: NameProblem) -> String {
    match problem {
        NameProblem::Empty => format!("Enter the {}", what.to_lowercase()),
        NameProblem::TooLongOrNotOneLine => format!("{what} must be {MAX_NAME_CHARS} characters or fewer, on one line"),
        NameProblem::HiddenCharacters => {
            format!("{what} contains hidden formatting characters, often left by copying and pasting: type it in again")
        }
    }
}

/// Checks the name in a form's `field`: the trimmed name, or "" with a message pushed to
/// `fields` (`empty` when nothing was entered, else one worded from `what`).
pub fn check_field<'a>(
    raw: &'a str,
    field: &'static str,
    what: &str,
    empty: &str,
    fields: &mut Vec<crate::error::FieldError>,
) -> &'a str {
    match plain_name(raw) {
        Ok(name) => name,
        Err(problem) => {
            let message = if problem == NameProblem::Empty { empty.to_owned() } else { problem_message(what, problem) };
            fields.push(crate::error::FieldError { field, message });
            ""
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_hidden_characters_are_refused() {
        assert_eq!(plain_name("  Ada Lovelace "), Ok("Ada Lovelace"));
        assert_eq!(plain_name("Siân Ó Briain-Jones"), Ok("Siân Ó Briain-Jones"));
        assert_eq!(plain_name("محمد"), Ok("محمد"));
        for hidden in
            ["Ada\u{202E}ecalevoL", "Ada\u{200B}Lovelace", "\u{2066}Ada\u{2069}", "A\u{FEFF}da", "Ada\u{00AD}"]
        {
            assert_eq!(plain_name(hidden), Err(NameProblem::HiddenCharacters), "{hidden:?}");
        }
        assert_eq!(plain_name(" "), Err(NameProblem::Empty));
        assert_eq!(plain_name("Ada\nLovelace"), Err(NameProblem::TooLongOrNotOneLine));
        assert_eq!(plain_name(&"a".repeat(201)), Err(NameProblem::TooLongOrNotOneLine));
        assert_eq!(problem_message("Full name", NameProblem::Empty), "Enter the full name");
    }
}
