//! The sweep: edges past their deadline lose their sessions, users past their grace go offline;
//! and the tracker's distrust of deadlines while it falls behind.

use std::collections::BTreeSet;
use std::time::Duration;

use proto::Snowflake;
use redis::{AsyncCommands, RedisResult};

use super::{Leave, Tracker, now_ms};
use crate::keys::parse_member;

impl Tracker {
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

    pub(super) fn distrust_deadlines(&mut self) {
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
            let users: Vec<Snowflake> = users.into_iter().collect();
            self.recompute(&users, Leave::Now).await?;
        }
        let leaving: Vec<String> = self
            .redis
            .zrangebyscore(&self.keys.leaving, "-inf", now)
            .await?;
        let mut users = Vec::with_capacity(leaving.len());
        for user in leaving {
            match user.parse::<Snowflake>() {
                Ok(user) => users.push(user),
                Err(_) => self.redis.zrem(&self.keys.leaving, &user).await?,
            }
        }
        self.recompute(&users, Leave::Now).await
    }
}
