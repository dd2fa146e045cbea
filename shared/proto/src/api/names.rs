//! Names people type: usernames, display names, channel names and topics. Each is a newtype whose
//! constructor is the only place its rule lives.
//!
//! Free text (display names, channel names, topics, bios) may hold any script, emoji and
//! punctuation, including quotes and semicolons: values only ever reach SQL as bound parameters.
//! It is stored in Unicode's composed form (NFC), trimmed, and checked by [`super::text`]: names
//! must look like what they are (nothing invisible, one script per word), and every kind must show
//! something and may not stack combining marks ("zalgo").

use std::fmt;

use serde::Serialize;

use unicode_normalization::UnicodeNormalization;

use super::error::Invalid;
use super::text::{self, Kind};

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

/// Checks free text: composed (NFC), trimmed, `min..=max` characters, and the rules of `kind`.
pub(crate) fn free_text(s: &str, min: usize, max: usize, kind: Kind) -> Result<String, Invalid> {
    let text: String = s.trim().nfc().collect();
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
    text::check(&text, kind).map_err(Invalid)?;
    Ok(text)
}

macro_rules! free_text_newtype {
    ($(#[$doc:meta])* $name:ident, min = $min:expr, max = $max:expr, kind = $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize)]
        pub struct $name(String);

        impl $name {
            pub const MAX: usize = $max;

            pub fn parse(s: &str) -> Result<Self, Invalid> {
                free_text(s, $min, $max, $kind).map(Self)
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
    /// The name shown instead of the username: 1 to 32 characters, any script or emoji, one
    /// script per word, nothing invisible.
    DisplayName, min = 1, max = 32, kind = Kind::Name
);
free_text_newtype!(
    /// A group channel's name: 1 to 100 characters, with the rules of a display name.
    ChannelName, min = 1, max = 100, kind = Kind::Name
);
free_text_newtype!(
    /// A group channel's topic: up to 1024 characters, newlines allowed.
    Topic, min = 1, max = 1024, kind = Kind::Prose
);
free_text_newtype!(
    /// A few words about oneself: up to 190 characters, newlines allowed.
    Bio, min = 1, max = 190, kind = Kind::Prose
);
free_text_newtype!(
    /// A server's name: 2 to 100 characters, with the rules of a display name.
    GuildName, min = 2, max = 100, kind = Kind::Name
);
free_text_newtype!(
    /// A role's name: 1 to 100 characters, with the rules of a display name.
    RoleName, min = 1, max = 100, kind = Kind::Name
);
free_text_newtype!(
    /// A member's nickname in one server: 1 to 32 characters, as a display name.
    Nick, min = 1, max = 32, kind = Kind::Name
);
free_text_newtype!(
    /// Why a moderator did something (the `X-Audit-Log-Reason` header, kept in the audit log):
    /// up to 512 characters, newlines allowed.
    AuditReason, min = 1, max = 512, kind = Kind::Prose
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
            "O'Brien; \"the\" -- best",
            "❤️",
            "Chloé ☕",
            "Nguyễn Thị Minh Khai",
        ] {
            assert!(DisplayName::parse(ok).is_ok(), "{ok:?} refused");
        }
    }

    #[test]
    fn names_in_many_scripts_pass() {
        for ok in [
            "山田太郎",
            "やまだ たろう",
            "ヤマダ・タロウ",
            "محمد علي",
            "अनुराग शर्मा",
            "श्री",
            "Νίκος Παπαδόπουλος",
            "Дмитрий",
            "Дима (Dima)",
            "김민준",
            "สมชาย ใจดี",
            "דָּוִד",
            "Yuki 雪",
            "東京Tokyo",
            "Ali علی",
            "Հայկ",
        ] {
            assert!(DisplayName::parse(ok).is_ok(), "{ok:?} refused");
        }
    }

    #[test]
    fn joiners_pass_where_the_writing_needs_them() {
        for ok in [
            // ZWNJ between joining letters (Persian), ZWJ after a virama (Sinhala, Devanagari).
            "می\u{200C}خواهم",
            "ශ්\u{200D}රී",
            "क्\u{200D}ष",
            "क्\u{200C}ष",
        ] {
            assert!(DisplayName::parse(ok).is_ok(), "{ok:?} refused");
        }
        for bad in ["a\u{200D}b", "a\u{200C}b", "\u{200D}", "Bob\u{200D}"] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn emoji_sequences_with_joiners_skin_tones_flags_and_keycaps_pass() {
        for ok in [
            "👩\u{200D}👩\u{200D}👧 family",
            "👍🏽",
            "🧑🏿\u{200D}💻 dev",
            "🏳\u{FE0F}\u{200D}🌈",
            "❤\u{FE0F}\u{200D}🔥",
            "🏃\u{200D}♀\u{FE0F}",
            "🇯🇵 Kenji",
            "🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F} fan",
            "1\u{FE0F}\u{20E3}",
        ] {
            assert!(DisplayName::parse(ok).is_ok(), "{ok:?} refused");
        }
    }

    #[test]
    fn a_tag_outside_an_emoji_flag_is_refused() {
        for bad in ["Bob\u{E0041}", "🏴\u{E0067}\u{E0062}", "\u{E0067}\u{E007F}"] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_display_name_is_trimmed_and_may_not_be_blank() {
        assert_eq!(DisplayName::parse("  Bo  ").unwrap().as_str(), "Bo");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("").is_err());
    }

    #[test]
    fn names_that_render_blank_are_refused() {
        for bad in [
            "\u{2800}",
            "\u{FFFC}",
            "\u{3164}",
            "\u{115F}\u{1160}",
            "\u{FFA0}",
            "\u{200B}",
            "\u{00A0}\u{2800}",
            "\u{200D}\u{FE0F}",
            "\u{E000}",
        ] {
            let err = DisplayName::parse(bad).unwrap_err();
            assert!(!err.0.is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn a_name_may_not_hide_blank_look_alikes_or_placeholders_beside_letters() {
        let err = DisplayName::parse("Bob\u{2800}\u{2800}").unwrap_err();
        assert!(err.0.contains("U+2800") && err.0.contains("space"), "{err}");
        let err = DisplayName::parse("Bob\u{FFFC}").unwrap_err();
        assert!(err.0.contains("U+FFFC"), "{err}");
        assert!(ChannelName::parse("general\u{3164}").is_err());
    }

    #[test]
    fn a_display_name_counts_characters_not_bytes() {
        assert!(DisplayName::parse(&"é".repeat(32)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(33)).is_err());
    }

    #[test]
    fn a_name_is_stored_composed_so_its_length_is_what_people_see() {
        let decomposed = "e\u{301}".repeat(32);
        let name = DisplayName::parse(&decomposed).unwrap();
        assert_eq!(name.as_str(), "é".repeat(32));
    }

    #[test]
    fn control_invisible_and_direction_changing_characters_are_refused() {
        for bad in [
            "a\u{0}b",
            "a\nb",
            "\u{202E}evil",
            "in\u{200B}visible",
            "\u{FEFF}bom",
            "left\u{200E}mark",
            "soft\u{AD}hyphen",
            "line\u{2028}separator",
            "\u{FFFF}",
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_name_of_only_joiners_and_variation_selectors_is_refused() {
        assert!(DisplayName::parse("\u{200D}\u{FE0F}").is_err());
        assert!(DisplayName::parse("a\u{FE0F}\u{FE0F}").is_err());
    }

    #[test]
    fn a_letter_with_a_stack_of_combining_marks_is_refused() {
        assert!(DisplayName::parse("e\u{301}").is_ok());
        // Pointed, cantillated Hebrew: shin dot, dagesh, qamats, an accent and a meteg.
        assert!(DisplayName::parse("שׁ\u{5BC}\u{5B8}\u{591}\u{5BD}").is_ok());
        assert!(DisplayName::parse("q\u{301}\u{302}\u{303}\u{304}\u{305}").is_ok());
        assert!(DisplayName::parse("q\u{301}\u{302}\u{303}\u{304}\u{305}\u{306}").is_err());
        let zalgo = format!("a{}", "\u{591}".repeat(30));
        let err = DisplayName::parse(&zalgo).unwrap_err();
        assert!(err.0.contains("combining marks"), "{err}");
        assert!(Topic::parse(&zalgo).is_err());
        assert!(Bio::parse(&format!("hello {zalgo}")).is_err());
    }

    #[test]
    fn cyrillic_and_greek_look_alikes_mixed_into_a_latin_name_are_refused() {
        for bad in [
            "\u{410}lice",
            "p\u{430}ypal",
            "\u{391}dmin",
            "Bob \u{410}lice",
        ] {
            let err = DisplayName::parse(bad).unwrap_err();
            assert!(err.0.contains("one script"), "{bad:?}: {err}");
        }
        let err = DisplayName::parse("\u{410}lice").unwrap_err();
        assert!(
            err.0.contains("Cyrillic and Latin") || err.0.contains("Latin and Cyrillic"),
            "{err}"
        );
        assert!(ChannelName::parse("g\u{435}neral").is_err());
    }

    #[test]
    fn private_use_and_unassigned_characters_are_refused_in_names() {
        assert!(DisplayName::parse("Bob \u{E000}").is_err());
        assert!(DisplayName::parse("Bob \u{10FFFD}").is_err());
        assert!(DisplayName::parse("Bob \u{0378}").is_err());
    }

    #[test]
    fn a_topic_and_a_bio_may_span_lines_but_a_name_may_not() {
        assert!(Topic::parse("line one\nline two").is_ok());
        assert!(Bio::parse("hi\nthere").is_ok());
        assert!(ChannelName::parse("one\ntwo").is_err());
    }

    #[test]
    fn a_topic_and_a_bio_keep_the_formatting_characters_of_real_text() {
        // Khmer separates words with zero-width spaces; Hebrew uses direction marks.
        assert!(Topic::parse("ខ្ញុំ\u{200B}ស្រលាញ់\u{200B}អ្នក").is_ok());
        assert!(Bio::parse("שלום\u{200F}!").is_ok());
        assert!(Bio::parse("mixed Дима and Dima, p\u{430}ypal").is_ok());
        assert!(Bio::parse("\u{202E}gnp.exe").is_err());
        assert!(Topic::parse("\u{2067}isolate\u{2069}").is_err());
        assert!(Topic::parse("\u{200B}\u{2800}").is_err());
    }

    #[test]
    fn a_bio_is_at_most_190_characters() {
        assert!(Bio::parse(&"b".repeat(190)).is_ok());
        assert!(Bio::parse(&"b".repeat(191)).is_err());
    }

    mod properties {
        use icu_properties::CodePointSetData;
        use icu_properties::props::DefaultIgnorableCodePoint;
        use proptest::prelude::*;

        use super::super::*;

        fn default_ignorables() -> Vec<char> {
            CodePointSetData::new::<DefaultIgnorableCodePoint>()
                .iter_ranges()
                .flat_map(|range| range.filter_map(char::from_u32))
                .collect()
        }

        proptest! {
            #[test]
            fn a_name_that_parses_parses_again_to_itself(s in "\\PC{0,40}") {
                if let Ok(name) = DisplayName::parse(&s) {
                    prop_assert_eq!(DisplayName::parse(name.as_str()).unwrap(), name);
                }
            }

            #[test]
            fn text_of_only_invisible_characters_and_spaces_is_never_a_name_or_topic(
                s in proptest::collection::vec(
                    prop_oneof![
                        proptest::sample::select(default_ignorables()),
                        proptest::sample::select(vec![' ', '\u{A0}', '\u{3000}', '\u{2800}']),
                    ],
                    1..20,
                )
            ) {
                let text: String = s.into_iter().collect();
                prop_assert!(DisplayName::parse(&text).is_err());
                prop_assert!(Topic::parse(&text).is_err());
            }
        }
    }
}
