//! Channels: group channels and DMs (`/api/v1/channels/*`, `/api/v1/users/@me/{channels,dms}`),
//! and the text, voice and category channels of servers (`crate::api::guilds`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{FieldErrors, Invalid};
use super::names::{ChannelName, Topic, Username};
use super::users::User;
use crate::Snowflake;

/// What a channel is. Discord numbers them (`type`): text 0, DM 1, voice 2, group DM 3,
/// category 4; Natter names them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum ChannelKind {
    /// A named channel with an owner, moderators and members (Discord's group DM).
    Group,
    /// A 1:1 conversation; exactly two members, no name, no owner.
    Dm,
    /// A server's text channel.
    Text,
    /// A server's voice channel (it lists who is in it; calls come with the voice issue).
    Voice,
    /// A server's category: a heading that holds text and voice channels.
    Category,
}

impl ChannelKind {
    /// The name as stored and sent (`group`, `dm`, `text`, ...); parse with `str::parse`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether channels of this kind belong to a server (and follow its permissions).
    pub fn in_guild(self) -> bool {
        matches!(self, Self::Text | Self::Voice | Self::Category)
    }

    /// Whether messages are sent in channels of this kind (a category holds none).
    pub fn has_messages(self) -> bool {
        !matches!(self, Self::Category)
    }
}

/// What a member may do in a group channel. The owner and moderators rename, set the topic and
/// add and remove members; only the owner deletes the channel and appoints moderators.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum MemberRole {
    Owner,
    Moderator,
    Member,
}

impl MemberRole {
    /// The name as stored and sent (`owner`, `moderator`, `member`); parse with `str::parse`.
    pub fn as_str(self) -> &'static str {
        self.into()
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

/// A channel or DM. Its members are not inlined (a channel may have thousands): `member_count`
/// says how many there are, and they come in pages (`GET /api/v1/channels/{id}/members`, or the
/// gateway's op 8). A DM names the other person instead, as Discord's `recipients`.
///
/// `role` and `opened` describe the reader's own place in it, so they appear only where the
/// channel is shown to one member (READY, RESUMED, CHANNEL_CREATE, the REST answers), never on
/// events every member shares (CHANNEL_UPDATE).
///
/// A server's channel (`guild_id` set) has no members of its own: who sees it follows from the
/// server's roles and the channel's `permission_overwrites` (`crate::permissions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Channel {
    pub id: Snowflake,
    pub kind: ChannelKind,
    /// Group channels and servers' channels.
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Group channels only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<Snowflake>,
    /// How many members it has (a server's channel: how many members the server has). Left out
    /// of the channels of a server in READY and RESUMED, where the server says it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub member_count: u32,
    /// A server's channels only: the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guild_id: Option<Snowflake>,
    /// A server's text or voice channel: the category it is in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<Snowflake>,
    /// A server's channels: the order in the channel list (lower first), within its category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i32>,
    /// A server's text channels: seconds a member waits between messages (0 to 21600; 0 or
    /// left out is none). Members with MANAGE_MESSAGES or MANAGE_CHANNELS are not slowed.
    #[serde(default, skip_serializing_if = "no_slowmode")]
    pub rate_limit_per_user: Option<u32>,
    /// A server's channels: what roles and members may do here beyond (or short of) what they
    /// may in the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permission_overwrites: Vec<crate::permissions::Overwrite>,
    /// A server's channel, shown to one member over REST: what they may do in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<crate::permissions::Permissions>,
    /// DMs only: the other person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<User>,
    /// The reader's role in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<MemberRole>,
    /// DMs only: whether the reader opened it themselves. A DM someone else opened is a request
    /// until the reader opens it too (`POST /api/v1/users/@me/dms`); until then the other person
    /// does not see the reader's presence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened: Option<bool>,
}

impl Channel {
    /// The same channel as every member may see it: without the reader's own place in it.
    pub fn shared_view(mut self) -> Self {
        self.role = None;
        self.opened = None;
        self.permissions = None;
        self
    }

