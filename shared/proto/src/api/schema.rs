//! The rules of the request fields, as the OpenAPI document shows them: each checked newtype
//! describes itself (length, pattern, allowed values) from the same constants its `parse`
//! enforces, and request bodies name the newtype as their field's schema. A test in auth checks
//! the served document against the validators themselves, so the two cannot drift apart.
//!
//! Free text (display names, channel names, topics, bios) is described by its length only, plus
//! a sentence: which characters it refuses is the validators' business (`names`), and too rich
//! for a pattern.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

use super::auth::Password;
use super::names::{Bio, ChannelName, DisplayName, GuildName, Nick, RoleName, Topic, Username};
use super::users::{AvatarUrl, Status};

/// What a username may be made of, as a regular expression (ECMA-262 and Rust's `regex` agree on
/// it): `a-z 0-9 _ .` in either case (stored lowercase), never two dots in a row. Its length is
/// `minLength` and `maxLength` beside it.
pub const USERNAME_PATTERN: &str = r"^\.?([A-Za-z0-9_]+\.)*[A-Za-z0-9_]*$";

/// The statuses a user may set on their profile, in the order the document lists them.
pub const SETTABLE_STATUSES: [Status; 4] =
    [Status::Online, Status::Idle, Status::Dnd, Status::Invisible];

fn string(min: usize, max: usize, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .description(Some(description))
}

/// Free text: trimmed, then `min` to `max` characters (Unicode scalar values, as JSON Schema
/// counts them).
fn free_text(min: usize, max: usize, what: &str, example: &str) -> RefOr<Schema> {
    string(
        min,
        max,
        &format!(
            "{what}: {min} to {max} characters once trimmed, any script or emoji. Control, \
             invisible and direction-changing characters, and text that shows nothing, are \
             refused (400 `validation_failed`)."
        ),
    )
    .examples([example])
    .into()
}

impl PartialSchema for Username {
    fn schema() -> RefOr<Schema> {
        string(
            Self::MIN,
            Self::MAX,
            "A unique account name: a-z, 0-9, `_` and `.`, no two dots in a row; \
             case-insensitive (stored lowercase).",
        )
        .pattern(Some(USERNAME_PATTERN))
        .examples(["alice"])
        .into()
    }
}

impl ToSchema for Username {}

impl PartialSchema for Password {
    fn schema() -> RefOr<Schema> {
        string(
            Self::MIN,
            Self::MAX,
            "Any characters, kept exactly as typed (never trimmed or truncated).",
        )
        .format(Some(SchemaFormat::Custom("password".to_owned())))
        .examples(["correct horse battery staple"])
        .into()
    }
}

impl ToSchema for Password {}

impl PartialSchema for DisplayName {
    fn schema() -> RefOr<Schema> {
        free_text(
            1,
            Self::MAX,
            "The name shown instead of the username",
            "Alice",
        )
    }
}

impl ToSchema for DisplayName {}

impl PartialSchema for ChannelName {
    fn schema() -> RefOr<Schema> {
        free_text(1, Self::MAX, "A group channel's name", "book club")
    }
}

impl ToSchema for ChannelName {}

impl PartialSchema for Topic {
    fn schema() -> RefOr<Schema> {
        free_text(
            1,
            Self::MAX,
            "A group channel's topic; newlines allowed",
            "Tuesdays",
        )
    }
}

impl ToSchema for Topic {}

impl PartialSchema for GuildName {
    fn schema() -> RefOr<Schema> {
        free_text(2, Self::MAX, "A server's name", "Book club")
    }
}

impl ToSchema for GuildName {}

impl PartialSchema for RoleName {
    fn schema() -> RefOr<Schema> {
        free_text(1, Self::MAX, "A role's name", "crew")
    }
}

impl ToSchema for RoleName {}

impl PartialSchema for Nick {
    fn schema() -> RefOr<Schema> {
        free_text(
            1,
            Self::MAX,
            "A member's nickname in one server",
            "Ann the Brave",
        )
    }
}

impl ToSchema for Nick {}

impl PartialSchema for Bio {
    fn schema() -> RefOr<Schema> {
        free_text(
            1,
            Self::MAX,
            "A few words about oneself; newlines allowed",
            "hello",
        )
    }
}

impl ToSchema for Bio {}

impl PartialSchema for AvatarUrl {
    fn schema() -> RefOr<Schema> {
        string(
            1,
            Self::MAX,
            "An image URL: http or https, with a host. Stored normalised, and the normalised \
             form must fit the length too.",
        )
        .format(Some(SchemaFormat::Custom("uri".to_owned())))
        .pattern(Some("^[Hh][Tt][Tt][Pp][Ss]?://"))
        .examples(["https://cdn.example.com/a.png"])
        .into()
    }
}

impl ToSchema for AvatarUrl {}

/// A status a user may set (`offline` is what others see when none of their sessions lives, and
/// cannot be set), for the OpenAPI document.
pub struct SettableStatus;

impl PartialSchema for SettableStatus {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(SETTABLE_STATUSES.map(Status::as_str)))
            .description(Some(
                "The status others see (`invisible` shows as `offline`); `offline` cannot be set.",
            ))
            .into()
    }
}

impl ToSchema for SettableStatus {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settable_statuses_are_exactly_those_the_parser_takes() {
        for status in [
            Status::Online,
            Status::Idle,
            Status::Dnd,
            Status::Invisible,
            Status::Offline,
        ] {
            assert_eq!(
                Status::parse_settable(status.as_str()).is_ok(),
                SETTABLE_STATUSES.contains(&status),
                "{status:?}"
            );
        }
    }
}
