//! Reporting this edge's sessions to the presence service ([`Reporter`], one per edge): when a
//! session starts, changes status and ends (`{p}.presence.edge.report`), a heartbeat
//! (`{p}.presence.edge.heartbeat`) so a silent death is noticed, and every session it holds when
//! presence asks (`{p}.presence.edge.sync`, after presence lost or could not write its Redis
//! state); and reading users' presence from it (`{p}.presence.query`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::Snowflake;
use proto::api::presence::{MAX_QUERY_IDS, Presence, PresenceStatus};
use proto::events::Event;
use proto::subjects::Subjects;
use proto::tracker::{
    EdgeId, Heartbeat, HeartbeatReply, Query as PresenceQuery, QueryReply, Report, SessionEntry,
    SessionStatus, Sync,
};

use crate::fanout::{Delivery, SessionId, Topic};
use crate::state::EdgeState;

/// Presence settings, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct PresenceSettings {
    /// Channels with more members than this get no pushed presence.
    pub max_members: usize,
    /// How often the edge tells presence it is alive.
    pub heartbeat: Duration,
    /// How long READY and the REST endpoint wait for presence before saying `unknown`.
    pub query_timeout: Duration,
}

/// The edge's sessions as presence knows them.
pub struct Reporter {
    nats: async_nats::Client,
    subjects: Subjects,
    edge: EdgeId,
    pub settings: PresenceSettings,
    sessions: Mutex<HashMap<SessionId, SessionEntry>>,
}

impl Reporter {
    pub fn new(
        nats: async_nats::Client,
        subjects: Subjects,
        edge: EdgeId,
        settings: PresenceSettings,
    ) -> Self {
        Self {
            nats,
            subjects,
            edge,
            settings,
            sessions: Mutex::default(),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, SessionEntry>> {
        self.sessions
            .lock()
            .expect("no code panics while holding the session table")
    }

    /// A session identified or resumed.
    pub async fn started(&self, session: SessionId, user: Snowflake, status: SessionStatus) {
        let entry = SessionEntry {
            session,
            user,
            status,
        };
        self.sessions().insert(session, entry);
        self.report(Report::Session {
            edge: self.edge,
            entry,
        })
        .await;
    }

    /// A session set its status (op 3, or the profile's status changed).
    pub async fn set_status(&self, session: SessionId, status: SessionStatus) {
        let entry = {
            let mut sessions = self.sessions();
            let Some(entry) = sessions.get_mut(&session) else {
                return;
            };
            if entry.status == status {
                return;
            }
            entry.status = status;
            *entry
        };
        self.report(Report::Session {
            edge: self.edge,
            entry,
        })
        .await;
    }

    /// A session ended (a no-op for one that never identified).
    pub async fn ended(&self, session: SessionId) {
        let Some(entry) = self.sessions().remove(&session) else {
            return;
        };
        self.report(Report::End {
            edge: self.edge,
            session,
            user: entry.user,
        })
        .await;
    }

    async fn report(&self, report: Report) {
        let body = serde_json::to_vec(&report).expect("reports serialise");
        if let Err(e) = self
            .nats
            .publish(self.subjects.presence_report(), body.into())
            .await
        {
            tracing::warn!(error = %e, "cannot report a session to presence");
        }
    }

    /// Users' real presence, or `unknown` for each when presence does not answer in time.
    pub async fn query(&self, user_ids: Vec<Snowflake>) -> Vec<Presence> {
        if user_ids.is_empty() {
            return Vec::new();
        }
        let body = serde_json::to_vec(&PresenceQuery {
            user_ids: user_ids.clone(),
        })
        .expect("queries serialise");
        let asked = self
            .nats
            .request(self.subjects.presence_query(), body.into());
        match tokio::time::timeout(self.settings.query_timeout, asked).await {
            Ok(Ok(reply)) => match serde_json::from_slice::<QueryReply>(&reply.payload) {
                Ok(reply) => return reply.presences,
                Err(e) => tracing::warn!(error = %e, "presence answered something else"),
            },
            Ok(Err(e)) => tracing::debug!(error = %e, "presence did not answer"),
            Err(_) => tracing::debug!("presence did not answer in time"),
        }
        user_ids.into_iter().map(Presence::unknown).collect()
    }

    /// One heartbeat: presence's answer (no resync when it did not answer; it asks next time).
    pub async fn beat(&self) -> HeartbeatReply {
        let body = serde_json::to_vec(&Heartbeat { edge: self.edge }).expect("serialises");
        let asked = self
            .nats
            .request(self.subjects.presence_heartbeat(), body.into());
        match tokio::time::timeout(self.settings.heartbeat, asked).await {
            Ok(Ok(reply)) => serde_json::from_slice(&reply.payload).unwrap_or_default(),
            _ => {
                tracing::debug!("presence did not answer a heartbeat");
                HeartbeatReply::default()
            }
        }
    }

    pub async fn resync(&self) {
        let sessions: Vec<SessionEntry> = self.sessions().values().copied().collect();
        tracing::info!(
            sessions = sessions.len(),
            "resyncing sessions with presence"
        );
        let body = serde_json::to_vec(&Sync {
            edge: self.edge,
            sessions,
        })
        .expect("serialises");
        let asked = self
            .nats
            .request(self.subjects.presence_sync(), body.into());
        if !matches!(
            tokio::time::timeout(self.settings.heartbeat, asked).await,
            Ok(Ok(_))
        ) {
            tracing::debug!("presence did not confirm a resync; it will ask again");
        }
    }
}

/// Heartbeats until `shutdown`, resyncing whenever presence asks. When presence says it lost
/// changes, then once resynced (and the other edges have had two heartbeats to resync too), the
/// edge re-reads the presence of every user its sessions watch and delivers it to them: a change
/// presence could not record (Redis was down) or lost (Redis came back empty) is corrected, and a
/// user who left meanwhile shows offline at last.
pub async fn heartbeat(state: Arc<EdgeState>, shutdown: kit::lifecycle::Shutdown) {
    let reporter = &state.presence;
    let period = reporter.settings.heartbeat;
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refresh_at = None;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let reply = reporter.beat().await;
        if reply.resync {
            reporter.resync().await;
            if reply.refresh {
                refresh_at = Some(tokio::time::Instant::now() + period * 2);
            }
        } else if refresh_at.is_some_and(|at| at <= tokio::time::Instant::now()) {
            refresh_at = None;
            refresh_watchers(&state).await;
        }
    }
}

async fn refresh_watchers(state: &EdgeState) {
    let users = state.hub.watched_users().await;
    for chunk in users.chunks(MAX_QUERY_IDS) {
        for presence in state.presence.query(chunk.to_vec()).await {
            if presence.status == PresenceStatus::Unknown {
                continue;
            }
            let user = presence.user_id;
            let delivery = Delivery::new(None, Event::PresenceUpdate(presence.seen_by_others()));
            state
                .hub
                .deliver_local(Topic::Presence(user), &delivery)
                .await;
        }
    }
}
