//! The presence state machine: applies edges' reports to Redis and publishes what changed.
//!
//! Redis keys (all under `{prefix}:presence:`, the NATS prefix, so deployments and tests sharing
//! one Redis stay apart):
//!
//! ```text
//! edges              ZSET  edge id -> deadline (unix ms): the edge is dead once it passes
//! edge:{edge}        SET   "{user}/{session}" of every session the edge reported (TTL 10 expiries)
//! sessions:{user}    HASH  "{edge}/{session}" -> session status; no field = no session
//! statuses:{user}    HASH  session status -> how many of the user's sessions have it
//! shown:{user}       STRING the user's real status as last published; absent = offline
//! seen:{user}        STRING last seen, unix ms (TTL --last-seen-ttl)
//! leaving            ZSET  user -> when they go offline unless a session returns (the grace)
//! ```
//!
//! `sessions` and `statuses` change together, in one script (`set_session.lua`), so working out a
//! user's status reads a few counts, not every session: a user with 19,000 sessions (a bot, or an
//! abuser) costs what a user with one does.
//!
//! One task applies every change, in the order received, so a user's read-compute-write is never
//! interleaved with another change. Deadlines are checked by a sweep; a user goes offline when
//! their last session ends (after the reconnect grace) or when their edge's deadline passes
//! (at once: the expiry already was the wait).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisResult};
use shared::Snowflake;
use shared::api::presence::{Presence, PresenceStatus};
use shared::events::Event;
use shared::presence::{EdgeId, HeartbeatReply, Report, SessionEntry, SessionStatus, Sync};
use shared::subjects::Subjects;

use crate::metrics::PresenceMetrics;

/// Timings, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long an edge may stay silent before its sessions count as gone.
    pub expiry: Duration,
    /// How long after a user's last session ends they still show as online.
    pub grace: Duration,
    /// How long a last-seen time is kept.
    pub last_seen_ttl: Duration,
}

/// When a user with no session left goes offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    /// After the grace: the session ended and a quick reconnect may follow.
    AfterGrace,
    /// Now: the grace (or the edge's expiry) is over.
    Now,
}

pub struct Tracker {
    redis: ConnectionManager,
    nats: async_nats::Client,
    subjects: Subjects,
    keys: Keys,
    settings: Settings,
    /// Bumped whenever a write to Redis failed: every edge then resyncs on its next heartbeat.
    failures: u64,
    /// The `failures` count each edge last synced at.
    synced: HashMap<EdgeId, u64>,
    /// No edge is declared dead before this: heartbeats could not be recorded while Redis failed,
    /// so deadlines in Redis may have passed for edges that are alive.
    trust_deadlines_after: std::time::Instant,
    metrics: PresenceMetrics,
}

impl Tracker {
    pub fn new(
        redis: ConnectionManager,
        nats: async_nats::Client,
        subjects: Subjects,
        settings: Settings,
        metrics: PresenceMetrics,
    ) -> Self {
        Self {
            keys: Keys::new(&subjects),
            redis,
            nats,
            subjects,
            settings,
            failures: 0,
            synced: HashMap::new(),
            trust_deadlines_after: std::time::Instant::now(),
            metrics,
        }
    }

    pub fn nats(&self) -> async_nats::Client {
        self.nats.clone()
    }

