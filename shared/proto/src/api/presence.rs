//! Presence as clients see it: the PRESENCE_UPDATE dispatch, READY's `presences`, and
//! `GET /api/v1/presences?user_ids=…` on an edge.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::users::Status;
use crate::Snowflake;

/// Most ids one `GET /api/v1/presences` may ask about.
pub const MAX_QUERY_IDS: usize = 100;

/// The distinct ids of a comma-separated list, in the order first given: at most
/// [`MAX_QUERY_IDS`] of them, or why not. Linear in the list's length, and it stops at the first
/// id past the cap, so a long list of repeats costs no more than reading it.
fn user_ids(list: &str) -> Result<Vec<Snowflake>, String> {
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let id = raw
            .parse::<Snowflake>()
            .map_err(|_| format!("user_ids: {raw:?} is not a user id"))?;
        if seen.insert(id) {
            if ids.len() == MAX_QUERY_IDS {
                return Err(format!("user_ids: at most {MAX_QUERY_IDS} ids per request"));
            }
            ids.push(id);
        }
    }
    Ok(ids)
}

/// `GET /api/v1/presences` on an edge: the query string, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PresencesQuery {
    /// Comma-separated user ids, at most [`MAX_QUERY_IDS`] distinct ones.
    #[serde(default)]
    pub user_ids: String,
}

impl PresencesQuery {
    /// The distinct ids asked about, in the order first given, or why they cannot be.
    pub fn parse(&self) -> Result<Vec<Snowflake>, String> {
        user_ids(&self.user_ids)
    }
}

/// A user's presence as shown to one viewer.
///
/// Others never see `invisible` (it is shown as `offline`); a user's own sessions do. `unknown`
/// means presence could not be read (its store is down): better no answer than a wrong one.
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

    /// The name as sent; parse with `str::parse`.
    pub fn as_str(self) -> &'static str {
        self.into()
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

    fn list(ids: impl IntoIterator<Item = u64>) -> String {
        ids.into_iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn repeated_ids_are_asked_once_in_the_order_first_given() {
        let ids = user_ids("3, 1,3,,2,1").unwrap();
        assert_eq!(ids, [3, 1, 2].map(Snowflake::from_u64));
    }

    #[test]
    fn a_hundred_distinct_ids_are_allowed_and_the_hundred_and_first_is_refused() {
        assert_eq!(user_ids(&list(1..=100)).unwrap().len(), MAX_QUERY_IDS);
        let err = user_ids(&list(1..=101)).unwrap_err();
        assert!(err.contains("at most 100"), "{err}");
    }

    #[test]
    fn the_cap_is_checked_as_ids_are_read_not_after_reading_them_all() {
        // The old loop read and deduplicated the whole list before counting: it would have
        // complained about "bob" at the end, after a quadratic pass over everything before it.
        let err = user_ids(&format!("{},bob", list(1..=101))).unwrap_err();
        assert!(err.contains("at most 100"), "{err}");
    }

    #[test]
    fn a_long_list_of_one_repeated_id_is_one_id() {
        let repeated = list(std::iter::repeat_n(7, 50_000));
        assert_eq!(user_ids(&repeated).unwrap(), [Snowflake::from_u64(7)]);
    }

    #[test]
    fn an_id_that_is_not_a_number_is_named() {
        let err = user_ids("1,bob").unwrap_err();
        assert!(err.contains("\"bob\""), "{err}");
    }

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
