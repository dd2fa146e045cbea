//! A read-through Redis cache of profiles, keyed by user id, invalidated by every update.
//!
//! Redis is an accelerator, not a dependency: when it is down or slow (each call has a short
//! deadline), reads go to PostgreSQL and the failure is logged and counted, never returned. The
//! connection is made lazily and retried at most once a second, so auth starts without Redis.
//!
//! A read racing an update can put the old profile back after the update deleted it; the TTL
//! bounds how long that lasts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::IntCounterVec;
use proto::Snowflake;
use proto::api::users::User;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

const CALL_DEADLINE: Duration = Duration::from_millis(250);
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct ProfileCache {
    client: redis::Client,
    connection: Arc<Mutex<Connection>>,
    prefix: String,
    ttl: Duration,
    outcomes: IntCounterVec,
}

#[derive(Default)]
struct Connection {
    manager: Option<ConnectionManager>,
    last_attempt: Option<Instant>,
}

impl ProfileCache {
    /// `prefix` namespaces the keys (`{prefix}:user:{id}`), like the NATS prefix does subjects.
    pub fn new(
        client: redis::Client,
        prefix: &str,
        ttl: Duration,
        outcomes: IntCounterVec,
    ) -> Self {
        Self {
            client,
            connection: Arc::default(),
            prefix: prefix.to_owned(),
            ttl,
            outcomes,
        }
    }

    fn key(&self, id: Snowflake) -> String {
        format!("{}:user:{id}", self.prefix)
    }

    async fn manager(&self) -> Option<ConnectionManager> {
        let mut connection = self.connection.lock().await;
        if let Some(manager) = &connection.manager {
            return Some(manager.clone());
        }
        if connection
            .last_attempt
            .is_some_and(|at| at.elapsed() < RECONNECT_EVERY)
        {
            return None;
        }
        connection.last_attempt = Some(Instant::now());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_DEADLINE))
            .set_response_timeout(Some(CALL_DEADLINE))
            .set_number_of_retries(1);
        match tokio::time::timeout(
            CALL_DEADLINE * 2,
            self.client.get_connection_manager_with_config(config),
        )
        .await
        {
            Ok(Ok(manager)) => {
                connection.manager = Some(manager.clone());
                Some(manager)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "profile cache: cannot connect to Redis; reading from PostgreSQL");
                None
            }
            Err(_) => {
                tracing::warn!("profile cache: Redis did not answer; reading from PostgreSQL");
                None
            }
        }
    }

    fn count(&self, outcome: &str) {
        self.outcomes.with_label_values(&[outcome]).inc();
    }

    /// The cached profile, or `None` on a miss or any Redis trouble.
    pub async fn get(&self, id: Snowflake) -> Option<User> {
        self.get_many(&[id]).await.pop().flatten()
    }

    /// The cached profiles of `ids`, in their order (one MGET): `None` for each miss, and for
    /// all of them on any Redis trouble.
    pub async fn get_many(&self, ids: &[Snowflake]) -> Vec<Option<User>> {
        let none = || ids.iter().map(|_| None).collect();
        if ids.is_empty() {
            return Vec::new();
        }
        let Some(mut redis) = self.manager().await else {
            self.count("error");
            return none();
        };
        let keys: Vec<String> = ids.iter().map(|id| self.key(*id)).collect();
        let read = redis.mget::<_, Vec<Option<String>>>(&keys);
        match tokio::time::timeout(CALL_DEADLINE, read).await {
            Ok(Ok(found)) if found.len() == ids.len() => found
                .into_iter()
                .map(|json| {
                    let user = json.and_then(|json| serde_json::from_str(&json).ok());
                    self.count(if user.is_some() { "hit" } else { "miss" });
                    user
                })
                .collect(),
            Ok(Ok(_)) => {
                self.count("error");
                tracing::warn!("profile cache answered a different number of keys");
                none()
            }
            Ok(Err(e)) => {
                self.count("error");
                tracing::warn!(error = %e, "profile cache read failed; reading from PostgreSQL");
                none()
            }
            Err(_) => {
                self.count("error");
                tracing::warn!("profile cache read timed out; reading from PostgreSQL");
                none()
            }
        }
    }

    pub async fn put(&self, user: &User) {
        let Some(mut redis) = self.manager().await else {
            return;
        };
        let json = serde_json::to_string(user).expect("profiles serialize");
        let set = redis.set_ex::<_, _, ()>(self.key(user.id), json, self.ttl.as_secs().max(1));
        match tokio::time::timeout(CALL_DEADLINE, set).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "profile cache write failed"),
            Err(_) => tracing::warn!("profile cache write timed out"),
        }
    }

    /// Drops a profile after it changed. A failure is logged: the entry then lives out its TTL.
    pub async fn invalidate(&self, id: Snowflake) {
        let Some(mut redis) = self.manager().await else {
            tracing::warn!(user = %id, "profile cache: cannot invalidate; Redis unavailable");
            return;
        };
        let del = redis.del::<_, ()>(self.key(id));
        match tokio::time::timeout(CALL_DEADLINE, del).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(user = %id, error = %e, "profile cache invalidation failed")
            }
            Err(_) => tracing::warn!(user = %id, "profile cache invalidation timed out"),
        }
    }
}
