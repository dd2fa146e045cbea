//! Servers (Discord's guilds): `/api/v1/guilds/*` and `/api/v1/users/@me/guilds`. A server has
//! an owner, roles, channels in categories, and members; what each member may do follows from
//! `crate::permissions`. Invites are in [`super::invites`], the audit log in [`super::audit`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::channels::{Channel, ChannelKind, id_field, slowmode};
use super::error::{FieldErrors, Invalid};
use super::names::{ChannelName, GuildName, Nick, RoleName, Topic};
use super::users::{AvatarUrl, User};
use crate::Snowflake;
use crate::permissions::{Overwrite, OverwriteType, Permissions, Rank, Subject};

/// A server, as everyone in it sees it (GUILD_UPDATE, `GET /api/v1/users/@me/guilds`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Guild {
    pub id: Snowflake,
    pub name: String,
    /// An image URL, if it has an icon.
    pub icon: Option<String>,
    pub owner_id: Snowflake,
    /// How many members it has.
    pub member_count: u32,
}

/// A server as one member sees it (GUILD_CREATE, READY, `GET /api/v1/guilds/{id}`): its roles,
/// the channels the member may view (never the others), and the member's own member object. Never
/// its member list: members come in pages (`GET /api/v1/guilds/{id}/members`, gateway op 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserGuild {
    pub id: Snowflake,
    pub name: String,
    pub icon: Option<String>,
    pub owner_id: Snowflake,
    pub member_count: u32,
    pub roles: Vec<Role>,
    pub channels: Vec<Channel>,
    pub member: GuildMember,
}

impl UserGuild {
    /// The server without anyone's view of it.
    pub fn guild(&self) -> Guild {
        Guild {
            id: self.id,
            name: self.name.clone(),
            icon: self.icon.clone(),
            owner_id: self.owner_id,
            member_count: self.member_count,
        }
    }
}

/// A role: a name, a colour, a place in the hierarchy and a permission set. `@everyone` has the
/// server's id and position 0; every member has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Role {
    pub id: Snowflake,
    pub name: String,
    /// An RGB colour as an integer (0: none).
    pub color: u32,
    /// Members with it are shown apart in the member list.
    pub hoist: bool,
    /// Higher is above: nobody manages a role at or above their own highest.
    pub position: i32,
    pub permissions: Permissions,
    /// Anyone may mention it.
    pub mentionable: bool,
}

/// Someone in a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GuildMember {
    pub user: User,
    /// Their name in this server, if they chose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
    /// Their roles other than @everyone.
    pub roles: Vec<Snowflake>,
    /// Unix milliseconds.
    pub joined_at: u64,
    /// Timed out until this moment (Unix milliseconds): they may read, not send, react or speak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication_disabled_until: Option<u64>,
}

impl GuildMember {
    /// Whether they are timed out at `now_ms`.
    pub fn timed_out_at(&self, now_ms: u64) -> bool {
        self.communication_disabled_until
            .is_some_and(|until| until > now_ms)
    }

    /// Who they are to `crate::permissions::effective` in the server `guild_id` owned by
    /// `owner_id`, whose roles (every one, @everyone included) are `roles`, at `now_ms`.
    pub fn subject(
        &self,
        guild_id: Snowflake,
        owner_id: Snowflake,
        roles: &[Role],
        now_ms: u64,
    ) -> Subject {
        let role = |id: Snowflake| roles.iter().find(|r| r.id == id);
        Subject {
            guild_id,
            user_id: self.user.id,
            owner: self.user.id == owner_id,
            everyone: role(guild_id).map_or(Permissions::empty(), |r| r.permissions),
            roles: self
                .roles
                .iter()
                .filter_map(|id| role(*id).map(|r| (r.id, r.permissions)))
                .collect(),
            timed_out: self.timed_out_at(now_ms),
        }
    }

    /// Where they stand in the hierarchy of a server owned by `owner_id` with these roles.
    pub fn rank(&self, owner_id: Snowflake, roles: &[Role]) -> Rank {
        Rank {
            owner: self.user.id == owner_id,
            highest: self
                .roles
                .iter()
                .filter_map(|id| roles.iter().find(|r| r.id == *id))
                .map(|r| r.position)
                .max()
                .unwrap_or(0),
        }
    }
}

