//! Group channels and DMs: `/api/v1/channels/*` and `/api/v1/users/@me/{channels,dms}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::FieldErrors;
use super::names::{ChannelName, Topic, Username};
use super::users::User;
use crate::Snowflake;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// A named channel with an owner, moderators and members.
    Group,
    /// A 1:1 conversation; exactly two members, no name, no owner.
    Dm,
}

/// What a member may do in a group channel. The owner and moderators rename, set the topic and
/// add and remove members; only the owner deletes the channel and appoints moderators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Owner,
    Moderator,
    Member,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Moderator => "moderator",
            Self::Member => "member",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "moderator" => Some(Self::Moderator),
            "member" => Some(Self::Member),
            _ => None,
        }
    }

    /// Owner and moderators manage the channel.
    pub fn moderates(self) -> bool {
        matches!(self, Self::Owner | Self::Moderator)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Member {
    pub user: User,
    pub role: MemberRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Channel {
    pub id: Snowflake,
    pub kind: ChannelKind,
    /// Group channels only.
    pub name: Option<String>,
    pub topic: Option<String>,
    /// Group channels only.
    pub owner_id: Option<Snowflake>,
    /// Everyone in the channel, the owner first, then by when they joined.
    pub members: Vec<Member>,
}

/// `POST /api/v1/channels`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannelRequest {
    /// 1 to 100 characters: any script or emoji; one script per word (no `Аlice` with a Cyrillic
    /// `А`); nothing invisible, blank (U+2800, U+3164, U+FFFC), private-use or direction-changing;
    /// at most five combining marks on a character. Stored trimmed and composed (NFC).
    #[schema(value_type = ChannelName)]
    pub name: String,
    /// 1 to 1024 characters: must show something; no control characters but line breaks, no bidi
    /// overrides or isolates, at most five combining marks on a character. Stored trimmed and
    /// composed (NFC).
    #[serde(default)]
    #[schema(value_type = Option<Topic>)]
    pub topic: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewChannel {
    pub name: ChannelName,
    pub topic: Option<Topic>,
}

impl CreateChannelRequest {
    pub fn parse(&self) -> Result<NewChannel, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.check("name", ChannelName::parse(&self.name));
        let topic = match &self.topic {
            None => Some(None),
            Some(t) => errors.check("topic", Topic::parse(t)).map(Some),
        };
        match (name, topic) {
            (Some(name), Some(topic)) if errors.is_empty() => Ok(NewChannel { name, topic }),
            _ => Err(errors),
        }
    }
}

/// `PATCH /api/v1/channels/{id}`: leave a field out to keep it; `"topic": null` clears the topic.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannelRequest {
    /// As when creating: 1 to 100 characters, with the rules of a display name.
    #[serde(default)]
    #[schema(value_type = Option<ChannelName>)]
    pub name: Option<String>,
    /// As when creating: 1 to 1024 characters, line breaks allowed.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<Topic>)]
    pub topic: Option<Option<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct ChannelChanges {
    pub name: Option<ChannelName>,
    pub topic: Option<Option<Topic>>,
}

impl UpdateChannelRequest {
    pub fn parse(&self) -> Result<ChannelChanges, FieldErrors> {
        let mut errors = FieldErrors::new();
        let changes = ChannelChanges {
            name: self
                .name
                .as_deref()
                .and_then(|n| errors.check("name", ChannelName::parse(n))),
            topic: match &self.topic {
                None => None,
                Some(None) => Some(None),
                Some(Some(t)) => errors.check("topic", Topic::parse(t)).map(Some),
            },
        };
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(errors)
        }
    }
}

/// `POST /api/v1/channels/{id}/members` and `POST /api/v1/users/@me/dms`: someone, by username.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsernameRequest {
    #[schema(value_type = Username)]
    pub username: String,
}

impl UsernameRequest {
    pub fn parse(&self) -> Result<Username, FieldErrors> {
        let mut errors = FieldErrors::new();
        errors
            .check("username", Username::parse(&self.username))
            .ok_or(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_name_may_hold_quotes_and_semicolons_as_plain_text() {
        let request = CreateChannelRequest {
            name: "Bob's room'; DROP TABLE channels; --".into(),
            topic: None,
        };
        assert_eq!(
            request.parse().unwrap().name.as_str(),
            "Bob's room'; DROP TABLE channels; --"
        );
    }

    #[test]
    fn an_empty_or_101_character_channel_name_is_refused() {
        for name in [String::new(), "  ".into(), "n".repeat(101)] {
            let request = CreateChannelRequest { name, topic: None };
            assert!(request.parse().unwrap_err().into_map().contains_key("name"));
        }
    }

    #[test]
    fn only_owners_and_moderators_moderate() {
        assert!(MemberRole::Owner.moderates());
        assert!(MemberRole::Moderator.moderates());
        assert!(!MemberRole::Member.moderates());
    }
}
