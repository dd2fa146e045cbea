//! Servers' members in PostgreSQL (`guild_members`, `member_roles`, `bans`): who is in a server,
//! their nickname, roles and time-out, and who is banned. Callers that change them hold the
//! server's lock (`crate::guilds`).

use std::collections::HashMap;

use proto::Snowflake;
use proto::api::channels::MembersQuery;
use proto::api::guilds::{Ban, GuildMember};
use proto::api::users::User;
use sqlx::{PgConnection, PgExecutor};

use crate::profiles::UserRow;

struct Row {
    id: i64,
    username: String,
    display_name: Option<String>,
    avatar_url: Option<String>,
    bio: Option<String>,
    status: String,
    nick: Option<String>,
    joined_at: i64,
    until: Option<i64>,
    roles: Vec<i64>,
}

impl From<Row> for GuildMember {
    fn from(row: Row) -> Self {
        Self {
            user: User::from(UserRow {
                id: row.id,
                username: row.username,
                display_name: row.display_name,
                avatar_url: row.avatar_url,
                bio: row.bio,
                status: row.status,
            })
            .seen_by_others(),
            nick: row.nick,
            roles: row.roles.into_iter().map(Snowflake::from_i64).collect(),
            joined_at: u64::try_from(row.joined_at).unwrap_or(0),
            communication_disabled_until: row.until.and_then(|t| u64::try_from(t).ok()),
        }
    }
}

/// One member, or `None` when they are not in the server.
pub async fn one(
    db: impl PgExecutor<'_>,
    guild: Snowflake,
    user: Snowflake,
) -> Result<Option<GuildMember>, sqlx::Error> {
    let row = sqlx::query_as!(
        Row,
        r#"SELECT u.id, u.username, u.display_name, u.avatar_url, u.bio, u.status, gm.nick,
                (EXTRACT(EPOCH FROM gm.joined_at) * 1000)::BIGINT AS "joined_at!",
                (EXTRACT(EPOCH FROM gm.communication_disabled_until) * 1000)::BIGINT AS until,
                ARRAY(SELECT role_id FROM member_roles mr
                      WHERE mr.guild_id = gm.guild_id AND mr.user_id = gm.user_id
                      ORDER BY role_id) AS "roles!"
         FROM guild_members gm JOIN users u ON u.id = gm.user_id
         WHERE gm.guild_id = $1 AND gm.user_id = $2"#,
        guild.as_i64(),
        user.as_i64()
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(GuildMember::from))
}

/// A page of a server's members in user-id order, or those among some ids.
pub async fn page(
    db: impl PgExecutor<'_>,
    guild: Snowflake,
    query: &MembersQuery,
) -> Result<Vec<GuildMember>, sqlx::Error> {
    let (after, limit, ids) = match query {
        MembersQuery::Page { after, limit } => (
            after.map_or(i64::MIN, |a| a.as_i64()),
            i64::from(*limit),
            None,
        ),
        MembersQuery::Ids(ids) => (
            i64::MIN,
            ids.len() as i64,
            Some(ids.iter().map(|id| id.as_i64()).collect::<Vec<i64>>()),
        ),
    };
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT u.id, u.username, u.display_name, u.avatar_url, u.bio, u.status, gm.nick,
                (EXTRACT(EPOCH FROM gm.joined_at) * 1000)::BIGINT AS "joined_at!",
                (EXTRACT(EPOCH FROM gm.communication_disabled_until) * 1000)::BIGINT AS until,
                ARRAY(SELECT role_id FROM member_roles mr
                      WHERE mr.guild_id = gm.guild_id AND mr.user_id = gm.user_id
                      ORDER BY role_id) AS "roles!"
         FROM guild_members gm JOIN users u ON u.id = gm.user_id
         WHERE gm.guild_id = $1 AND gm.user_id > $2
           AND ($4::BIGINT[] IS NULL OR gm.user_id = ANY($4))
         ORDER BY gm.user_id LIMIT $3"#,
        guild.as_i64(),
        after,
        limit,
        ids.as_deref()
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(GuildMember::from).collect())
}

/// Every membership of `user`, with their member object in each server.
pub async fn of_user(
    db: impl PgExecutor<'_>,
    user: Snowflake,
) -> Result<Vec<(Snowflake, GuildMember)>, sqlx::Error> {
    let mut of = of_users(db, &[user.as_i64()]).await?;
    Ok(of.remove(&user).unwrap_or_default())
}