    fn noted<T>(&mut self, result: RedisResult<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                tracing::warn!(error = %e, "presence cannot write to Redis; edges will resync");
                self.failures += 1;
                self.metrics.redis_errors.inc();
                self.distrust_deadlines();
                None
            }
        }
    }

    pub async fn report(&mut self, report: Report) {
        self.metrics.reports.inc();
        let result = self.apply(report).await;
        self.noted(result);
    }

    async fn apply(&mut self, report: Report) -> RedisResult<()> {
        let mut pipe = self.keys.pipe();
        let user = match report {
            Report::Session { edge, entry } => {
                self.keep_edge(&mut pipe, edge);
                pipe.sadd(self.keys.edge(edge), member(entry.user, entry.session))
                    .ignore();
                self.keys.set_session(
                    &mut pipe,
                    entry.user,
                    edge,
                    entry.session,
                    Some(entry.status),
                );
                entry.user
            }
            Report::End {
                edge,
                session,
                user,
            } => {
                pipe.srem(self.keys.edge(edge), member(user, session))
                    .ignore();
                self.keys.set_session(&mut pipe, user, edge, session, None);
                user
            }
        };
        pipe.query_async::<()>(&mut self.redis).await?;
        self.recompute(user, Leave::AfterGrace).await
    }

    fn keep_edge(&self, pipe: &mut redis::Pipeline, edge: EdgeId) {
        pipe.zadd(&self.keys.edges, edge.to_string(), self.deadline())
            .expire(
                self.keys.edge(edge),
                (self.settings.expiry.as_secs() as i64 * 10).max(60),
            )
            .ignore();
    }

    fn deadline(&self) -> i64 {
        now_ms() + self.settings.expiry.as_millis() as i64
    }

    /// An edge is alive. Asks it to resync when presence does not hold its sessions.
    pub async fn heartbeat(&mut self, edge: EdgeId) -> HeartbeatReply {
        let mut pipe = redis::pipe();
        self.keep_edge(&mut pipe, edge);
        let result: RedisResult<(usize,)> = pipe.query_async(&mut self.redis).await;
        let Some((added,)) = self.noted(result) else {
            return HeartbeatReply {
                resync: true,
                refresh: true,
            };
        };
        // An edge presence has synced before but no longer holds, or one synced before a failed
        // write: changes were lost. An edge merely new to presence (or to this instance) is not.
        let lost = self
            .synced
            .get(&edge)
            .is_some_and(|at| added == 1 || *at != self.failures);
        HeartbeatReply {
            resync: lost || !self.synced.contains_key(&edge),
            refresh: lost,
        }
    }

    /// Replaces what presence holds for an edge with its full session list.
    pub async fn sync(&mut self, sync: Sync) {
        let failures = self.failures;
        let result = self.apply_sync(&sync).await;
        if self.noted(result).is_some() && self.failures == failures {
            self.synced.insert(sync.edge, failures);
        }
    }

    async fn apply_sync(&mut self, sync: &Sync) -> RedisResult<()> {
        let edge = sync.edge;
        let held: Vec<String> = self.redis.smembers(self.keys.edge(edge)).await?;
        let now: HashSet<String> = sync
            .sessions
            .iter()
            .map(|s| member(s.user, s.session))
            .collect();
        let mut users = BTreeSet::new();
        let mut pipe = self.keys.pipe();
        self.keep_edge(&mut pipe, edge);
        for gone in held.iter().filter(|m| !now.contains(*m)) {
            let Some((user, session)) = parse_member(gone) else {
                continue;
            };
            pipe.srem(self.keys.edge(edge), gone).ignore();
            self.keys.set_session(&mut pipe, user, edge, session, None);
            users.insert(user);
        }
        for SessionEntry {
            session,
            user,
            status,
        } in &sync.sessions
        {
            pipe.sadd(self.keys.edge(edge), member(*user, *session))
                .ignore();
            self.keys
                .set_session(&mut pipe, *user, edge, *session, Some(*status));
            users.insert(*user);
        }
        pipe.query_async::<()>(&mut self.redis).await?;
        for user in users {
            self.recompute(user, Leave::AfterGrace).await?;
        }
        Ok(())
    }

    /// Ends the sessions of edges whose deadline passed and takes offline the users whose grace
    /// is over. `late` is how long after its time the sweep runs.
    ///
    /// A deadline is only evidence while presence is keeping up. A late sweep means presence was
    /// not reading what edges sent (its process was starved of CPU, Redis answered slowly, a
    /// backlog of reports): heartbeats sent meanwhile may still be on their way to it, so an edge
    /// whose deadline passed may be alive and waiting in line. So, as after a failed Redis write,
    /// no edge is declared dead for one expiry: time for every live edge to be heard again.
    pub async fn sweep(&mut self, late: Duration) {
        if late > self.stalled_after() {
            tracing::warn!(
                late_ms = late.as_millis() as u64,
                "presence fell behind; no edge is declared dead for one expiry"
            );
            self.metrics.stalls.inc();
            self.distrust_deadlines();
        }
        let result = self.sweep_once().await;
        self.noted(result);
    }

    /// How late a sweep may run before presence counts as having fallen behind: a quarter of the
    /// expiry (edges heartbeat well within it, so a lag below that cannot make one look dead).
    fn stalled_after(&self) -> Duration {
        self.settings.expiry / 4
    }

    fn distrust_deadlines(&mut self) {
        self.trust_deadlines_after = std::time::Instant::now() + self.settings.expiry;
    }

    async fn sweep_once(&mut self) -> RedisResult<()> {
        let now = now_ms();
        let dead: Vec<String> = if std::time::Instant::now() < self.trust_deadlines_after {
            Vec::new()
        } else {
            self.redis
                .zrangebyscore(&self.keys.edges, "-inf", now)
                .await?
        };
        for edge in dead {
            let Ok(edge) = edge.parse::<Snowflake>() else {
                let _: () = self.redis.zrem(&self.keys.edges, &edge).await?;
                continue;
            };
            tracing::info!(%edge, "an edge stopped reporting; its sessions are gone");
            self.metrics.dead_edges.inc();
            let held: Vec<String> = self.redis.smembers(self.keys.edge(edge)).await?;
            let mut pipe = self.keys.pipe();
            let mut users = BTreeSet::new();
            for m in &held {
                if let Some((user, session)) = parse_member(m) {
                    self.keys.set_session(&mut pipe, user, edge, session, None);
                    users.insert(user);
                }
            }
            pipe.del(self.keys.edge(edge))
                .ignore()
                .zrem(&self.keys.edges, edge.to_string())
                .ignore();
            pipe.query_async::<()>(&mut self.redis).await?;
            self.synced.remove(&edge);
            for user in users {
                self.recompute(user, Leave::Now).await?;
            }
        }
        let leaving: Vec<String> = self
            .redis
            .zrangebyscore(&self.keys.leaving, "-inf", now)
            .await?;
        for user in leaving {
            match user.parse::<Snowflake>() {
                Ok(user) => self.recompute(user, Leave::Now).await?,
                Err(_) => self.redis.zrem(&self.keys.leaving, &user).await?,
            }
        }
        Ok(())
    }

    /// Works out a user's status from their sessions and publishes it if it changed.
    async fn recompute(&mut self, user: Snowflake, leave: Leave) -> RedisResult<()> {
        let (statuses, shown): (HashMap<String, i64>, Option<String>) = redis::pipe()
            .hgetall(self.keys.statuses(user))
            .get(self.keys.shown(user))
            .query_async(&mut self.redis)
            .await?;
        let now = SessionStatus::combine(
            statuses
                .iter()
                .filter(|(_, count)| **count > 0)
                .filter_map(|(status, _)| SessionStatus::parse(status)),
        );
        let before = shown.as_deref().and_then(SessionStatus::parse);
        let mut pipe = redis::pipe();
        match now {
            Some(status) => {
                pipe.zrem(&self.keys.leaving, user.to_string()).ignore();
                if before != Some(status) {
                    pipe.set(self.keys.shown(user), status.as_str()).ignore();
                    // Going invisible is leaving, as far as anyone else can tell.
                    if status == SessionStatus::Invisible && before.is_some() {
                        self.set_seen(&mut pipe, user);
                    }
                }
                pipe.query_async::<()>(&mut self.redis).await?;
                if before != Some(status) {
                    self.publish(user, before, status.into(), None).await;
                }
            }
            None if before.is_none() => {
                let _: () = self
                    .redis
                    .zrem(&self.keys.leaving, user.to_string())
                    .await?;
            }
            None => {
                let visible = before != Some(SessionStatus::Invisible);
                if leave == Leave::AfterGrace {
                    // Left now; shown offline after the grace unless a session returns. An
                    // invisible user's last-seen stays when they went invisible.
                    let grace_over = now_ms() + self.settings.grace.as_millis() as i64;
                    pipe.zadd(&self.keys.leaving, user.to_string(), grace_over)
                        .ignore();
                    if visible {
                        self.set_seen(&mut pipe, user);
                    }
                    return pipe.query_async::<()>(&mut self.redis).await;
                }
                let was_leaving: Option<f64> = self
                    .redis
                    .zscore(&self.keys.leaving, user.to_string())
                    .await?;
                if visible && was_leaving.is_none() {
                    // Gone with its edge: last seen is now.
                    self.set_seen(&mut pipe, user);
                }
                let (_, _, seen): ((), (), Option<i64>) = pipe
                    .del(self.keys.shown(user))
                    .zrem(&self.keys.leaving, user.to_string())
                    .get(self.keys.seen(user))
                    .query_async(&mut self.redis)
                    .await?;
                self.publish(user, before, PresenceStatus::Offline, seen)
                    .await;
            }
        }
        Ok(())
    }

    fn set_seen(&self, pipe: &mut redis::Pipeline, user: Snowflake) {
        pipe.set_ex(
            self.keys.seen(user),
            now_ms(),
            self.settings.last_seen_ttl.as_secs().max(1),
        )
        .ignore();
    }

    /// The user's own sessions hear the real status in their inbox; everyone else hears the
    /// status as others see it, and only when that changed (going invisible from offline, or
    /// offline from invisible, is no news to them).
    async fn publish(
        &self,
        user: Snowflake,
        before: Option<SessionStatus>,
        now: PresenceStatus,
        last_seen: Option<i64>,
    ) {
        let real = Presence {
            user_id: user,
            status: now,
            last_seen: (now == PresenceStatus::Offline)
                .then_some(last_seen)
                .flatten(),
        };
        let seen_before = before.map_or(PresenceStatus::Offline, |s| {
            PresenceStatus::from(s).seen_by_others()
        });
        let others = real.clone().seen_by_others();
        if others.status != seen_before {
            let mut others = others;
            if others.status == PresenceStatus::Offline && others.last_seen.is_none() {
                // An invisible user's others-view carries when they went invisible.
                others.last_seen = self.seen(user).await;
            }
            self.send(self.subjects.presence(user), Event::PresenceUpdate(others))
                .await;
        }
        self.send(self.subjects.user_inbox(user), Event::PresenceUpdate(real))
            .await;
        self.metrics.changes.inc();
    }

    async fn seen(&self, user: Snowflake) -> Option<i64> {
        self.redis
            .clone()
            .get(self.keys.seen(user))
            .await
            .ok()
            .flatten()
    }

    async fn send(&self, subject: String, event: Event) {
        if let Err(e) = self.nats.publish(subject, event.to_json().into()).await {
            tracing::warn!(error = %e, "cannot publish a presence change");
        }
    }
}