    /// A group channel or DM with these fields, and nothing of a server's.
    pub fn new(id: Snowflake, kind: ChannelKind) -> Self {
        Self {
            id,
            kind,
            name: None,
            topic: None,
            owner_id: None,
            member_count: 0,
            guild_id: None,
            parent_id: None,
            position: None,
            rate_limit_per_user: None,
            permission_overwrites: Vec::new(),
            permissions: None,
            recipients: Vec::new(),
            role: None,
            opened: None,
        }
    }

    /// Whether the reader owns or moderates it, when known.
    pub fn moderated(&self) -> Option<bool> {
        self.role.map(MemberRole::moderates)
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn no_slowmode(seconds: &Option<u32>) -> bool {
    seconds.is_none_or(|s| s == 0)
}

/// Most members one page of `GET /api/v1/channels/{id}/members` (or one op 8 request) returns.
pub const MAX_MEMBERS_PAGE: u32 = 1000;
/// Most ids one members request may name (`user_ids`).
pub const MAX_MEMBER_IDS: usize = 100;

/// `GET /api/v1/channels/{id}/members`: the query string, as sent ([`MembersQuery::parse`] checks
/// it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_ids: Option<String>,
}

impl MembersParams {
    pub fn parse(&self) -> Result<MembersQuery, FieldErrors> {
        MembersQuery::parse(
            self.after.as_deref(),
            self.limit.as_deref(),
            self.user_ids.as_deref(),
        )
    }
}

/// Which members to list: a page in user-id order after `after`, or the members among `user_ids`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembersQuery {
    Page {
        after: Option<Snowflake>,
        limit: u32,
    },
    Ids(Vec<Snowflake>),
}

impl MembersQuery {
    /// `after`, `limit` (1 to 1000, default 100) and `user_ids` (comma separated, at most 100;
    /// `after` and `limit` do not apply to it) as they come in a query string.
    pub fn parse(
        after: Option<&str>,
        limit: Option<&str>,
        user_ids: Option<&str>,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        if let Some(ids) = user_ids {
            if after.is_some() || limit.is_some() {
                errors.add("user_ids", "cannot be combined with `after` or `limit`");
                return Err(errors);
            }
            let mut parsed: Vec<Snowflake> = Vec::new();
            for id in ids.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match id.parse::<Snowflake>() {
                    Ok(id) => parsed.push(id),
                    Err(_) => {
                        errors.add("user_ids", format!("{id:?} is not a user id"));
                        return Err(errors);
                    }
                }
            }
            parsed.sort_unstable();
            parsed.dedup();
            if parsed.len() > MAX_MEMBER_IDS {
                errors.add("user_ids", format!("at most {MAX_MEMBER_IDS} ids"));
                return Err(errors);
            }
            return Ok(Self::Ids(parsed));
        }
        let after = match after {
            None => None,
            Some(raw) => errors.check(
                "after",
                raw.parse::<Snowflake>()
                    .map_err(|_| Invalid::new("must be a user id")),
            ),
        };
        let limit = match limit {
            None => Some(100),
            Some(raw) => errors.check(
                "limit",
                raw.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_MEMBERS_PAGE).contains(n))
                    .ok_or_else(|| Invalid::new(format!("must be 1 to {MAX_MEMBERS_PAGE}"))),
            ),
        };
        match limit {
            Some(limit) if errors.is_empty() => Ok(Self::Page { after, limit }),
            _ => Err(errors),
        }
    }
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
    /// A server's text channel: slowmode, 0 to 21600 seconds.
    #[serde(default)]
    pub rate_limit_per_user: Option<u32>,
    /// A server's text or voice channel: the category to move it into (`null`: none).
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<Option<String>>,
    /// A server's channel: its place in the list.
    #[serde(default)]
    pub position: Option<i32>,
}

#[derive(Debug, Clone, Default)]
pub struct ChannelChanges {
    pub name: Option<ChannelName>,
    pub topic: Option<Option<Topic>>,
    pub rate_limit_per_user: Option<u32>,
    pub parent_id: Option<Option<Snowflake>>,
    pub position: Option<i32>,
}

