//! Limits on what one user can do to the size of others' worlds, kept in PostgreSQL so that every
//! auth instance counts the same: how many channels a user is in, and how many channels they
//! create and members they add per hour (`user_actions`, in `migrations/0004_consent.sql`).
//!
//! Each check runs inside the transaction that makes the change, after [`lock_users`] has locked
//! the users it counts for, so concurrent requests about the same person are counted one after
//! another and a limit holds exactly.

use std::time::Duration;

use kit::config::RateSpec;
use proto::Snowflake;
use sqlx::PgConnection;

/// The limits, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Quotas {
    /// Channels a user may be in by their own choice (group channels, and DMs they opened); DM
    /// requests from others that they have not opened have a budget of the same size of their own.
    pub channel_limit: u32,
    /// Group channels a user may create per window.
    pub channel_creates: RateSpec,
    /// Members a user may add to channels per window.
    pub member_adds: RateSpec,
    /// Servers a user may be in.
    pub guild_limit: u32,
    /// Channels (categories included) a server may have.
    pub guild_channel_limit: u32,
    /// Roles (@everyone included) a server may have.
    pub role_limit: u32,
    /// Invites a user may create per window.
    pub invite_creates: RateSpec,
}

/// An action counted against an hourly limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Action {
    ChannelCreate,
    MemberAdd,
    InviteCreate,
}

impl Action {
    /// The name stored in `user_actions.action`.
    fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Locks the users' rows until the transaction ends, in id order (so two transactions locking the
/// same people cannot deadlock). `FOR NO KEY UPDATE` leaves inserts that reference them alone.
pub async fn lock_users(tx: &mut PgConnection, users: &[Snowflake]) -> Result<(), sqlx::Error> {
    let ids: Vec<i64> = users.iter().map(|u| u.as_i64()).collect();
    sqlx::query!(
        "SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
        &ids
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(())
}

/// How many channels `user` is in by choice, and how many DM requests await them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelCounts {
    pub chosen: u32,
    pub requests: u32,
}

pub async fn channel_counts(
    tx: &mut PgConnection,
    user: Snowflake,
) -> Result<ChannelCounts, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE opened) AS "chosen!",
                count(*) FILTER (WHERE NOT opened) AS "requests!"
         FROM channel_members WHERE user_id = $1"#,
        user.as_i64()
    )
    .fetch_one(&mut *tx)
    .await?;
    let (chosen, requests) = (row.chosen, row.requests);
    Ok(ChannelCounts {
        chosen: u32::try_from(chosen).unwrap_or(u32::MAX),
        requests: u32::try_from(requests).unwrap_or(u32::MAX),
    })
}

/// `Ok` when `user` may do one more `action` within `spec`'s window, else how long until they
/// may. Counts; [`record`] spends.
pub async fn check(
    tx: &mut PgConnection,
    user: Snowflake,
    action: Action,
    spec: RateSpec,
) -> Result<Result<(), Duration>, sqlx::Error> {
    let window = spec.per.as_secs_f64();
    let row = sqlx::query!(
        r#"SELECT count(*) AS "count!",
                EXTRACT(EPOCH FROM (min(at) + make_interval(secs => $3) - now()))::float8 AS wait
         FROM user_actions
         WHERE user_id = $1 AND action = $2 AND at > now() - make_interval(secs => $3)"#,
        user.as_i64(),
        action.as_str(),
        window
    )
    .fetch_one(&mut *tx)
    .await?;
    let (count, wait) = (row.count, row.wait);
    if count < i64::from(spec.count.get()) {
        return Ok(Ok(()));
    }
    Ok(Err(Duration::from_secs_f64(
        wait.unwrap_or(window).max(1.0),
    )))
}

/// Counts one `action` of `user`'s now.
pub async fn record(
    tx: &mut PgConnection,
    user: Snowflake,
    action: Action,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO user_actions (user_id, action) VALUES ($1, $2)",
        user.as_i64(),
        action.as_str()
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Forgets actions older than `keep` (the longest window), so the table stays small.
pub async fn forget_before(db: &sqlx::PgPool, keep: Duration) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM user_actions WHERE at < now() - make_interval(secs => $1)",
        keep.as_secs_f64()
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
