//! Consent: who may DM a user or add them to channels (`/api/v1/users/@me/settings`), and whom a
//! user blocks (`/api/v1/users/@me/relationships`, Discord's shape: a block is relationship 2).

use serde::{Deserialize, Serialize};
use serde_repr::{Deserialize_repr, Serialize_repr};
use utoipa::ToSchema;

use super::error::FieldErrors;
use super::users::User;
use crate::Snowflake;

/// Who may do something to a user.
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
pub enum Audience {
    /// Anyone signed in.
    Everyone,
    /// People they share a group channel or a server with, or whose DM they have opened
    /// themselves.
    Shared,
    /// Nobody.
    Nobody,
}

impl Audience {
    /// The name as stored and sent; parse with `str::parse`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A user's privacy settings (`GET /api/v1/users/@me/settings`, USER_SETTINGS_UPDATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserSettings {
    /// Who may open a new DM with them (default `everyone`, so people can find each other).
    pub allow_dms_from: Audience,
    /// Who may add them to a group channel (default `shared`: strangers DM first).
    pub allow_channel_adds_from: Audience,
}

impl Default for UserSettings {
    fn default() -> Self {
        Self {
            allow_dms_from: Audience::Everyone,
            allow_channel_adds_from: Audience::Shared,
        }
    }
}

/// `PATCH /api/v1/users/@me/settings`: leave a field out to keep it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSettingsRequest {
    #[serde(default)]
    pub allow_dms_from: Option<Audience>,
    #[serde(default)]
    pub allow_channel_adds_from: Option<Audience>,
}

impl UpdateSettingsRequest {
    /// The settings after this change.
    pub fn apply(&self, to: UserSettings) -> UserSettings {
        UserSettings {
            allow_dms_from: self.allow_dms_from.unwrap_or(to.allow_dms_from),
            allow_channel_adds_from: self
                .allow_channel_adds_from
                .unwrap_or(to.allow_channel_adds_from),
        }
    }
}

/// The kinds of relationship. Discord's numbers; Natter has blocks only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize_repr, Deserialize_repr, ToSchema)]
#[repr(u8)]
pub enum RelationshipType {
    /// The user blocks this person: no DMs or channel adds from them, no presence either way,
    /// and clients hide their messages.
    Blocked = 2,
}

/// One person a user has a relationship with (`GET /api/v1/users/@me/relationships`,
/// RELATIONSHIP_ADD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Relationship {
    /// The other person's id.
    pub id: Snowflake,
    #[serde(rename = "type")]
    pub kind: RelationshipType,
    pub user: User,
}

/// RELATIONSHIP_REMOVE: the relationship with `id` ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RelationshipRef {
    pub id: Snowflake,
    #[serde(rename = "type")]
    pub kind: RelationshipType,
}

/// `PUT /api/v1/users/@me/relationships/{user_id}`: `{"type": 2}` blocks.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRelationshipRequest {
    /// 2 (block): the only kind there is.
    #[serde(rename = "type")]
    pub kind: i64,
}

impl PutRelationshipRequest {
    pub fn parse(&self) -> Result<RelationshipType, FieldErrors> {
        if self.kind == RelationshipType::Blocked as i64 {
            return Ok(RelationshipType::Blocked);
        }
        let mut errors = FieldErrors::new();
        errors.add("type", "must be 2 (block); no other relationship exists");
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_let_anyone_dm_and_only_people_one_shares_with_add() {
        let json = serde_json::to_value(UserSettings::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"allow_dms_from": "everyone", "allow_channel_adds_from": "shared"})
        );
    }

    #[test]
    fn a_settings_change_keeps_what_it_leaves_out() {
        let change: UpdateSettingsRequest =
            serde_json::from_str(r#"{"allow_dms_from": "nobody"}"#).unwrap();
        let after = change.apply(UserSettings::default());
        assert_eq!(after.allow_dms_from, Audience::Nobody);
        assert_eq!(after.allow_channel_adds_from, Audience::Shared);
        assert!(
            serde_json::from_str::<UpdateSettingsRequest>(r#"{"allow_dms_from": "x"}"#).is_err()
        );
    }

    #[test]
    fn only_type_2_is_a_relationship_one_can_put() {
        assert_eq!(
            PutRelationshipRequest { kind: 2 }.parse(),
            Ok(RelationshipType::Blocked)
        );
        let refused = PutRelationshipRequest { kind: 1 }.parse().unwrap_err();
        assert!(refused.into_map().contains_key("type"));
    }

    #[test]
    fn a_relationship_is_discords_id_type_and_user() {
        let removed = RelationshipRef {
            id: Snowflake::from_u64(7),
            kind: RelationshipType::Blocked,
        };
        assert_eq!(
            serde_json::to_value(removed).unwrap(),
            serde_json::json!({"id": "7", "type": 2})
        );
    }
}