impl ChannelChanges {
    /// Whether the change touches what only a server's channel has.
    pub fn guild_only(&self) -> bool {
        self.rate_limit_per_user.is_some() || self.parent_id.is_some() || self.position.is_some()
    }
}

/// The longest slowmode: six hours, as on Discord.
pub const MAX_SLOWMODE: u32 = 21_600;

/// A slowmode in seconds, 0 to [`MAX_SLOWMODE`].
pub(crate) fn slowmode(seconds: u32) -> Result<u32, Invalid> {
    if seconds > MAX_SLOWMODE {
        return Err(Invalid::new(format!("must be 0 to {MAX_SLOWMODE} seconds")));
    }
    Ok(seconds)
}

/// An id in a body, or why it is not one.
pub(crate) fn id_field(raw: &str) -> Result<Snowflake, Invalid> {
    raw.parse::<Snowflake>()
        .map_err(|_| Invalid::new("must be an id (a decimal string)"))
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
            rate_limit_per_user: self
                .rate_limit_per_user
                .and_then(|s| errors.check("rate_limit_per_user", slowmode(s))),
            parent_id: match &self.parent_id {
                None => None,
                Some(None) => Some(None),
                Some(Some(id)) => errors.check("parent_id", id_field(id)).map(Some),
            },
            position: self.position,
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

/// `POST /api/v1/users/@me/channels`: open the DM with someone, by id (Discord's shape).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenDmRequest {
    #[schema(example = "175928847299117063")]
    pub recipient_id: String,
}

impl OpenDmRequest {
    pub fn parse(&self) -> Result<Snowflake, FieldErrors> {
        let mut errors = FieldErrors::new();
        errors
            .check(
                "recipient_id",
                self.recipient_id
                    .parse::<Snowflake>()
                    .map_err(|_| Invalid::new("must be a user id")),
            )
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
    fn a_members_page_is_after_an_id_with_a_limit_or_a_list_of_ids() {
        assert_eq!(
            MembersQuery::parse(None, None, None),
            Ok(MembersQuery::Page {
                after: None,
                limit: 100
            })
        );
        assert_eq!(
            MembersQuery::parse(Some("5"), Some("1000"), None),
            Ok(MembersQuery::Page {
                after: Some(Snowflake::from_u64(5)),
                limit: 1000
            })
        );
        assert_eq!(
            MembersQuery::parse(None, None, Some("3,1,3")),
            Ok(MembersQuery::Ids(vec![
                Snowflake::from_u64(1),
                Snowflake::from_u64(3)
            ]))
        );
        for (after, limit, ids, field) in [
            (None, Some("0"), None, "limit"),
            (None, Some("1001"), None, "limit"),
            (Some("x"), None, None, "after"),
            (None, None, Some("1,x"), "user_ids"),
            (Some("1"), None, Some("1"), "user_ids"),
        ] {
            let refused = MembersQuery::parse(after, limit, ids).unwrap_err();
            assert!(refused.into_map().contains_key(field), "{field}");
        }
        let many: Vec<String> = (1..=101).map(|n| n.to_string()).collect();
        assert!(MembersQuery::parse(None, None, Some(&many.join(","))).is_err());
    }

    #[test]
    fn the_shared_view_of_a_channel_drops_the_readers_own_place_in_it() {
        let mine = Channel {
            name: Some("room".into()),
            owner_id: Some(Snowflake::from_u64(2)),
            member_count: 3,
            role: Some(MemberRole::Moderator),
            ..Channel::new(Snowflake::from_u64(1), ChannelKind::Group)
        };
        assert_eq!(mine.moderated(), Some(true));
        let json = serde_json::to_value(mine.shared_view()).unwrap();
        assert!(json.get("role").is_none() && json.get("recipients").is_none());
        assert_eq!(json["member_count"], 3);
    }

    #[test]
    fn only_owners_and_moderators_moderate() {
        assert!(MemberRole::Owner.moderates());
        assert!(MemberRole::Moderator.moderates());
        assert!(!MemberRole::Member.moderates());
    }
}
