//! Reactions: any Unicode emoji, once per person per emoji on a message, as on Discord.
//!
//! Routes (on an edge): `PUT|DELETE /api/v1/channels/{c}/messages/{m}/reactions/{emoji}/@me`,
//! `DELETE …/reactions/{emoji}/{user}` (someone else's: MANAGE_MESSAGES), `DELETE …/reactions`
//! (all of them: MANAGE_MESSAGES), `GET …/reactions/{emoji}?after=&limit=` (who, paged).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Snowflake;

/// An emoji as Discord shows it: `id` is always null (no custom emoji here), `name` the emoji.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct Emoji {
    pub id: Option<Snowflake>,
    pub name: String,
}

impl Emoji {
    pub fn unicode(name: &str) -> Self {
        Self {
            id: None,
            name: name.to_owned(),
        }
    }
}

/// One emoji's reactions on a message, as a reader sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reaction {
    pub emoji: Emoji,
    pub count: u32,
    /// Whether the reader is among them.
    pub me: bool,
}

/// A reaction's emoji: one emoji of the Unicode emoji list (with or without its variation
/// selector, skin tones and sequences included), kept in its fully qualified form so `❤` and
/// `❤️` are one reaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReactionEmoji(String);

impl ReactionEmoji {
    pub fn parse(s: &str) -> Result<Self, String> {
        match emojis::get(s) {
            Some(emoji) => Ok(Self(emoji.as_str().to_owned())),
            None => Err(format!(
                "a reaction is one Unicode emoji; {s:?} is not one (custom emoji are not supported)"
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The most users one page of `GET …/reactions/{emoji}` lists.
pub const MAX_REACTORS_PAGE: usize = 100;

/// `GET /api/v1/channels/{c}/messages/{m}/reactions/{emoji}`: the query string, as sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReactorsQuery {
    /// Users with ids above this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// 1 to 100, default 25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

impl ReactorsQuery {
    /// After which user id, and how many.
    pub fn parse(&self) -> Result<(Snowflake, usize), String> {
        let after = match &self.after {
            None => Snowflake::from_u64(0),
            Some(raw) => raw
                .parse()
                .map_err(|_| "`after` must be a user id".to_owned())?,
        };
        let limit = match &self.limit {
            None => 25,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=MAX_REACTORS_PAGE).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "`limit` must be a number from 1 to {MAX_REACTORS_PAGE}"
                    ));
                }
            },
        };
        Ok((after, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_unicode_emoji_is_a_reaction_and_nothing_else_is() {
        for ok in ["👍", "🔥", "👍🏿", "🇫🇷", "👩‍👩‍👧‍👦", "❤️"] {
            assert!(ReactionEmoji::parse(ok).is_ok(), "{ok:?} refused");
        }
        for bad in ["", "a", ":smile:", "👍👍", "<:custom:123>", "👍 ", "1"] {
            assert!(ReactionEmoji::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_heart_with_or_without_its_variation_selector_is_one_reaction() {
        assert_eq!(
            ReactionEmoji::parse("\u{2764}").unwrap(),
            ReactionEmoji::parse("\u{2764}\u{FE0F}").unwrap()
        );
    }

    #[test]
    fn reactor_pages_are_one_to_a_hundred_after_an_id() {
        let query = |after: Option<&str>, limit: Option<&str>| ReactorsQuery {
            after: after.map(str::to_owned),
            limit: limit.map(str::to_owned),
        };
        assert_eq!(
            query(None, None).parse().unwrap(),
            (Snowflake::from_u64(0), 25)
        );
        assert_eq!(
            query(Some("7"), Some("100")).parse().unwrap(),
            (Snowflake::from_u64(7), 100)
        );
        assert!(query(None, Some("0")).parse().is_err());
        assert!(query(None, Some("101")).parse().is_err());
        assert!(query(Some("x"), None).parse().is_err());
    }
}
