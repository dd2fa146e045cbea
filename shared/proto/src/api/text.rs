//! What text people type may hold, decided from Unicode's own data rather than from hand-kept
//! lists: ICU4X's character properties (general category, `Default_Ignorable_Code_Point`, emoji,
//! joining type, combining class, bidi class) and UTS #39's confusable skeletons and script sets
//! (`unicode-security`).
//!
//! Three kinds of text, checked by [`check`]:
//!
//! - **Names** (display names, channel names) stand for someone or something in a list, so they
//!   must look like what they are. Nothing invisible, except the joiners that emoji, Indic and
//!   Arabic-script writing need, and only where they need them (the contexts are IDNA's, RFC 5892
//!   appendix A, plus emoji ZWJ and tag sequences); nothing that looks like a space but is not
//!   (U+2800, whose confusable skeleton is a space); nothing private-use or unassigned, which every
//!   device draws differently; and one script per word at UTS #39's "moderately restrictive"
//!   level, so `Аlice` with a Cyrillic `А` is refused while `Дима (Dima)` and `Yuki 雪` pass.
//! - **Prose** (topics, bios) and **messages** may hold any script and the formatting characters
//!   real text carries (zero-width spaces in Thai and Khmer, direction marks in Hebrew and Arabic,
//!   soft hyphens from a pasted page), but never explicit bidi formatting (overrides, embeddings,
//!   isolates), which shows characters in an order other than the one they are in.
//! - Every kind must show something: a letter, digit, punctuation or symbol that is neither
//!   default-ignorable (U+3164 HANGUL FILLER is a "letter"), nor a blank look-alike (U+2800), nor
//!   a stand-in for an object that is not there (U+FFFC, line-break class CB). And no character
//!   may carry more than [`MAX_MARKS`] combining marks.

use icu_properties::props::{
    BidiClass, BidiControl, CanonicalCombiningClass, DefaultIgnorableCodePoint,
    ExtendedPictographic, GeneralCategory, JoiningType, LineBreak, NoncharacterCodePoint,
    PrependedConcatenationMark, VariationSelector,
};
use icu_properties::props::{BinaryProperty, EmojiModifier};
use icu_properties::{CodePointMapData, CodePointSetData};
use unicode_script::{Script, UnicodeScript};
use unicode_security::mixed_script::AugmentedScriptSet;

/// The most combining marks one character may carry. Pointed, cantillated Hebrew (a shin with its
/// dot, a dagesh, a vowel, an accent and a meteg) is the deepest stack everyday writing uses;
/// Vietnamese, Thai, Tibetan stacks and Indic clusters use fewer, and "zalgo" text uses dozens.
pub(crate) const MAX_MARKS: usize = 5;

/// Which rules a piece of text follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One line that names someone or something: the strictest rules.
    Name,
    /// A topic or a bio: line breaks and the formatting characters of real text.
    Prose,
    /// A message: as prose, plus tabs and carriage returns (code, pasted text).
    Message,
}

const ZWNJ: char = '\u{200C}';
const ZWJ: char = '\u{200D}';
const CANCEL_TAG: char = '\u{E007F}';

/// Checks `text` against the rules of `kind`. The error completes a sentence whose subject is the
/// text ("may not contain ...").
pub(crate) fn check(text: &str, kind: Kind) -> Result<(), String> {
    let chars: Vec<char> = text.chars().collect();
    let mut marks = 0;
    let mut visible = false;
    let mut in_tag_sequence = false;
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let category = general_category(c);

        if kind == Kind::Name && is_tag(c) {
            // An emoji tag sequence (a subdivision flag): an emoji, tags, then CANCEL TAG.
            if !(in_tag_sequence || prev.is_some_and(is_pictographic)) {
                return Err(invisible(c));
            }
            in_tag_sequence = c != CANCEL_TAG;
            continue;
        }
        if in_tag_sequence {
            return Err(invisible(chars[i - 1]));
        }

        match c {
            '\n' if kind != Kind::Name => {}
            '\t' | '\r' if kind == Kind::Message => {}
            '\n' => return Err("may not contain line breaks".to_owned()),
            _ if category == GeneralCategory::Control => {
                return Err(format!(
                    "may not contain control characters such as {}",
                    code(c)
                ));
            }
            _ if matches!(
                category,
                GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
            ) =>
            {
                return Err(format!(
                    "may not contain {} (a line or paragraph separator); use a line break",
                    code(c)
                ));
            }
            _ if has::<NoncharacterCodePoint>(c) => {
                return Err(format!(
                    "may not contain {}, which is not a character",
                    code(c)
                ));
            }
            _ if has::<BidiControl>(c) && !is_direction_mark(c, kind) => {
                return Err(format!(
                    "may not contain characters that change the direction of text, such as {}",
                    code(c)
                ));
            }
            _ => {}
        }

        if kind == Kind::Name {
            name_character(&chars, i, category)?;
        }

        if matches!(
            category,
            GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark
        ) {
            marks += 1;
            if marks > MAX_MARKS {
                return Err(format!(
                    "may not stack more than {MAX_MARKS} accents or other combining marks on one \
                     character"
                ));
            }
        } else if !(category == GeneralCategory::Format || has::<DefaultIgnorableCodePoint>(c)) {
            // A joiner or other invisible character between marks does not start a new stack.
            marks = 0;
        }

        visible = visible || shows_something(c, category);
    }
    if in_tag_sequence {
        return Err(invisible(chars[chars.len() - 1]));
    }
    if !visible {
        return Err("must contain something visible".to_owned());
    }
    Ok(())
}