/// The most a time-out may last: 28 days, as on Discord.
pub const MAX_TIME_OUT_MS: u64 = 28 * 24 * 60 * 60 * 1000;

/// `POST /api/v1/guilds`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGuildRequest {
    /// 2 to 100 characters, with the rules of a display name.
    #[schema(value_type = GuildName)]
    pub name: String,
    /// An http or https image URL of at most 2048 characters.
    #[serde(default)]
    #[schema(value_type = Option<AvatarUrl>)]
    pub icon: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewGuild {
    pub name: GuildName,
    pub icon: Option<AvatarUrl>,
}

impl CreateGuildRequest {
    pub fn parse(&self) -> Result<NewGuild, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.check("name", GuildName::parse(&self.name));
        let icon = match &self.icon {
            None => Some(None),
            Some(icon) => errors.check("icon", AvatarUrl::parse(icon)).map(Some),
        };
        match (name, icon) {
            (Some(name), Some(icon)) if errors.is_empty() => Ok(NewGuild { name, icon }),
            _ => Err(errors),
        }
    }
}

/// `PATCH /api/v1/guilds/{id}`: leave a field out to keep it; `"icon": null` removes the icon.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGuildRequest {
    #[serde(default)]
    #[schema(value_type = Option<GuildName>)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<AvatarUrl>)]
    pub icon: Option<Option<String>>,
    /// The owner only: give the server to another member.
    #[serde(default)]
    pub owner_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct GuildChanges {
    pub name: Option<GuildName>,
    pub icon: Option<Option<AvatarUrl>>,
    pub owner_id: Option<Snowflake>,
}

impl UpdateGuildRequest {
    pub fn parse(&self) -> Result<GuildChanges, FieldErrors> {
        let mut errors = FieldErrors::new();
        let changes = GuildChanges {
            name: self
                .name
                .as_deref()
                .and_then(|n| errors.check("name", GuildName::parse(n))),
            icon: match &self.icon {
                None => None,
                Some(None) => Some(None),
                Some(Some(url)) => errors.check("icon", AvatarUrl::parse(url)).map(Some),
            },
            owner_id: self
                .owner_id
                .as_deref()
                .and_then(|id| errors.check("owner_id", id_field(id))),
        };
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(errors)
        }
    }
}

/// An overwrite as sent: the role or member it is for, and permission sets as decimal strings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverwriteRequest {
    /// `POST /api/v1/guilds/{id}/channels` only: the role's or member's id (the path names it in
    /// `PUT /api/v1/channels/{id}/permissions/{overwrite_id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// 0 for a role, 1 for a member.
    #[serde(rename = "type")]
    pub kind: OverwriteType,
    #[serde(default)]
    #[schema(value_type = Option<Permissions>)]
    pub allow: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Permissions>)]
    pub deny: Option<String>,
}

impl OverwriteRequest {
    /// The overwrite, for `id` (the path's, or its own).
    pub fn parse(&self, id: Option<Snowflake>) -> Result<Overwrite, FieldErrors> {
        let mut errors = FieldErrors::new();
        let id = match (id, &self.id) {
            (Some(id), _) => Some(id),
            (None, Some(raw)) => errors.check("id", id_field(raw)),
            (None, None) => {
                errors.add("id", "name the role or member the overwrite is for");
                None
            }
        };
        let set = |errors: &mut FieldErrors, field: &str, raw: &Option<String>| match raw {
            None => Some(Permissions::empty()),
            Some(raw) => errors.check(field, Permissions::parse(raw).map_err(Invalid)),
        };
        let allow = set(&mut errors, "allow", &self.allow);
        let deny = set(&mut errors, "deny", &self.deny);
        match (id, allow, deny) {
            (Some(id), Some(allow), Some(deny)) if errors.is_empty() => Ok(Overwrite {
                id,
                kind: self.kind,
                allow,
                deny: deny - allow,
            }),
            _ => Err(errors),
        }
    }
}

/// The most overwrites one channel may have.
pub const MAX_OVERWRITES: usize = 100;

