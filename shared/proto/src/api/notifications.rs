//! Notifications, in Discord's shapes: a user's notification settings per server (and `@me` for
//! DMs and group channels) with per-channel overrides (`/api/v1/users/@me/guilds/{id}/settings`,
//! USER_GUILD_SETTINGS_UPDATE), the recent-mentions inbox (`/api/v1/users/@me/mentions`), and
//! browsers' Web Push subscriptions (`/api/v1/users/@me/push-subscriptions`).

use serde::{Deserialize, Serialize};
use serde_repr::{Deserialize_repr, Serialize_repr};
use utoipa::ToSchema;

use super::error::FieldErrors;
use crate::Snowflake;

/// Servers with more members than this notify of mentions only unless a member chose otherwise
/// (Discord's default for large servers).
pub const LARGE_GUILD_MEMBERS: u32 = 250;

/// The most channel overrides one server's settings hold.
pub const MAX_CHANNEL_OVERRIDES: usize = 500;

/// What a user is told of (Discord's `message_notifications`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize_repr, Deserialize_repr, ToSchema,
)]
#[repr(u8)]
pub enum MessageNotifications {
    /// Every message.
    #[default]
    AllMessages = 0,
    /// Only messages that mention them (by name, by a role of theirs, or everyone).
    OnlyMentions = 1,
    /// Nothing.
    NoMessages = 2,
    /// A channel override that follows its server's setting (Discord's 3, `null` in a client).
    Inherit = 3,
}

/// Until when a mute lasts (Discord's `mute_config`); `end_time` absent: until turned back off.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct MuteConfig {
    /// ISO 8601 (RFC 3339) time the mute ends, or `null` for "until I turn it back on".
    #[serde(default)]
    pub end_time: Option<String>,
}

/// One channel's override of its server's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelOverride {
    pub channel_id: Snowflake,
    /// 3 (inherit): the server's setting applies.
    #[serde(default = "inherit")]
    pub message_notifications: MessageNotifications,
    #[serde(default)]
    pub muted: bool,
    #[serde(default)]
    pub mute_config: Option<MuteConfig>,
}

fn inherit() -> MessageNotifications {
    MessageNotifications::Inherit
}

/// A user's notification settings for one server, or (`guild_id` null) for their DMs and group
/// channels (`GET /api/v1/users/@me/guilds/settings`, READY's `user_guild_settings`,
/// USER_GUILD_SETTINGS_UPDATE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserGuildSettings {
    /// The server; `null` for DMs and group channels.
    pub guild_id: Option<Snowflake>,
    pub message_notifications: MessageNotifications,
    pub muted: bool,
    /// When the mute ends; `null` while not muted or muted until turned back off.
    pub mute_config: Option<MuteConfig>,
    /// @everyone and @here do not count as mentions of this user here.
    pub suppress_everyone: bool,
    /// Role mentions do not count as mentions of this user here.
    pub suppress_roles: bool,
    pub channel_overrides: Vec<ChannelOverride>,
}

impl UserGuildSettings {
    /// What a user who never changed anything gets: all messages in DMs and small servers, only
    /// mentions in servers of more than [`LARGE_GUILD_MEMBERS`].
    pub fn default_for(guild_id: Option<Snowflake>, member_count: u32) -> Self {
        Self {
            guild_id,
            message_notifications: if guild_id.is_some() && member_count > LARGE_GUILD_MEMBERS {
                MessageNotifications::OnlyMentions
            } else {
                MessageNotifications::AllMessages
            },
            muted: false,
            mute_config: None,
            suppress_everyone: false,
            suppress_roles: false,
            channel_overrides: Vec::new(),
        }
    }
}

/// `PATCH /api/v1/users/@me/guilds/{guild_id}/settings` (or `@me`): what to change; a field left
/// out keeps its value. `channel_overrides` replaces the override of each channel it names and
/// leaves the others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpdateUserGuildSettingsRequest {
    #[serde(default)]
    pub message_notifications: Option<MessageNotifications>,
    #[serde(default)]
    pub muted: Option<bool>,
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<MuteConfig>)]
    pub mute_config: Option<Option<MuteConfig>>,
    #[serde(default)]
    pub suppress_everyone: Option<bool>,
    #[serde(default)]
    pub suppress_roles: Option<bool>,
    #[serde(default)]
    pub channel_overrides: Option<Vec<ChannelOverride>>,
}

