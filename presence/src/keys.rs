//! Presence's Redis keys (the layout is in [`crate::tracker`]) and the one script that writes
//! `sessions` and `statuses` together.

use proto::Snowflake;
use proto::subjects::Subjects;
use proto::tracker::{EdgeId, SessionStatus};

/// Redis key names, and the one script that writes `sessions` and `statuses`.
#[derive(Debug, Clone)]
pub struct Keys {
    base: String,
    /// `edges`: edge id -> deadline.
    pub(crate) edges: String,
    /// `leaving`: user -> when their grace is over.
    pub(crate) leaving: String,
    set_session: redis::Script,
}

impl Keys {
    pub fn new(subjects: &Subjects) -> Self {
        let base = format!("{}:presence", subjects.prefix());
        Self {
            edges: format!("{base}:edges"),
            leaving: format!("{base}:leaving"),
            base,
            set_session: redis::Script::new(include_str!("set_session.lua")),
        }
    }

    /// A pipeline for writes that use [`Keys::set_session`]: it loads the script first (a no-op
    /// once loaded), so a Redis that restarted empty still has it.
    pub(crate) fn pipe(&self) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        pipe.load_script(&self.set_session).ignore();
        pipe
    }

    /// Adds to `pipe` (made by [`Keys::pipe`]) setting a session's status (`None`: it ended).
    pub(crate) fn set_session(
        &self,
        pipe: &mut redis::Pipeline,
        user: Snowflake,
        edge: EdgeId,
        session: u64,
        status: Option<SessionStatus>,
    ) {
        pipe.invoke_script(
            self.set_session
                .key(self.sessions(user))
                .key(self.statuses(user))
                .arg(field(edge, session))
                .arg(status.map_or("", SessionStatus::as_str)),
        )
        .ignore();
    }

    pub(crate) fn edge(&self, edge: EdgeId) -> String {
        format!("{}:edge:{edge}", self.base)
    }

    pub(crate) fn sessions(&self, user: Snowflake) -> String {
        format!("{}:sessions:{user}", self.base)
    }

    pub(crate) fn statuses(&self, user: Snowflake) -> String {
        format!("{}:statuses:{user}", self.base)
    }

    pub(crate) fn shown(&self, user: Snowflake) -> String {
        format!("{}:shown:{user}", self.base)
    }

    pub(crate) fn seen(&self, user: Snowflake) -> String {
        format!("{}:seen:{user}", self.base)
    }
}

pub(crate) fn member(user: Snowflake, session: u64) -> String {
    format!("{user}/{session}")
}

pub(crate) fn parse_member(member: &str) -> Option<(Snowflake, u64)> {
    let (user, session) = member.split_once('/')?;
    Some((user.parse().ok()?, session.parse().ok()?))
}

pub(crate) fn field(edge: EdgeId, session: u64) -> String {
    format!("{edge}/{session}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(crate) fn a_session_member_names_its_user_and_session() {
        let m = member(Snowflake::from_u64(12), 7);
        assert_eq!(parse_member(&m), Some((Snowflake::from_u64(12), 7)));
        assert_eq!(parse_member("junk"), None);
    }
}