/// `POST /api/v1/guilds/{id}/channels`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGuildChannelRequest {
    /// 1 to 100 characters, with the rules of a display name.
    #[schema(value_type = ChannelName)]
    pub name: String,
    /// `text` (the default), `voice` or `category`.
    #[serde(default)]
    pub kind: Option<ChannelKind>,
    #[serde(default)]
    #[schema(value_type = Option<Topic>)]
    pub topic: Option<String>,
    /// The category to put it in.
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub position: Option<i32>,
    /// Slowmode, 0 to 21600 seconds.
    #[serde(default)]
    pub rate_limit_per_user: Option<u32>,
    #[serde(default)]
    pub permission_overwrites: Option<Vec<OverwriteRequest>>,
}

#[derive(Debug, Clone)]
pub struct NewGuildChannel {
    pub name: ChannelName,
    pub kind: ChannelKind,
    pub topic: Option<Topic>,
    pub parent_id: Option<Snowflake>,
    pub position: Option<i32>,
    pub rate_limit_per_user: u32,
    pub overwrites: Vec<Overwrite>,
}

impl CreateGuildChannelRequest {
    pub fn parse(&self) -> Result<NewGuildChannel, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.check("name", ChannelName::parse(&self.name));
        let kind = self.kind.unwrap_or(ChannelKind::Text);
        if !kind.in_guild() {
            errors.add("kind", "must be text, voice or category");
        }
        let topic = match &self.topic {
            None => None,
            Some(t) => errors.check("topic", Topic::parse(t)),
        };
        let parent_id = match &self.parent_id {
            None => None,
            Some(_) if kind == ChannelKind::Category => {
                errors.add("parent_id", "a category cannot be in another category");
                None
            }
            Some(raw) => errors.check("parent_id", id_field(raw)),
        };
        let rate_limit_per_user = errors
            .check(
                "rate_limit_per_user",
                slowmode(self.rate_limit_per_user.unwrap_or(0)),
            )
            .unwrap_or(0);
        let mut overwrites = Vec::new();
        let requested = self.permission_overwrites.as_deref().unwrap_or_default();
        if requested.len() > MAX_OVERWRITES {
            errors.add(
                "permission_overwrites",
                format!("at most {MAX_OVERWRITES} overwrites"),
            );
        }
        for (i, overwrite) in requested.iter().enumerate() {
            match overwrite.parse(None) {
                Ok(parsed) if overwrites.iter().any(|o: &Overwrite| o.id == parsed.id) => {
                    errors.add(
                        &format!("permission_overwrites[{i}]"),
                        "two overwrites name the same id",
                    );
                }
                Ok(parsed) => overwrites.push(parsed),
                Err(e) => {
                    for (field, why) in e.into_map() {
                        errors.add(&format!("permission_overwrites[{i}].{field}"), why);
                    }
                }
            }
        }
        match name {
            Some(name) if errors.is_empty() => Ok(NewGuildChannel {
                name,
                kind,
                topic,
                parent_id,
                position: self.position,
                rate_limit_per_user,
                overwrites,
            }),
            _ => Err(errors),
        }
    }
}

/// One entry of `PATCH /api/v1/guilds/{id}/channels` (a reorder): a channel's new place, and
/// optionally its new category (`null`: out of any).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPositionRequest {
    pub id: String,
    #[serde(default)]
    pub position: Option<i32>,
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPosition {
    pub id: Snowflake,
    pub position: Option<i32>,
    pub parent_id: Option<Option<Snowflake>>,
}

/// The most channels one reorder may name.
pub const MAX_REORDER: usize = 500;

/// Checks a reorder: each entry names a channel once.
pub fn parse_positions(
    entries: &[ChannelPositionRequest],
) -> Result<Vec<ChannelPosition>, FieldErrors> {
    let mut errors = FieldErrors::new();
    if entries.is_empty() || entries.len() > MAX_REORDER {
        errors.add("channels", format!("name 1 to {MAX_REORDER} channels"));
        return Err(errors);
    }
    let mut parsed: Vec<ChannelPosition> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(id) = errors.check(&format!("[{i}].id"), id_field(&entry.id)) else {
            continue;
        };
        if parsed.iter().any(|p| p.id == id) {
            errors.add(&format!("[{i}].id"), "names a channel named before");
            continue;
        }
        let parent_id = match &entry.parent_id {
            None => None,
            Some(None) => Some(None),
            Some(Some(raw)) => match errors.check(&format!("[{i}].parent_id"), id_field(raw)) {
                Some(id) => Some(Some(id)),
                None => continue,
            },
        };
        parsed.push(ChannelPosition {
            id,
            position: entry.position,
            parent_id,
        });
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

/// `POST /api/v1/guilds/{id}/roles`: every field may be left out (a role named "new role", no
/// permissions).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoleRequest {
    #[serde(default)]
    #[schema(value_type = Option<RoleName>)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Permissions>)]
    pub permissions: Option<String>,
    /// An RGB colour, 0 to 16777215.
    #[serde(default)]
    pub color: Option<u32>,
    #[serde(default)]
    pub hoist: Option<bool>,
    #[serde(default)]
    pub mentionable: Option<bool>,
}

