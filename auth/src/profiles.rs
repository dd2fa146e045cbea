//! Profiles in PostgreSQL. Reads by id go through [`crate::cache::ProfileCache`].

use proto::Snowflake;
use proto::api::names::Username;
use proto::api::users::{MAX_MUTUALS, MutualChannel, MutualGuild, ProfileChanges, Status, User};
use sqlx::PgExecutor;

/// The columns of a profile (never the password hash), as every query of one selects them:
/// `id, username, display_name, avatar_url, bio, status`.
#[derive(Debug)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    pub status: String,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: Snowflake::from_i64(row.id),
            username: row.username,
            display_name: row.display_name,
            avatar_url: row.avatar_url,
            bio: row.bio,
            status: Status::parse_settable(&row.status).unwrap_or(Status::Online),
        }
    }
}

pub async fn by_id(db: impl PgExecutor<'_>, id: Snowflake) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query_as!(
        UserRow,
        "SELECT id, username, display_name, avatar_url, bio, status FROM users WHERE id = $1",
        id.as_i64()
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(User::from))
}

/// The profiles of `ids` that exist, in no order.
pub async fn by_ids(db: impl PgExecutor<'_>, ids: &[i64]) -> Result<Vec<User>, sqlx::Error> {
    let rows = sqlx::query_as!(
        UserRow,
        "SELECT id, username, display_name, avatar_url, bio, status FROM users WHERE id = ANY($1)",
        ids
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(User::from).collect())
}

pub async fn id_by_username(
    db: impl PgExecutor<'_>,
    username: &Username,
) -> Result<Option<Snowflake>, sqlx::Error> {
    let id = sqlx::query_scalar!(
        "SELECT id FROM users WHERE username = $1",
        username.as_str()
    )
    .fetch_optional(db)
    .await?;
    Ok(id.map(Snowflake::from_i64))
}

/// Applies `changes` and returns the new profile.
pub async fn update(
    db: impl PgExecutor<'_>,
    id: Snowflake,
    changes: ProfileChanges,
) -> Result<Option<User>, sqlx::Error> {
    let ProfileChanges {
        display_name,
        avatar_url,
        bio,
        status,
    } = changes;
    let row = sqlx::query_as!(
        UserRow,
        "UPDATE users SET
             display_name = CASE WHEN $2 THEN $3 ELSE display_name END,
             avatar_url   = CASE WHEN $4 THEN $5 ELSE avatar_url END,
             bio          = CASE WHEN $6 THEN $7 ELSE bio END,
             status       = COALESCE($8, status),
             updated_at   = now()
         WHERE id = $1
         RETURNING id, username, display_name, avatar_url, bio, status",
        id.as_i64(),
        display_name.is_some(),
        display_name.flatten().map(|n| n.into_string()),
        avatar_url.is_some(),
        avatar_url.flatten().map(|u| u.into_string()),
        bio.is_some(),
        bio.flatten().map(|b| b.into_string()),
        status.map(Status::as_str)
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(User::from))
}

/// The servers both `viewer` and `user` are in, oldest first, with `user`'s nickname in each.
pub async fn mutual_guilds(
    db: impl PgExecutor<'_>,
    viewer: Snowflake,
    user: Snowflake,
) -> Result<Vec<MutualGuild>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT them.guild_id, them.nick FROM guild_members them
         JOIN guild_members me ON me.guild_id = them.guild_id AND me.user_id = $1
         WHERE them.user_id = $2 ORDER BY them.guild_id LIMIT $3",
        viewer.as_i64(),
        user.as_i64(),
        MAX_MUTUALS
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| MutualGuild {
            id: Snowflake::from_i64(r.guild_id),
            nick: r.nick,
        })
        .collect())
}

/// The group channels (not DMs) both `viewer` and `user` are in, oldest first.
pub async fn mutual_channels(
    db: impl PgExecutor<'_>,
    viewer: Snowflake,
    user: Snowflake,
) -> Result<Vec<MutualChannel>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT c.id, c.name FROM channel_members them
         JOIN channel_members me ON me.channel_id = them.channel_id AND me.user_id = $1
         JOIN channels c ON c.id = them.channel_id AND c.kind = 'group'
         WHERE them.user_id = $2 ORDER BY c.id LIMIT $3",
        viewer.as_i64(),
        user.as_i64(),
        MAX_MUTUALS
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| MutualChannel {
            id: Snowflake::from_i64(r.id),
            name: r.name,
        })
        .collect())
}
