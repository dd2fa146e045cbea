//! The audit log of a server (`GET /api/v1/guilds/{id}/audit-logs`, GUILD_AUDIT_LOG_ENTRY_CREATE):
//! who changed what (before and after), when (the entry's id is a Snowflake) and why, with
//! Discord's action type numbers.

use serde::{Deserialize, Serialize};
use serde_repr::{Deserialize_repr, Serialize_repr};
use utoipa::{IntoParams, ToSchema};

use super::error::{FieldErrors, Invalid};
use super::users::User;
use crate::Snowflake;

/// What an entry records, numbered as Discord numbers it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize_repr,
    Deserialize_repr,
    ToSchema,
    strum::EnumIter,
)]
#[repr(u8)]
pub enum AuditLogEvent {
    GuildUpdate = 1,
    ChannelCreate = 10,
    ChannelUpdate = 11,
    ChannelDelete = 12,
    ChannelOverwriteCreate = 13,
    ChannelOverwriteUpdate = 14,
    ChannelOverwriteDelete = 15,
    MemberKick = 20,
    MemberBanAdd = 22,
    MemberBanRemove = 23,
    /// A nickname or a time-out.
    MemberUpdate = 24,
    MemberRoleUpdate = 25,
    RoleCreate = 30,
    RoleUpdate = 31,
    RoleDelete = 32,
    InviteCreate = 40,
    InviteDelete = 42,
    /// A moderator deleted someone else's message.
    MessageDelete = 72,
}

impl AuditLogEvent {
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The action of a stored number.
    pub fn from_number(n: u8) -> Option<Self> {
        use strum::IntoEnumIterator;
        Self::iter().find(|e| e.number() == n)
    }
}

/// One changed field: its name, and its value before and after (absent when there was none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditLogChange {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_value: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_value: Option<serde_json::Value>,
}

impl AuditLogChange {
    /// A change of `key` from `old` to `new`, or `None` when nothing changed.
    pub fn of<T: Serialize + PartialEq>(key: &str, old: Option<T>, new: Option<T>) -> Option<Self> {
        (old != new).then(|| Self {
            key: key.to_owned(),
            old_value: old.map(|v| serde_json::to_value(v).expect("values serialise")),
            new_value: new.map(|v| serde_json::to_value(v).expect("values serialise")),
        })
    }
}

/// What some actions add: the channel a message was deleted in, how many, how many seconds of a
/// banned member's messages were deleted, the overwrite's kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Snowflake>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Snowflake>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_message_seconds: Option<u32>,
    /// An overwrite's role or member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Snowflake>,
    /// An overwrite's target kind: 0 role, 1 member.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub kind: Option<u8>,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditLogEntry {
    /// A Snowflake: its time is when it happened.
    pub id: Snowflake,
    pub guild_id: Snowflake,
    /// Who did it.
    pub user_id: Option<Snowflake>,
    /// What it was done to: a channel, role, member or invite's server, by id.
    pub target_id: Option<Snowflake>,
    pub action_type: AuditLogEvent,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<AuditLogChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<AuditEntryInfo>,
    /// What the moderator gave as the reason (`X-Audit-Log-Reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /api/v1/guilds/{id}/audit-logs`: a page of entries, newest first, and the users they name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditLog {
    pub audit_log_entries: Vec<AuditLogEntry>,
    pub users: Vec<User>,
}

/// `GET /api/v1/guilds/{id}/audit-logs`: the query string, as sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditLogParams {
    /// Only what this user did.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Only actions of this type (Discord's numbers).
    #[serde(default)]
    #[param(value_type = Option<u8>)]
    pub action_type: Option<String>,
    /// Entries older than this entry id (page back with the last id of a page).
    #[serde(default)]
    pub before: Option<String>,
    /// Entries newer than this entry id.
    #[serde(default)]
    pub after: Option<String>,
    /// 1 to 100, default 50.
    #[serde(default)]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// A checked audit log query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLogFilter {
    pub user_id: Option<Snowflake>,
    pub action_type: Option<AuditLogEvent>,
    pub before: Option<Snowflake>,
    pub after: Option<Snowflake>,
    pub limit: u32,
}

/// The most entries one page holds.
pub const MAX_AUDIT_PAGE: u32 = 100;

impl AuditLogParams {
    pub fn parse(&self) -> Result<AuditLogFilter, FieldErrors> {
        let mut errors = FieldErrors::new();
        let id = |errors: &mut FieldErrors, field: &str, raw: &Option<String>| {
            raw.as_deref().and_then(|raw| {
                errors.check(
                    field,
                    raw.parse::<Snowflake>()
                        .map_err(|_| Invalid::new("must be an id")),
                )
            })
        };
        let user_id = id(&mut errors, "user_id", &self.user_id);
        let before = id(&mut errors, "before", &self.before);
        let after = id(&mut errors, "after", &self.after);
        let action_type = self.action_type.as_deref().and_then(|raw| {
            errors.check(
                "action_type",
                raw.parse::<u8>()
                    .ok()
                    .and_then(AuditLogEvent::from_number)
                    .ok_or_else(|| Invalid::new("must be one of the action types")),
            )
        });
        let limit = match &self.limit {
            None => Some(50),
            Some(raw) => errors.check(
                "limit",
                raw.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_AUDIT_PAGE).contains(n))
                    .ok_or_else(|| Invalid::new(format!("must be 1 to {MAX_AUDIT_PAGE}"))),
            ),
        };
        match limit {
            Some(limit) if errors.is_empty() => Ok(AuditLogFilter {
                user_id,
                action_type,
                before,
                after,
                limit,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_types_are_discords_numbers() {
        assert_eq!(
            serde_json::to_value(AuditLogEvent::MemberBanAdd).unwrap(),
            22
        );
        assert_eq!(
            AuditLogEvent::from_number(72),
            Some(AuditLogEvent::MessageDelete)
        );
        assert_eq!(AuditLogEvent::from_number(2), None);
    }

    #[test]
    fn a_change_is_recorded_only_when_something_changed() {
        assert!(AuditLogChange::of("name", Some("a"), Some("a")).is_none());
        let change = AuditLogChange::of("name", Some("a"), Some("b")).unwrap();
        assert_eq!(
            serde_json::to_value(change).unwrap(),
            serde_json::json!({"key": "name", "old_value": "a", "new_value": "b"})
        );
    }

    #[test]
    fn a_query_filters_by_user_and_action_and_pages_by_id() {
        let params = AuditLogParams {
            user_id: Some("5".into()),
            action_type: Some("22".into()),
            before: Some("9".into()),
            ..Default::default()
        };
        let filter = params.parse().unwrap();
        assert_eq!(filter.action_type, Some(AuditLogEvent::MemberBanAdd));
        assert_eq!(filter.limit, 50);
        let bad = AuditLogParams {
            action_type: Some("3".into()),
            limit: Some("0".into()),
            ..Default::default()
        };
        assert_eq!(bad.parse().unwrap_err().into_map().len(), 2);
    }
}