/// `PATCH /api/v1/guilds/{id}/roles/{role}`: leave a field out to keep it. `position` moves the
/// role (the roles between shift by one).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoleRequest {
    #[serde(default)]
    #[schema(value_type = Option<RoleName>)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Permissions>)]
    pub permissions: Option<String>,
    #[serde(default)]
    pub color: Option<u32>,
    #[serde(default)]
    pub hoist: Option<bool>,
    #[serde(default)]
    pub mentionable: Option<bool>,
    /// 1 or more (@everyone alone is at 0).
    #[serde(default)]
    pub position: Option<i32>,
}

/// A checked role change; creating a role is a change of "new role" with no permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleChanges {
    pub name: Option<RoleName>,
    pub permissions: Option<Permissions>,
    pub color: Option<u32>,
    pub hoist: Option<bool>,
    pub mentionable: Option<bool>,
    pub position: Option<i32>,
}

/// The largest RGB colour.
pub const MAX_COLOR: u32 = 0xFF_FF_FF;

fn role_changes(
    name: Option<&str>,
    permissions: Option<&str>,
    color: Option<u32>,
    position: Option<i32>,
) -> Result<RoleChanges, FieldErrors> {
    let mut errors = FieldErrors::new();
    let changes = RoleChanges {
        name: name.and_then(|n| errors.check("name", RoleName::parse(n))),
        permissions: permissions
            .and_then(|p| errors.check("permissions", Permissions::parse(p).map_err(Invalid))),
        color: color.and_then(|c| {
            errors.check(
                "color",
                (c <= MAX_COLOR)
                    .then_some(c)
                    .ok_or_else(|| Invalid::new("must be an RGB colour, 0 to 16777215")),
            )
        }),
        hoist: None,
        mentionable: None,
        position: position.and_then(|p| {
            errors.check(
                "position",
                (p >= 1)
                    .then_some(p)
                    .ok_or_else(|| Invalid::new("must be 1 or more (@everyone alone is at 0)")),
            )
        }),
    };
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(errors)
    }
}

impl CreateRoleRequest {
    pub fn parse(&self) -> Result<RoleChanges, FieldErrors> {
        Ok(RoleChanges {
            hoist: self.hoist,
            mentionable: self.mentionable,
            ..role_changes(
                self.name.as_deref(),
                self.permissions.as_deref(),
                self.color,
                None,
            )?
        })
    }
}

impl UpdateRoleRequest {
    pub fn parse(&self) -> Result<RoleChanges, FieldErrors> {
        Ok(RoleChanges {
            hoist: self.hoist,
            mentionable: self.mentionable,
            ..role_changes(
                self.name.as_deref(),
                self.permissions.as_deref(),
                self.color,
                self.position,
            )?
        })
    }
}

/// `PATCH /api/v1/guilds/{id}/members/{user}`: leave a field out to keep it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemberRequest {
    /// 1 to 32 characters; `null` removes it. Needs MANAGE_NICKNAMES (CHANGE_NICKNAME for one's
    /// own).
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<Nick>)]
    pub nick: Option<Option<String>>,
    /// Every role the member should have (other than @everyone). Needs MANAGE_ROLES, and only
    /// roles below one's own highest change.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Time the member out until this moment (Unix milliseconds, at most 28 days ahead); `null`
    /// ends a time-out. Needs MODERATE_MEMBERS.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<u64>)]
    pub communication_disabled_until: Option<Option<u64>>,
    /// Server-mute the member in voice (MUTE_MEMBERS): they cannot publish their microphone.
    /// Only while they are in one of the server's voice channels.
    #[serde(default)]
    pub mute: Option<bool>,
    /// Server-deafen the member in voice (DEAFEN_MEMBERS): they hear nothing.
    #[serde(default)]
    pub deaf: Option<bool>,
    /// Move the member to another voice channel of the server, or (`null`) disconnect them from
    /// voice (MOVE_MEMBERS). Only while they are in one of the server's voice channels.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub channel_id: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberChanges {
    pub nick: Option<Option<Nick>>,
    pub roles: Option<Vec<Snowflake>>,
    pub communication_disabled_until: Option<Option<u64>>,
    pub mute: Option<bool>,
    pub deaf: Option<bool>,
    /// `Some(None)`: disconnect from voice; `Some(Some(c))`: move to `c`.
    pub channel_id: Option<Option<Snowflake>>,
}

