//! Answering `{p}.presence.query`: users' real presence, read from Redis.

use proto::Snowflake;
use proto::api::presence::{Presence, PresenceStatus};
use proto::tracker::SessionStatus;
use redis::RedisResult;
use redis::aio::ConnectionManager;

use crate::keys::Keys;

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
                    .and_then(|s| s.parse::<SessionStatus>().ok())
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