/// Reads users' real presence; `unknown` for all of them when Redis cannot answer.
pub async fn query(
    redis: &mut ConnectionManager,
    keys: &Keys,
    users: &[Snowflake],
) -> Vec<Presence> {
    let mut pipe = redis::pipe();
    for user in users {
        pipe.get(keys.shown(*user)).get(keys.seen(*user));
    }
    let answer: RedisResult<Vec<(Option<String>, Option<i64>)>> = pipe.query_async(redis).await;
    match answer {
        Ok(found) => users
            .iter()
            .zip(found)
            .map(|(user, (shown, seen))| {
                let status = shown
                    .as_deref()
                    .and_then(SessionStatus::parse)
                    .map_or(PresenceStatus::Offline, PresenceStatus::from);
                Presence {
                    user_id: *user,
                    status,
                    last_seen: (status == PresenceStatus::Offline)
                        .then_some(seen)
                        .flatten(),
                }
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read presence from Redis; answering unknown");
            users.iter().map(|u| Presence::unknown(*u)).collect()
        }
    }
}

/// Redis key names, and the one script that writes `sessions` and `statuses`.
#[derive(Debug, Clone)]
pub struct Keys {
    base: String,
    edges: String,
    leaving: String,
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
    fn pipe(&self) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        pipe.load_script(&self.set_session).ignore();
        pipe
    }

    /// Adds to `pipe` (made by [`Keys::pipe`]) setting a session's status (`None`: it ended).
    fn set_session(
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

    fn edge(&self, edge: EdgeId) -> String {
        format!("{}:edge:{edge}", self.base)
    }

    fn sessions(&self, user: Snowflake) -> String {
        format!("{}:sessions:{user}", self.base)
    }

    fn statuses(&self, user: Snowflake) -> String {
        format!("{}:statuses:{user}", self.base)
    }

    fn shown(&self, user: Snowflake) -> String {
        format!("{}:shown:{user}", self.base)
    }

    fn seen(&self, user: Snowflake) -> String {
        format!("{}:seen:{user}", self.base)
    }
}

fn member(user: Snowflake, session: u64) -> String {
    format!("{user}/{session}")
}

fn parse_member(member: &str) -> Option<(Snowflake, u64)> {
    let (user, session) = member.split_once('/')?;
    Some((user.parse().ok()?, session.parse().ok()?))
}

fn field(edge: EdgeId, session: u64) -> String {
    format!("{edge}/{session}")
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_member_names_its_user_and_session() {
        let m = member(Snowflake::from_u64(12), 7);
        assert_eq!(parse_member(&m), Some((Snowflake::from_u64(12), 7)));
        assert_eq!(parse_member("junk"), None);
    }
}
