//! Message search, in Discord's shape: `GET /api/v1/guilds/{id}/messages/search` and
//! `GET /api/v1/channels/{id}/messages/search` on an edge, answered from the search service's
//! index (`proto::search` carries the question to it over NATS).
//!
//! The query arrives as strings ([`SearchQuery`]) and [`SearchQuery::parse`] turns it into a
//! checked [`SearchFilter`] or says which parameter is wrong, so bad input never reaches the index.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Snowflake;

/// The longest `content` a search takes, in characters.
pub const MAX_CONTENT_CHARS: usize = 512;
/// The most results one page holds (Discord's 25).
pub const MAX_LIMIT: usize = 25;
/// The furthest a search pages (`offset`): past it, narrow the search instead (Discord's 9,975).
pub const MAX_OFFSET: usize = 5_000;

/// What a message has, for `has=` (Discord's names). Natter makes no embeds of its own: a link is
/// what would carry one, so `embed` finds messages with links.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Has {
    Link,
    File,
    Image,
    Video,
    Embed,
}

impl Has {
    /// The term the index keeps for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Link => "link",
            Self::File => "file",
            Self::Image => "image",
            Self::Video => "video",
            Self::Embed => "embed",
        }
    }

    /// What `message` has, each once.
    pub fn of(message: &super::messages::Message) -> Vec<Self> {
        let mut has = Vec::new();
        let text = message.content.to_ascii_lowercase();
        if text.contains("http://") || text.contains("https://") {
            has.extend([Self::Link, Self::Embed]);
        }
        if !message.attachments.is_empty() {
            has.push(Self::File);
        }
        let kind = |prefix: &str| {
            message.attachments.iter().any(|a| {
                a.content_type
                    .as_deref()
                    .is_some_and(|t| t.starts_with(prefix))
            })
        };
        if kind("image/") {
            has.push(Self::Image);
        }
        if kind("video/") {
            has.push(Self::Video);
        }
        has
    }
}

/// The query string of a search, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words the message's text holds, all of them (at most 512 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Only messages by this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_id: Option<String>,
    /// Only messages that mention this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mentions: Option<String>,
    /// Only messages with this: `link`, `file`, `image`, `video` or `embed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has: Option<String>,
    /// Only this channel (of the server searched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// Only messages newer than this id (a Snowflake made from a time finds messages after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_id: Option<String>,
    /// Only messages older than this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_id: Option<String>,
    /// `true`: only pinned messages; `false`: only messages not pinned (as they are now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<bool>)]
    pub pinned: Option<String>,
    /// Results to skip, 0 to 5,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<u32>, minimum = 0, maximum = 5000)]
    pub offset: Option<String>,
    /// 1 to 25, default 25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 25)]
    pub limit: Option<String>,
}

/// A checked search: what the index is asked (with the channels it may answer from added by the
/// edge), and which page of results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_id: Option<Snowflake>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mentions: Option<Snowflake>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has: Option<Has>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Snowflake>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_id: Option<Snowflake>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_id: Option<Snowflake>,
    /// Pinned (`true`) or not (`false`), now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<bool>,
    pub offset: usize,
    pub limit: usize,
}

