//! Names people type: usernames, display names, channel names and topics. Each is a newtype whose
//! constructor is the only place its rule lives.
//!
//! Free text (display names, channel names, topics, bios) may hold any letters, emoji and
//! punctuation, including quotes and semicolons: values only ever reach SQL as bound parameters.
//! What is refused is text that would look different from what it is: control characters, bidi
//! overrides, invisible characters, and stacks of combining marks ("zalgo").

use std::fmt;

use serde::Serialize;

use super::error::Invalid;

/// A unique account name: stored lowercase, 2 to 32 of `a-z`, `0-9`, `_` and `.`, with no two dots
/// in a row. Case-insensitive: `Alice` is `alice`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Username(String);

impl Username {
    pub const MIN: usize = 2;
    pub const MAX: usize = 32;

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let lower = s.to_ascii_lowercase();
        let chars = lower.chars().count();
        if !(Self::MIN..=Self::MAX).contains(&chars) {
            return Err(Invalid::new(format!(
                "must be {} to {} characters long (it is {chars})",
                Self::MIN,
                Self::MAX
            )));
        }
        if let Some(bad) = lower
            .chars()
            .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'))
        {
            return Err(Invalid::new(format!(
                "may only use a-z, 0-9, '_' and '.', not {bad:?}"
            )));
        }
        if lower.contains("..") {
            return Err(Invalid::new("may not have two dots in a row"));
        }
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({})", self.0)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks free text: trimmed, `min..=max` characters, newlines only where `multiline`, and nothing
/// invisible or misleading.
pub(crate) fn free_text(
    s: &str,
    min: usize,
    max: usize,
    multiline: bool,
) -> Result<String, Invalid> {
    let text = s.trim();
    let chars = text.chars().count();
    if chars < min {
        return Err(Invalid::new(if chars == 0 {
            "may not be empty".to_owned()
        } else {
            format!("must be at least {min} characters long")
        }));
    }
    if chars > max {
        return Err(Invalid::new(format!(
            "may be at most {max} characters long (it is {chars})"
        )));
    }
    let mut combining_run = 0;
    for c in text.chars() {
        if c.is_control() && !(multiline && c == '\n') {
            return Err(Invalid::new(format!(
                "may not contain control characters such as {c:?}"
            )));
        }
        if is_invisible_format(c) {
            return Err(Invalid::new(format!(
                "may not contain invisible or direction-changing characters such as U+{:04X}",
                u32::from(c)
            )));
        }
        combining_run = if is_combining_mark(c) {
            combining_run + 1
        } else {
            0
        };
        if combining_run > MAX_COMBINING_MARKS {
            return Err(Invalid::new(
                "may not stack more than 3 accents or other combining marks on one letter",
            ));
        }
    }
    if !text
        .chars()
        .any(|c| !c.is_whitespace() && !matches!(c, '\u{200D}' | '\u{FE00}'..='\u{FE0F}'))
    {
        return Err(Invalid::new("must contain something visible"));
    }
    Ok(text.to_owned())
}

const MAX_COMBINING_MARKS: usize = 3;

/// Unicode format characters that render as nothing or reorder text (bidi overrides, zero-width
/// spaces, tags). The zero-width joiner and variation selectors stay allowed: emoji use them.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}' | '\u{200C}' | '\u{200E}' | '\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E0FFF}')
}

fn is_combining_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{0483}'..='\u{0489}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}')
}

macro_rules! free_text_newtype {
    ($(#[$doc:meta])* $name:ident, min = $min:expr, max = $max:expr, multiline = $multi:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize)]
        pub struct $name(String);

        impl $name {
            pub const MAX: usize = $max;

            pub fn parse(s: &str) -> Result<Self, Invalid> {
                free_text(s, $min, $max, $multi).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

free_text_newtype!(
    /// The name shown instead of the username: 1 to 32 characters, any script or emoji.
    DisplayName, min = 1, max = 32, multiline = false
);
free_text_newtype!(
    /// A group channel's name: 1 to 100 characters.
    ChannelName, min = 1, max = 100, multiline = false
);
free_text_newtype!(
    /// A group channel's topic: up to 1024 characters, newlines allowed.
    Topic, min = 1, max = 1024, multiline = true
);
free_text_newtype!(
    /// A few words about oneself: up to 190 characters, newlines allowed.
    Bio, min = 1, max = 190, multiline = true
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_is_lowercased_so_names_differing_in_case_are_one_name() {
        assert_eq!(
            Username::parse("Alice.B_42").unwrap().as_str(),
            "alice.b_42"
        );
    }

    #[test]
    fn a_username_of_one_or_thirty_three_characters_is_refused() {
        assert!(Username::parse("a").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("ab").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn a_username_with_spaces_symbols_sql_or_non_ascii_letters_is_refused() {
        for bad in [
            "al ice",
            "alice!",
            "bob'--",
            "x;drop",
            "élodie",
            "аlice",
            "a\u{200B}b",
            "a..b",
            "",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_username_error_names_the_offending_character() {
        let err = Username::parse("bob'").unwrap_err();
        assert!(err.0.contains("'\\''"), "{err}");
    }

    #[test]
    fn a_display_name_may_use_any_script_emoji_and_punctuation() {
        for ok in [
            "Zoë",
            "山田太郎",
            "O'Brien; \"the\" -- best",
            "👩‍👩‍👧 family",
            "❤️",
        ] {
            assert!(DisplayName::parse(ok).is_ok(), "{ok:?} refused");
        }
    }

    #[test]
    fn a_display_name_is_trimmed_and_may_not_be_blank() {
        assert_eq!(DisplayName::parse("  Bo  ").unwrap().as_str(), "Bo");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("").is_err());
    }

    #[test]
    fn a_display_name_counts_characters_not_bytes() {
        assert!(DisplayName::parse(&"é".repeat(32)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(33)).is_err());
    }

    #[test]
    fn control_invisible_and_direction_changing_characters_are_refused() {
        for bad in [
            "a\u{0}b",
            "a\nb",
            "\u{202E}evil",
            "in\u{200B}visible",
            "\u{FEFF}bom",
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_name_of_only_joiners_and_variation_selectors_is_refused() {
        assert!(DisplayName::parse("\u{200D}\u{FE0F}").is_err());
    }

    #[test]
    fn a_letter_with_a_stack_of_combining_marks_is_refused() {
        assert!(DisplayName::parse("e\u{301}").is_ok());
        assert!(DisplayName::parse("z\u{301}\u{302}\u{303}\u{304}\u{305}").is_err());
    }

    #[test]
    fn a_topic_and_a_bio_may_span_lines_but_a_name_may_not() {
        assert!(Topic::parse("line one\nline two").is_ok());
        assert!(Bio::parse("hi\nthere").is_ok());
        assert!(ChannelName::parse("one\ntwo").is_err());
    }

    #[test]
    fn a_bio_is_at_most_190_characters() {
        assert!(Bio::parse(&"b".repeat(190)).is_ok());
        assert!(Bio::parse(&"b".repeat(191)).is_err());
    }
}
