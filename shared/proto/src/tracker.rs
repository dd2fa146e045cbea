//! What edges and the presence service tell each other over NATS (subjects in
//! [`crate::subjects`]). Clients never see these; they see [`crate::api::presence`].
//!
//! An edge reports each session's start, status and end on `{p}.presence.edge.report` (core NATS,
//! fire and forget), proves it is alive with a heartbeat request on `{p}.presence.edge.heartbeat`,
//! and sends its whole session list on `{p}.presence.edge.sync` when presence asks for it (presence
//! lost its Redis state, or could not write to it). Anyone asks `{p}.presence.query` for users'
//! presence.

use serde::{Deserialize, Serialize};

use crate::Snowflake;
use crate::api::presence::{Presence, PresenceStatus};
use crate::api::users::Status;

/// An edge process, named by a Snowflake it makes at start (unique across the fleet).
pub type EdgeId = Snowflake;

/// A status a session can have. `offline` is what having no session means, not a status.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum SessionStatus {
    Online,
    Idle,
    Dnd,
    Invisible,
}

impl SessionStatus {
    /// A user with several sessions shows the strongest: invisible, then dnd, then online, then
    /// idle (idle only when every device is idle).
    fn rank(self) -> u8 {
        match self {
            Self::Idle => 0,
            Self::Online => 1,
            Self::Dnd => 2,
            Self::Invisible => 3,
        }
    }

    /// The status a user with these sessions has; `None` when they have none (offline).
    pub fn combine(statuses: impl IntoIterator<Item = Self>) -> Option<Self> {
        statuses.into_iter().max_by_key(|s| s.rank())
    }

    /// The name as sent and kept in Redis; parse with `str::parse`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl From<Status> for SessionStatus {
    /// A profile's status as a session's starting status (`offline` cannot be set on a profile;
    /// should one appear it counts as online).
    fn from(status: Status) -> Self {
        match status {
            Status::Idle => Self::Idle,
            Status::Dnd => Self::Dnd,
            Status::Invisible => Self::Invisible,
            Status::Online | Status::Offline => Self::Online,
        }
    }
}

impl From<SessionStatus> for PresenceStatus {
    fn from(status: SessionStatus) -> Self {
        match status {
            SessionStatus::Online => Self::Online,
            SessionStatus::Idle => Self::Idle,
            SessionStatus::Dnd => Self::Dnd,
            SessionStatus::Invisible => Self::Invisible,
        }
    }
}

/// One session on one edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEntry {
    /// The session's id within its edge.
    pub session: u64,
    pub user: Snowflake,
    pub status: SessionStatus,
}

/// `{p}.presence.edge.report`: one change on one edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    /// A session identified (or resumed), or changed its status.
    Session { edge: EdgeId, entry: SessionEntry },
    /// A session ended.
    End {
        edge: EdgeId,
        session: u64,
        user: Snowflake,
    },
}

/// `{p}.presence.edge.heartbeat` request: the edge is alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub edge: EdgeId,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// Presence does not hold this edge's sessions (it is new to presence, or Redis lost or
    /// refused writes): send them all on `{p}.presence.edge.sync`.
    pub resync: bool,
    /// Presence lost or could not record changes (Redis restarted empty, or refused writes), so
    /// what watchers were told may be stale: once resynced, re-read and redeliver what they watch.
    #[serde(default)]
    pub refresh: bool,
}

/// `{p}.presence.edge.sync` request: every session an edge holds, replacing what presence had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sync {
    pub edge: EdgeId,
    pub sessions: Vec<SessionEntry>,
}

/// Which of the edges' messages a subject `{p}.presence.edge.{kind}` carries: its last token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::AsRefStr, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum FromEdgeKind {
    Report,
    Heartbeat,
    Sync,
}

/// What presence receives from edges on `{p}.presence.edge.*`, decoded by its subject's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromEdge {
    Report(Report),
    Heartbeat(Heartbeat),
    Sync(Sync),
}

/// Why a message from an edge could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FromEdgeError {
    #[error("{0:?} is not a subject edges send presence on")]
    UnknownSubject(String),
    #[error("an undecodable presence {kind}: {source}")]
    Undecodable {
        kind: FromEdgeKind,
        #[source]
        source: serde_json::Error,
    },
}

impl FromEdge {
    /// Decodes a message received on `{p}.presence.edge.*`: the subject says what it is.
    pub fn decode(subject: &str, payload: &[u8]) -> Result<Self, FromEdgeError> {
        let kind = subject
            .rsplit('.')
            .next()
            .and_then(|last| last.parse::<FromEdgeKind>().ok())
            .ok_or_else(|| FromEdgeError::UnknownSubject(subject.to_owned()))?;
        let undecodable = |source| FromEdgeError::Undecodable { kind, source };
        Ok(match kind {
            FromEdgeKind::Report => {
                Self::Report(serde_json::from_slice(payload).map_err(undecodable)?)
            }
            FromEdgeKind::Heartbeat => {
                Self::Heartbeat(serde_json::from_slice(payload).map_err(undecodable)?)
            }
            FromEdgeKind::Sync => Self::Sync(serde_json::from_slice(payload).map_err(undecodable)?),
        })
    }
}

/// `{p}.presence.query` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    pub user_ids: Vec<Snowflake>,
}

/// The answer to a query: each asked user's real status (the asker applies the viewer's view),
/// in the order asked; `unknown` for all when Redis cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryReply {
    pub presences: Vec<Presence>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_active_device_outweighs_an_idle_one() {
        use SessionStatus::*;
        assert_eq!(SessionStatus::combine([Idle, Online]), Some(Online));
        assert_eq!(SessionStatus::combine([Idle, Idle]), Some(Idle));
        assert_eq!(SessionStatus::combine([Online, Dnd]), Some(Dnd));
        assert_eq!(SessionStatus::combine([Dnd, Invisible]), Some(Invisible));
        assert_eq!(SessionStatus::combine([]), None);
    }

    #[test]
    fn a_report_is_tagged_by_kind() {
        let report = Report::End {
            edge: Snowflake::from_u64(1),
            session: 2,
            user: Snowflake::from_u64(3),
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "end", "edge": "1", "session": 2, "user": "3"})
        );
        assert_eq!(serde_json::from_value::<Report>(json).unwrap(), report);
    }

    #[test]
    fn a_message_from_an_edge_is_decoded_by_its_subject() {
        use crate::subjects::{Prefix, Subjects};
        let subjects = Subjects::new(Prefix::parse("p").unwrap());
        let edge = Snowflake::from_u64(4);
        let heartbeat = serde_json::to_vec(&Heartbeat { edge }).unwrap();
        assert_eq!(
            FromEdge::decode(&subjects.presence_heartbeat(), &heartbeat).unwrap(),
            FromEdge::Heartbeat(Heartbeat { edge })
        );
        let sync = serde_json::to_vec(&Sync {
            edge,
            sessions: Vec::new(),
        })
        .unwrap();
        assert!(matches!(
            FromEdge::decode(&subjects.presence_sync(), &sync),
            Ok(FromEdge::Sync(_))
        ));
        assert!(matches!(
            FromEdge::decode(&subjects.presence_report(), &heartbeat),
            Err(FromEdgeError::Undecodable {
                kind: FromEdgeKind::Report,
                ..
            })
        ));
        assert!(matches!(
            FromEdge::decode("p.presence.edge.other", &heartbeat),
            Err(FromEdgeError::UnknownSubject(_))
        ));
    }
}
