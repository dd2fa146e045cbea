//! Presence as clients see it: the PRESENCE_UPDATE dispatch, READY's `presences`, and
//! `GET /api/v1/presences?user_ids=…` on an edge.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::users::Status;
use crate::Snowflake;

/// Most ids one `GET /api/v1/presences` may ask about.
pub const MAX_QUERY_IDS: usize = 100;

/// A user's presence as shown to one viewer.
///
/// Others never see `invisible` (it is shown as `offline`); a user's own sessions do. `unknown`
/// means presence could not be read (its store is down): better no answer than a wrong one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    Online,
    Idle,
    Dnd,
    Invisible,
    Offline,
    Unknown,
}

impl PresenceStatus {
    /// How this status looks to someone other than the user.
    pub fn seen_by_others(self) -> Self {
        match self {
            Self::Invisible => Self::Offline,
            other => other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Idle => "idle",
            Self::Dnd => "dnd",
            Self::Invisible => "invisible",
            Self::Offline => "offline",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "online" => Self::Online,
            "idle" => Self::Idle,
            "dnd" => Self::Dnd,
            "invisible" => Self::Invisible,
            "offline" => Self::Offline,
            "unknown" => Self::Unknown,
            _ => return None,
        })
    }
}

impl From<Status> for PresenceStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Online => Self::Online,
            Status::Idle => Self::Idle,
            Status::Dnd => Self::Dnd,
            Status::Invisible => Self::Invisible,
            Status::Offline => Self::Offline,
        }
    }
}

/// One user's presence: the PRESENCE_UPDATE payload, an entry of READY's `presences`, and an
/// item of `GET /api/v1/presences`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Presence {
    pub user_id: Snowflake,
    pub status: PresenceStatus,
    /// When the user was last seen online, in Unix milliseconds; `null` while online or never seen.
    pub last_seen: Option<i64>,
}

impl Presence {
    /// The presence as someone other than the user sees it.
    pub fn seen_by_others(mut self) -> Self {
        self.status = self.status.seen_by_others();
        self
    }

    pub fn unknown(user_id: Snowflake) -> Self {
        Self {
            user_id,
            status: PresenceStatus::Unknown,
            last_seen: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_looks_offline_to_others_and_nothing_else_changes() {
        assert_eq!(
            PresenceStatus::Invisible.seen_by_others(),
            PresenceStatus::Offline
        );
        assert_eq!(PresenceStatus::Dnd.seen_by_others(), PresenceStatus::Dnd);
        assert_eq!(
            PresenceStatus::Unknown.seen_by_others(),
            PresenceStatus::Unknown
        );
    }

    #[test]
    fn a_presence_serialises_with_a_string_id_and_millisecond_last_seen() {
        let p = Presence {
            user_id: Snowflake::from_u64(5),
            status: PresenceStatus::Offline,
            last_seen: Some(1_700_000_000_000),
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"user_id": "5", "status": "offline", "last_seen": 1_700_000_000_000_i64})
        );
    }
}