impl MemberChanges {
    /// Whether it changes anything of the member's voice state.
    pub fn touches_voice(&self) -> bool {
        self.mute.is_some() || self.deaf.is_some() || self.channel_id.is_some()
    }
}

/// Most roles one member may be given at once.
pub const MAX_MEMBER_ROLES: usize = 250;

impl UpdateMemberRequest {
    /// Checks the change at `now_ms` (a time-out must end in the future, within 28 days).
    pub fn parse(&self, now_ms: u64) -> Result<MemberChanges, FieldErrors> {
        let mut errors = FieldErrors::new();
        let nick = match &self.nick {
            None => None,
            Some(None) => Some(None),
            Some(Some(n)) => errors.check("nick", Nick::parse(n)).map(Some),
        };
        let roles = self.roles.as_ref().and_then(|raw| {
            if raw.len() > MAX_MEMBER_ROLES {
                errors.add("roles", format!("at most {MAX_MEMBER_ROLES} roles"));
                return None;
            }
            let mut ids = Vec::new();
            for id in raw {
                ids.push(errors.check("roles", id_field(id))?);
            }
            ids.sort_unstable();
            ids.dedup();
            Some(ids)
        });
        let until = match self.communication_disabled_until {
            None => None,
            Some(None) => Some(None),
            Some(Some(until)) if until <= now_ms => {
                errors.add(
                    "communication_disabled_until",
                    "must be in the future (send null to end a time-out)",
                );
                None
            }
            Some(Some(until)) if until - now_ms > MAX_TIME_OUT_MS => {
                errors.add(
                    "communication_disabled_until",
                    "may be at most 28 days ahead",
                );
                None
            }
            Some(Some(until)) => Some(Some(until)),
        };
        let channel_id = match &self.channel_id {
            None => None,
            Some(None) => Some(None),
            Some(Some(id)) => errors.check("channel_id", id_field(id)).map(Some),
        };
        if errors.is_empty() {
            Ok(MemberChanges {
                nick,
                roles,
                communication_disabled_until: until,
                mute: self.mute,
                deaf: self.deaf,
                channel_id,
            })
        } else {
            Err(errors)
        }
    }
}

/// `PUT /api/v1/guilds/{id}/bans/{user}`: optionally delete what they sent in the last
/// `delete_message_seconds` (0 to 604800, a week).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    #[serde(default)]
    pub delete_message_seconds: Option<u32>,
}

/// The most of someone's messages a ban may delete: the last week's, as on Discord.
pub const MAX_BAN_DELETE_SECONDS: u32 = 604_800;

impl BanRequest {
    /// Seconds of messages to delete (0: none).
    pub fn parse(&self) -> Result<u32, FieldErrors> {
        let seconds = self.delete_message_seconds.unwrap_or(0);
        if seconds > MAX_BAN_DELETE_SECONDS {
            let mut errors = FieldErrors::new();
            errors.add(
                "delete_message_seconds",
                format!("must be 0 to {MAX_BAN_DELETE_SECONDS} (a week)"),
            );
            return Err(errors);
        }
        Ok(seconds)
    }
}