impl SearchQuery {
    /// The checked filter, or what is wrong with the first bad parameter.
    pub fn parse(&self) -> Result<SearchFilter, String> {
        fn id(name: &str, raw: &Option<String>) -> Result<Option<Snowflake>, String> {
            raw.as_deref()
                .map(|raw| {
                    raw.parse::<Snowflake>()
                        .map_err(|_| format!("`{name}` must be an id"))
                })
                .transpose()
        }
        fn number(
            name: &str,
            raw: &Option<String>,
            range: std::ops::RangeInclusive<usize>,
            default: usize,
        ) -> Result<usize, String> {
            match raw.as_deref() {
                None => Ok(default),
                Some(raw) => match raw.parse::<usize>() {
                    Ok(n) if range.contains(&n) => Ok(n),
                    _ => Err(format!(
                        "`{name}` must be a number from {} to {}",
                        range.start(),
                        range.end()
                    )),
                },
            }
        }
        let content = match self.content.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) if text.chars().count() > MAX_CONTENT_CHARS => {
                return Err(format!(
                    "`content` may hold at most {MAX_CONTENT_CHARS} characters"
                ));
            }
            Some(text) if text.chars().any(char::is_control) => {
                return Err("`content` may not hold control characters".to_owned());
            }
            Some(text) => Some(text.to_owned()),
        };
        let has =
            match self.has.as_deref() {
                None => None,
                Some(raw) => Some(raw.parse::<Has>().map_err(|_| {
                    "`has` must be one of link, file, image, video, embed".to_owned()
                })?),
            };
        let pinned = match self.pinned.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err("`pinned` must be true or false".to_owned()),
        };
        let min_id = id("min_id", &self.min_id)?;
        let max_id = id("max_id", &self.max_id)?;
        if let (Some(min), Some(max)) = (min_id, max_id)
            && min >= max
        {
            return Err("`min_id` must be below `max_id`".to_owned());
        }
        Ok(SearchFilter {
            content,
            author_id: id("author_id", &self.author_id)?,
            mentions: id("mentions", &self.mentions)?,
            has,
            channel_id: id("channel_id", &self.channel_id)?,
            min_id,
            max_id,
            pinned,
            offset: number("offset", &self.offset, 0..=MAX_OFFSET, 0)?,
            limit: number("limit", &self.limit, 1..=MAX_LIMIT, MAX_LIMIT)?,
        })
    }
}

/// One message of a search result: the hit itself (`hit: true`) or one around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SearchMessage {
    #[serde(flatten)]
    pub message: super::messages::Message,
    /// This is the message the search found; the others are its context.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hit: bool,
}

/// The answer to a search, as Discord's: how many messages match in all, and one page of them,
/// newest first, each as a list of the hit with up to two messages on either side (oldest
/// last, as history lists them), plus the current profile of every author shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    pub total_results: u64,
    pub messages: Vec<Vec<SearchMessage>>,
    pub authors: Vec<crate::api::users::User>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Result<SearchFilter, String> {
        let text: String = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let q: SearchQuery = serde_json::from_value(serde_json::Value::Object(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect(),
        ))
        .unwrap_or_else(|e| panic!("{text}: {e}"));
        q.parse()
    }

    #[test]
    fn an_empty_query_pages_everything_from_the_newest() {
        let f = query(&[]).unwrap();
        assert_eq!((f.offset, f.limit, f.content), (0, MAX_LIMIT, None));
    }

    #[test]
    fn every_filter_is_read() {
        let f = query(&[
            ("content", " budget  "),
            ("author_id", "42"),
            ("mentions", "7"),
            ("has", "file"),
            ("channel_id", "9"),
            ("min_id", "1"),
            ("max_id", "2"),
            ("pinned", "true"),
            ("offset", "25"),
            ("limit", "10"),
        ])
        .unwrap();
        assert_eq!(f.content.as_deref(), Some("budget"));
        assert_eq!(f.author_id, Some(Snowflake::from_u64(42)));
        assert_eq!(f.has, Some(Has::File));
        assert_eq!(f.pinned, Some(true));
        assert_eq!(query(&[("pinned", "false")]).unwrap().pinned, Some(false));
        assert_eq!((f.offset, f.limit), (25, 10));
    }

    #[test]
    fn bad_input_says_which_parameter() {
        let long = "a".repeat(MAX_CONTENT_CHARS + 1);
        for (pairs, names) in [
            (vec![("content", long.as_str())], "content"),
            (vec![("author_id", "ann")], "author_id"),
            (vec![("has", "cats")], "has"),
            (vec![("pinned", "yes")], "pinned"),
            (vec![("offset", "5001")], "offset"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "26")], "limit"),
            (vec![("min_id", "5"), ("max_id", "5")], "min_id"),
        ] {
            let e = query(&pairs).unwrap_err();
            assert!(e.contains(names), "{pairs:?}: {e}");
        }
    }
}