/// The rules only names have, for the character at `i`.
fn name_character(chars: &[char], i: usize, category: GeneralCategory) -> Result<(), String> {
    let c = chars[i];
    let prev = i.checked_sub(1).map(|p| chars[p]);
    let next = chars.get(i + 1).copied();
    let allowed_invisible = match c {
        ZWJ => after_virama(prev) || joins_emoji(chars, i),
        ZWNJ => after_virama(prev) || joins_letters(chars, i),
        // A variation selector picks a glyph for the character before it: one, never a stack.
        _ if has::<VariationSelector>(c) => {
            prev.is_some_and(|p| !has::<VariationSelector>(p) && !p.is_whitespace())
        }
        _ => false,
    };
    if allowed_invisible {
        return Ok(());
    }
    if has::<DefaultIgnorableCodePoint>(c)
        || (category == GeneralCategory::Format && !has::<PrependedConcatenationMark>(c))
    {
        return Err(invisible(c));
    }
    match category {
        GeneralCategory::PrivateUse => {
            return Err(format!(
                "may not contain private-use characters such as {}, which every device draws \
                 differently",
                code(c)
            ));
        }
        GeneralCategory::Unassigned => {
            return Err(format!(
                "may not contain {}, which Unicode has not assigned",
                code(c)
            ));
        }
        _ => {}
    }
    if is_object_replacement(c) {
        return Err(format!(
            "may not contain {}, which stands in for an object that is not there",
            code(c)
        ));
    }
    if looks_like_space(c) {
        return Err(format!(
            "may not contain {}, which looks like a space; use a plain space",
            code(c)
        ));
    }
    // Words are checked when their last character is reached.
    if !c.is_whitespace() && next.is_none_or(char::is_whitespace) {
        let start = chars[..i]
            .iter()
            .rposition(|c| c.is_whitespace())
            .map_or(0, |p| p + 1);
        one_script_per_word(&chars[start..=i])?;
    }
    Ok(())
}

/// UTS #39 "moderately restrictive": a word is in one script, or Latin with Han and Japanese or
/// Korean scripts, or Latin with one other recommended script that is neither Cyrillic nor Greek
/// (the two whose letters pass for Latin ones). Common characters (digits, punctuation, emoji) go
/// with any script.
fn one_script_per_word(word: &[char]) -> Result<(), String> {
    let text: String = word.iter().collect();
    if !AugmentedScriptSet::for_str(&text).is_empty() {
        return Ok(());
    }
    let mut without_latin = AugmentedScriptSet::default();
    for &c in word {
        let set = AugmentedScriptSet::for_char(c);
        if !set.base.contains_script(Script::Latin) {
            without_latin.intersect_with(set);
        }
    }
    let allowed = if without_latin.hanb || without_latin.jpan || without_latin.kore {
        true
    } else {
        let mut others = without_latin.base.iter();
        match (others.next(), others.next()) {
            (Some(script), None) => {
                script.is_recommended() && script != Script::Cyrillic && script != Script::Greek
            }
            _ => false,
        }
    };
    if allowed {
        return Ok(());
    }
    let mut scripts: Vec<&str> = Vec::new();
    for &c in word {
        let script = c.script();
        if !matches!(script, Script::Common | Script::Inherited | Script::Unknown)
            && !scripts.contains(&script.full_name())
        {
            scripts.push(script.full_name());
        }
    }
    Err(format!(
        "mixes {} letters in the word '{text}', which is how look-alikes of other names are \
         made; write each word in one script",
        and_list(&scripts)
    ))
}

fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Whether `c` shows something on its own: a letter, digit, punctuation mark or symbol that is not
/// default-ignorable, not blank, and not a placeholder. Unassigned and private-use characters show
/// as a box or a glyph of a newer or private font.
fn shows_something(c: char, category: GeneralCategory) -> bool {
    use GeneralCategory as G;
    let candidate = !matches!(
        category,
        G::SpaceSeparator
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::Control
            | G::Format
            | G::Surrogate
            | G::NonspacingMark
            | G::EnclosingMark
            | G::SpacingMark
    );
    candidate
        && !has::<DefaultIgnorableCodePoint>(c)
        && !is_object_replacement(c)
        && !looks_like_space(c)
}

/// A character that is not white space but whose UTS #39 skeleton is (U+2800 BRAILLE PATTERN
/// BLANK).
fn looks_like_space(c: char) -> bool {
    if c.is_whitespace() {
        return false;
    }
    let mut buf = [0; 4];
    let mut skeleton = unicode_security::skeleton(c.encode_utf8(&mut buf)).peekable();
    skeleton.peek().is_some() && skeleton.all(char::is_whitespace)
}

/// U+FFFC, the only character of line-break class CB: a placeholder for an embedded object.
fn is_object_replacement(c: char) -> bool {
    CodePointMapData::<LineBreak>::new().get(c) == LineBreak::ContingentBreak
}

/// LRM, RLM and ALM act like an invisible letter of one direction and reorder nothing on their
/// own; prose and messages need them. Explicit overrides, embeddings and isolates are refused.
fn is_direction_mark(c: char, kind: Kind) -> bool {
    kind != Kind::Name
        && matches!(
            CodePointMapData::<BidiClass>::new().get(c),
            BidiClass::LeftToRight | BidiClass::RightToLeft | BidiClass::ArabicLetter
        )
}

fn is_tag(c: char) -> bool {
    ('\u{E0020}'..=CANCEL_TAG).contains(&c)
}

fn is_pictographic(c: char) -> bool {
    has::<ExtendedPictographic>(c)
}

/// IDNA's rule for both joiners: right after a virama (Indic conjuncts and half forms).
fn after_virama(prev: Option<char>) -> bool {
    prev.is_some_and(|p| {
        CodePointMapData::<CanonicalCombiningClass>::new().get(p) == CanonicalCombiningClass::Virama
    })
}

/// An emoji ZWJ sequence: a pictograph (with its variation selector or skin tone) before the
/// joiner, a pictograph after it.
fn joins_emoji(chars: &[char], i: usize) -> bool {
    let base = chars[..i]
        .iter()
        .rev()
        .find(|&&c| !has::<VariationSelector>(c) && !has::<EmojiModifier>(c));
    base.is_some_and(|&c| is_pictographic(c))
        && chars.get(i + 1).is_some_and(|&c| is_pictographic(c))
}

/// IDNA's rule for ZWNJ between letters (Persian, Urdu): a left- or dual-joining letter before
/// it and a right- or dual-joining one after it, transparent marks aside.
fn joins_letters(chars: &[char], i: usize) -> bool {
    let joining = |&c: &char| CodePointMapData::<JoiningType>::new().get(c);
    let before = chars[..i]
        .iter()
        .rev()
        .map(joining)
        .find(|&t| t != JoiningType::Transparent);
    let after = chars[i + 1..]
        .iter()
        .map(joining)
        .find(|&t| t != JoiningType::Transparent);
    matches!(
        before,
        Some(JoiningType::LeftJoining | JoiningType::DualJoining)
    ) && matches!(
        after,
        Some(JoiningType::RightJoining | JoiningType::DualJoining)
    )
}

fn general_category(c: char) -> GeneralCategory {
    CodePointMapData::<GeneralCategory>::new().get(c)
}

fn has<P: BinaryProperty>(c: char) -> bool {
    CodePointSetData::new::<P>().contains(c)
}

fn invisible(c: char) -> String {
    format!("may not contain invisible characters such as {}", code(c))
}

fn code(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}