/// A ban (`GET /api/v1/guilds/{id}/bans`): who, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Ban {
    pub user: User,
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guild_needs_a_name_of_two_characters_and_an_http_icon() {
        let ok = CreateGuildRequest {
            name: "Book club".into(),
            icon: Some("https://cdn.example.com/i.png".into()),
        };
        assert_eq!(ok.parse().unwrap().name.as_str(), "Book club");
        let bad = CreateGuildRequest {
            name: "x".into(),
            icon: Some("javascript:alert(1)".into()),
        };
        let fields = bad.parse().unwrap_err().into_map();
        assert!(fields.contains_key("name") && fields.contains_key("icon"));
    }

    #[test]
    fn a_channel_is_text_by_default_and_a_category_sits_in_no_category() {
        let request: CreateGuildChannelRequest =
            serde_json::from_value(serde_json::json!({"name": "general"})).unwrap();
        assert_eq!(request.parse().unwrap().kind, ChannelKind::Text);
        let nested: CreateGuildChannelRequest = serde_json::from_value(serde_json::json!(
            {"name": "c", "kind": "category", "parent_id": "5"}
        ))
        .unwrap();
        assert!(
            nested
                .parse()
                .unwrap_err()
                .into_map()
                .contains_key("parent_id")
        );
        let dm: CreateGuildChannelRequest =
            serde_json::from_value(serde_json::json!({"name": "d", "kind": "dm"})).unwrap();
        assert!(dm.parse().unwrap_err().into_map().contains_key("kind"));
        let slow: CreateGuildChannelRequest = serde_json::from_value(serde_json::json!(
            {"name": "s", "rate_limit_per_user": 21601}
        ))
        .unwrap();
        assert!(
            slow.parse()
                .unwrap_err()
                .into_map()
                .contains_key("rate_limit_per_user")
        );
    }

    #[test]
    fn an_overwrite_names_its_target_and_takes_known_permission_bits_only() {
        let request: OverwriteRequest = serde_json::from_value(
            serde_json::json!({"id": "9", "type": 0, "allow": "1024", "deny": "3072"}),
        )
        .unwrap();
        let parsed = request.parse(None).unwrap();
        assert_eq!(parsed.allow, Permissions::VIEW_CHANNEL);
        assert_eq!(
            parsed.deny,
            Permissions::SEND_MESSAGES,
            "allow wins over deny"
        );
        let unknown: OverwriteRequest =
            serde_json::from_value(serde_json::json!({"type": 1, "allow": "4096"})).unwrap();
        let fields = unknown.parse(None).unwrap_err().into_map();
        assert!(fields.contains_key("allow") && fields.contains_key("id"));
    }

    #[test]
    fn a_time_out_ends_in_the_future_within_28_days() {
        let now = 1_800_000_000_000;
        let change = |until: Option<u64>| UpdateMemberRequest {
            communication_disabled_until: Some(until),
            ..Default::default()
        };
        assert!(change(Some(now + 60_000)).parse(now).is_ok());
        assert!(change(None).parse(now).is_ok(), "null ends a time-out");
        assert!(change(Some(now)).parse(now).is_err());
        assert!(change(Some(now + MAX_TIME_OUT_MS + 1)).parse(now).is_err());
    }

    #[test]
    fn a_role_sits_above_everyone_and_its_colour_is_rgb() {
        let bad = UpdateRoleRequest {
            position: Some(0),
            color: Some(0x1_00_00_00),
            permissions: Some("x".into()),
            ..Default::default()
        };
        let fields = bad.parse().unwrap_err().into_map();
        for field in ["position", "color", "permissions"] {
            assert!(fields.contains_key(field), "{field}");
        }
    }

    #[test]
    fn a_reorder_names_each_channel_once() {
        let entries: Vec<ChannelPositionRequest> = serde_json::from_value(serde_json::json!([
            {"id": "1", "position": 2}, {"id": "2", "parent_id": null}
        ]))
        .unwrap();
        let parsed = parse_positions(&entries).unwrap();
        assert_eq!(parsed[1].parent_id, Some(None));
        let twice: Vec<ChannelPositionRequest> = serde_json::from_value(serde_json::json!([
            {"id": "1"}, {"id": "1"}
        ]))
        .unwrap();
        assert!(parse_positions(&twice).is_err());
        assert!(parse_positions(&[]).is_err());
    }

    #[test]
    fn a_ban_deletes_at_most_a_weeks_messages() {
        assert_eq!(BanRequest::default().parse(), Ok(0));
        let week = BanRequest {
            delete_message_seconds: Some(MAX_BAN_DELETE_SECONDS + 1),
        };
        assert!(week.parse().is_err());
    }
}