/// As [`of_user`], for each of `users` that is in a server (one query).
pub async fn of_users(
    db: impl PgExecutor<'_>,
    users: &[i64],
) -> Result<HashMap<Snowflake, Vec<(Snowflake, GuildMember)>>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT gm.guild_id, u.id, u.username, u.display_name, u.avatar_url, u.bio, u.status,
                gm.nick,
                (EXTRACT(EPOCH FROM gm.joined_at) * 1000)::BIGINT AS "joined_at!",
                (EXTRACT(EPOCH FROM gm.communication_disabled_until) * 1000)::BIGINT AS until,
                ARRAY(SELECT role_id FROM member_roles mr
                      WHERE mr.guild_id = gm.guild_id AND mr.user_id = gm.user_id
                      ORDER BY role_id) AS "roles!"
         FROM guild_members gm JOIN users u ON u.id = gm.user_id
         WHERE gm.user_id = ANY($1) ORDER BY gm.user_id, gm.guild_id"#,
        users
    )
    .fetch_all(db)
    .await?;
    let mut of: HashMap<Snowflake, Vec<(Snowflake, GuildMember)>> = HashMap::new();
    for r in rows {
        let user = Snowflake::from_i64(r.id);
        let member = GuildMember::from(Row {
            id: r.id,
            username: r.username,
            display_name: r.display_name,
            avatar_url: r.avatar_url,
            bio: r.bio,
            status: r.status,
            nick: r.nick,
            joined_at: r.joined_at,
            until: r.until,
            roles: r.roles,
        });
        of.entry(user)
            .or_default()
            .push((Snowflake::from_i64(r.guild_id), member));
    }
    Ok(of)
}

/// Adds `user` to the server (no roles but @everyone).
pub async fn join(
    tx: &mut PgConnection,
    guild: Snowflake,
    user: Snowflake,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO guild_members (guild_id, user_id) VALUES ($1, $2)",
        guild.as_i64(),
        user.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Takes `user` out of the server (their roles go with them). True when they were in it.
pub async fn remove(
    tx: &mut PgConnection,
    guild: Snowflake,
    user: Snowflake,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM guild_members WHERE guild_id = $1 AND user_id = $2",
        guild.as_i64(),
        user.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets a member's nickname (`Some(None)` clears it) and time-out (Unix milliseconds).
pub async fn update(
    tx: &mut PgConnection,
    guild: Snowflake,
    user: Snowflake,
    nick: Option<Option<&str>>,
    until: Option<Option<u64>>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE guild_members SET
             nick = CASE WHEN $3 THEN $4 ELSE nick END,
             communication_disabled_until = CASE WHEN $5
                 THEN to_timestamp($6::BIGINT / 1000.0) ELSE communication_disabled_until END
         WHERE guild_id = $1 AND user_id = $2",
        guild.as_i64(),
        user.as_i64(),
        nick.is_some(),
        nick.flatten(),
        until.is_some(),
        until.flatten().map(|t| t as i64)
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Gives a member exactly `roles` (other than @everyone).
pub async fn set_roles(
    tx: &mut PgConnection,
    guild: Snowflake,
    user: Snowflake,
    roles: &[Snowflake],
) -> Result<(), sqlx::Error> {
    let ids: Vec<i64> = roles.iter().map(|r| r.as_i64()).collect();
    sqlx::query!(
        "DELETE FROM member_roles WHERE guild_id = $1 AND user_id = $2 AND role_id <> ALL($3)",
        guild.as_i64(),
        user.as_i64(),
        &ids
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO member_roles (guild_id, user_id, role_id)
         SELECT $1, $2, unnest($3::BIGINT[]) ON CONFLICT DO NOTHING",
        guild.as_i64(),
        user.as_i64(),
        &ids
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn is_banned(
    tx: &mut PgConnection,
    guild: Snowflake,
    user: Snowflake,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM bans WHERE guild_id = $1 AND user_id = $2) AS "banned!""#,
        guild.as_i64(),
        user.as_i64()
    )
    .fetch_one(&mut *tx)
    .await
}

/// Bans `user` (again, with a new reason, if they were). True when the ban is new.
pub async fn ban(
    tx: &mut PgConnection,
    guild: Snowflake,
    user: Snowflake,
    reason: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "INSERT INTO bans (guild_id, user_id, reason) VALUES ($1, $2, $3)
         ON CONFLICT (guild_id, user_id) DO NOTHING",
        guild.as_i64(),
        user.as_i64(),
        reason
    )
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Lifts a ban; true when there was one.
pub async fn unban(
    tx: &mut PgConnection,
    guild: Snowflake,
    user: Snowflake,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM bans WHERE guild_id = $1 AND user_id = $2",
        guild.as_i64(),
        user.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A server's bans, oldest first, at most `limit` after the user id `after`.
pub async fn bans(
    db: impl PgExecutor<'_>,
    guild: Snowflake,
    after: Option<Snowflake>,
    limit: u32,
) -> Result<Vec<Ban>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT u.id, u.username, u.display_name, u.avatar_url, u.bio, u.status, b.reason
         FROM bans b JOIN users u ON u.id = b.user_id
         WHERE b.guild_id = $1 AND b.user_id > $2 ORDER BY b.user_id LIMIT $3",
        guild.as_i64(),
        after.map_or(i64::MIN, |a| a.as_i64()),
        i64::from(limit)
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Ban {
            user: User::from(UserRow {
                id: r.id,
                username: r.username,
                display_name: r.display_name,
                avatar_url: r.avatar_url,
                bio: r.bio,
                status: r.status,
            })
            .seen_by_others(),
            reason: r.reason,
        })
        .collect())
}
