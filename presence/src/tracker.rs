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
use std::time::Duration;

use proto::Snowflake;
use proto::api::presence::{Presence, PresenceStatus};
use proto::events::Event;
use proto::subjects::Subjects;
use proto::tracker::{EdgeId, HeartbeatReply, Report, SessionEntry, SessionStatus, Sync};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisResult};

use crate::keys::{Keys, member, parse_member};
use crate::metrics::PresenceMetrics;

mod sweep;

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

    /// Applies reports that arrived together, in their order: their writes in one pipeline
    /// (Redis runs it in order), then each user they touched worked out once, from where all of
    /// them left it. A user whose devices reconnect together (a storm) is one status change, not
    /// one per report, and the reports cost one round trip, not one each.
    pub async fn reports(&mut self, reports: Vec<Report>) {
        if reports.is_empty() {
            return;
        }
        self.metrics.reports.inc_by(reports.len() as u64);
        let result = self.apply(reports).await;
        self.noted(result);
    }

    async fn apply(&mut self, reports: Vec<Report>) -> RedisResult<()> {
        let mut pipe = self.keys.pipe();
        let mut kept = HashSet::new();
        let mut users = BTreeSet::new();
        for report in reports {
            let user = match report {
                Report::Session { edge, entry } => {
                    if kept.insert(edge) {
                        self.keep_edge(&mut pipe, edge);
                    }
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
            users.insert(user);
        }
        pipe.query_async::<()>(&mut self.redis).await?;
        let users: Vec<Snowflake> = users.into_iter().collect();
        self.recompute(&users, Leave::AfterGrace).await
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
        let users: Vec<Snowflake> = users.into_iter().collect();
        self.recompute(&users, Leave::AfterGrace).await
    }

    /// Works out each of `users`' status from their sessions and publishes those that changed:
    /// every user's counts read in one round trip, their writes made in one more (a reconnect
    /// storm's thousands of users cost a few round trips, not two each).
    async fn recompute(&mut self, users: &[Snowflake], leave: Leave) -> RedisResult<()> {
        if users.is_empty() {
            return Ok(());
        }
        let mut read = redis::pipe();
        for &user in users {
            read.hgetall(self.keys.statuses(user))
                .get(self.keys.shown(user));
        }
        let counts: Vec<redis::Value> = read.query_async(&mut self.redis).await?;
        let mut pipe = redis::pipe();
        let mut changed = Vec::new();
        let mut gone = Vec::new();
        for (&user, counts) in users.iter().zip(counts.chunks_exact(2)) {
            let statuses: HashMap<String, i64> = redis::from_redis_value_ref(&counts[0])?;
            let shown: Option<String> = redis::from_redis_value_ref(&counts[1])?;
            let now = SessionStatus::combine(
                statuses
                    .iter()
                    .filter(|(_, count)| **count > 0)
                    .filter_map(|(status, _)| status.parse::<SessionStatus>().ok()),
            );
            let before = shown
                .as_deref()
                .and_then(|s| s.parse::<SessionStatus>().ok());
            match now {
                Some(status) => {
                    pipe.zrem(&self.keys.leaving, user.to_string()).ignore();
                    if before != Some(status) {
                        pipe.set(self.keys.shown(user), status.as_str()).ignore();
                        // Going invisible is leaving, as far as anyone else can tell.
                        if status == SessionStatus::Invisible && before.is_some() {
                            self.set_seen(&mut pipe, user);
                        }
                        changed.push((user, before, status));
                    }
                }
                None if before.is_none() => {
                    pipe.zrem(&self.keys.leaving, user.to_string()).ignore();
                }
                None if leave == Leave::AfterGrace => {
                    // Left now; shown offline after the grace unless a session returns. An
                    // invisible user's last-seen stays when they went invisible.
                    let grace_over = now_ms() + self.settings.grace.as_millis() as i64;
                    pipe.zadd(&self.keys.leaving, user.to_string(), grace_over)
                        .ignore();
                    if before != Some(SessionStatus::Invisible) {
                        self.set_seen(&mut pipe, user);
                    }
                }
                None => gone.push((user, before)),
            }
        }
        if !pipe.is_empty() {
            pipe.query_async::<()>(&mut self.redis).await?;
        }
        for (user, before, status) in changed {
            self.publish(user, before, status.into(), None).await;
        }
        for (user, before) in gone {
            self.gone(user, before).await?;
        }
        Ok(())
    }

    /// A user with no session left who was shown as `before` is offline now (the grace, or
    /// their edge's expiry, is over).
    async fn gone(&mut self, user: Snowflake, before: Option<SessionStatus>) -> RedisResult<()> {
        let was_leaving: Option<f64> = self
            .redis
            .zscore(&self.keys.leaving, user.to_string())
            .await?;
        let mut pipe = redis::pipe();
        if before != Some(SessionStatus::Invisible) && was_leaving.is_none() {
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

pub fn now_ms() -> i64 {
    i64::try_from(proto::clock::unix_ms()).unwrap_or(i64::MAX)
}