impl UpdateUserGuildSettingsRequest {
    /// Checks what needs no database: the server-wide setting is never "inherit", and the
    /// overrides are few and name each channel once.
    pub fn check(&self) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::default();
        if self.message_notifications == Some(MessageNotifications::Inherit) {
            errors.add(
                "message_notifications",
                "must be 0 (all messages), 1 (only mentions) or 2 (nothing)",
            );
        }
        if let Some(overrides) = &self.channel_overrides {
            if overrides.len() > MAX_CHANNEL_OVERRIDES {
                errors.add(
                    "channel_overrides",
                    format!("at most {MAX_CHANNEL_OVERRIDES} channels"),
                );
            }
            let mut ids: Vec<_> = overrides.iter().map(|o| o.channel_id).collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.len() != overrides.len() {
                errors.add("channel_overrides", "names a channel twice");
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Why someone is told of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyReason {
    /// It mentions them by name.
    Mention,
    /// It mentions a role of theirs.
    RoleMention,
    /// @everyone or @here.
    Everyone,
    /// A message in their DM or group channel.
    Direct,
    /// Their settings say all messages.
    AllMessages,
}

impl NotifyReason {
    /// Whether it goes in the mentions inbox (Discord's recent mentions: mentions and DMs).
    pub fn is_inbox(self) -> bool {
        !matches!(self, Self::AllMessages)
    }
}

/// One entry of the mentions inbox (`GET /api/v1/users/@me/mentions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MentionEntry {
    /// The message's id.
    pub id: Snowflake,
    pub channel_id: Snowflake,
    #[serde(default)]
    pub guild_id: Option<Snowflake>,
    pub author_id: Snowflake,
    /// The message's text, as last edited (at most 200 characters of it).
    pub content: String,
    pub reason: NotifyReason,
    /// The user's read marker in the channel has passed it (read on any device).
    pub read: bool,
}

/// `GET /api/v1/users/@me/mentions`'s query (Discord's recent mentions).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MentionsQuery {
    /// 1 to 100 (25 by default).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Entries older than this message id.
    #[serde(default)]
    pub before: Option<Snowflake>,
    /// Only this server's entries.
    #[serde(default)]
    pub guild_id: Option<Snowflake>,
    /// Include @everyone and @here (default true).
    #[serde(default)]
    pub everyone: Option<bool>,
    /// Include role mentions (default true).
    #[serde(default)]
    pub roles: Option<bool>,
}

/// A browser's Web Push subscription (`POST /api/v1/users/@me/push-subscriptions`), as the
/// browser's `PushSubscription.toJSON()` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PushSubscription {
    /// The push service's URL for this browser (https; http only where configured for tests).
    pub endpoint: String,
    pub keys: PushKeys,
}

/// The browser's keys (RFC 8291): its P-256 public key and the authentication secret, base64url.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PushKeys {
    pub p256dh: String,
    pub auth: String,
}

/// The longest endpoint URL accepted.
pub const MAX_ENDPOINT_LEN: usize = 1024;

/// How many browsers one user may subscribe (the oldest goes when a new one comes).
pub const MAX_PUSH_SUBSCRIPTIONS: usize = 10;

impl PushSubscription {
    /// Checks the shape: an http(s) URL of sane length and keys of the sizes RFC 8291 gives.
    pub fn check(&self) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::default();
        let scheme_ok =
            self.endpoint.starts_with("https://") || self.endpoint.starts_with("http://");
        if !scheme_ok || self.endpoint.len() > MAX_ENDPOINT_LEN {
            errors.add(
                "endpoint",
                format!("must be an http(s) URL of at most {MAX_ENDPOINT_LEN} characters"),
            );
        }
        let b64url = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        };
        // 65 bytes uncompressed P-256 point = 87 base64url characters; 16 bytes = 22.
        if !(80..=100).contains(&self.keys.p256dh.len()) || !b64url(&self.keys.p256dh) {
            errors.add("keys.p256dh", "must be a P-256 public key in base64url");
        }
        if !(20..=30).contains(&self.keys.auth.len()) || !b64url(&self.keys.auth) {
            errors.add("keys.auth", "must be a 16-byte secret in base64url");
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `DELETE /api/v1/users/@me/push-subscriptions`: which browser stops receiving pushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PushUnsubscribe {
    pub endpoint: String,
}

/// `GET /api/v1/push/vapid`: the server's VAPID public key (RFC 8292), the
/// `applicationServerKey` a browser subscribes with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VapidKey {
    /// The uncompressed P-256 public key, base64url without padding.
    pub public_key: String,
}

/// What a push carries (encrypted, RFC 8291): enough for a notification and its click.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PushPayload {
    pub channel_id: Snowflake,
    #[serde(default)]
    pub guild_id: Option<Snowflake>,
    pub message_id: Snowflake,
    pub author_id: Snowflake,
    /// The author's display name.
    pub author: String,
    /// At most 100 characters of the message (and "(+N more)" when a batch collapsed several).
    pub body: String,
    /// How many messages this push stands for (a busy channel's are collapsed).
    pub count: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_server_defaults_to_mentions_only_and_dms_to_everything() {
        let id = Some(Snowflake::from_u64(1));
        assert_eq!(
            UserGuildSettings::default_for(id, 1000).message_notifications,
            MessageNotifications::OnlyMentions
        );
        assert_eq!(
            UserGuildSettings::default_for(id, 10).message_notifications,
            MessageNotifications::AllMessages
        );
        assert_eq!(
            UserGuildSettings::default_for(None, 0).message_notifications,
            MessageNotifications::AllMessages
        );
    }

    #[test]
    fn a_server_wide_setting_cannot_inherit() {
        let request = UpdateUserGuildSettingsRequest {
            message_notifications: Some(MessageNotifications::Inherit),
            ..Default::default()
        };
        assert!(request.check().is_err());
    }

    #[test]
    fn a_subscription_with_a_short_key_is_refused() {
        let sub = PushSubscription {
            endpoint: "https://push.example/abc".into(),
            keys: PushKeys {
                p256dh: "abc".into(),
                auth: "abc".into(),
            },
        };
        assert!(sub.check().is_err());
    }
}
