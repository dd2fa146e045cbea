//! Servers' channels in PostgreSQL: rows of `channels` with a `guild_id` (kinds text, voice and
//! category) and their `permission_overwrites`. Callers that change them hold the server's lock
//! (`crate::guilds`).

use std::collections::HashMap;

use proto::Snowflake;
use proto::api::channels::{Channel, ChannelChanges, ChannelKind};
use proto::api::guilds::{ChannelPosition, NewGuildChannel};
use proto::permissions::{Overwrite, OverwriteType, Permissions};
use sqlx::{PgConnection, PgExecutor};

struct Row {
    id: i64,
    kind: String,
    name: Option<String>,
    topic: Option<String>,
    guild_id: Option<i64>,
    parent_id: Option<i64>,
    position: i32,
    rate_limit_per_user: i32,
}

struct OverwriteRow {
    channel_id: i64,
    target_id: i64,
    kind: i16,
    allow: i64,
    deny: i64,
}

impl From<&OverwriteRow> for Overwrite {
    fn from(row: &OverwriteRow) -> Self {
        Self {
            id: Snowflake::from_i64(row.target_id),
            kind: if row.kind == 1 {
                OverwriteType::Member
            } else {
                OverwriteType::Role
            },
            allow: Permissions::from_i64(row.allow),
            deny: Permissions::from_i64(row.deny),
        }
    }
}

fn channel(row: Row, member_count: u32, overwrites: Vec<Overwrite>) -> Channel {
    Channel {
        name: row.name,
        topic: row.topic,
        member_count,
        guild_id: row.guild_id.map(Snowflake::from_i64),
        parent_id: row.parent_id.map(Snowflake::from_i64),
        position: Some(row.position),
        rate_limit_per_user: Some(u32::try_from(row.rate_limit_per_user).unwrap_or(0)),
        permission_overwrites: overwrites,
        ..Channel::new(
            Snowflake::from_i64(row.id),
            row.kind.parse().unwrap_or(ChannelKind::Text),
        )
    }
}

/// Every channel of a server with its overwrites, in list order (position, then id).
/// `member_count` is the server's, which every one of its channels reports.
pub async fn all(
    conn: &mut PgConnection,
    guild: Snowflake,
    member_count: u32,
) -> Result<Vec<Channel>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT id, kind, name, topic, guild_id, parent_id, position, rate_limit_per_user
         FROM channels WHERE guild_id = $1 ORDER BY position, id",
        guild.as_i64()
    )
    .fetch_all(&mut *conn)
    .await?;
    let overwrites = sqlx::query_as!(
        OverwriteRow,
        r#"SELECT o.channel_id, o.target_id, o.type AS kind, o.allow, o.deny
         FROM permission_overwrites o JOIN channels c ON c.id = o.channel_id
         WHERE c.guild_id = $1 ORDER BY o.channel_id, o.type, o.target_id"#,
        guild.as_i64()
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut by_channel: HashMap<i64, Vec<Overwrite>> = HashMap::new();
    for o in &overwrites {
        by_channel.entry(o.channel_id).or_default().push(o.into());
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let overwrites = by_channel.remove(&row.id).unwrap_or_default();
            channel(row, member_count, overwrites)
        })
        .collect())
}

/// One of a server's channels, or `None` (no such channel, or not a server's).
pub async fn one(
    conn: &mut PgConnection,
    id: Snowflake,
    member_count: u32,
) -> Result<Option<Channel>, sqlx::Error> {
    let row = sqlx::query_as!(
        Row,
        "SELECT id, kind, name, topic, guild_id, parent_id, position, rate_limit_per_user
         FROM channels WHERE id = $1 AND guild_id IS NOT NULL",
        id.as_i64()
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let overwrites = sqlx::query_as!(
        OverwriteRow,
        r#"SELECT channel_id, target_id, type AS kind, allow, deny
         FROM permission_overwrites WHERE channel_id = $1 ORDER BY type, target_id"#,
        id.as_i64()
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(channel(
        row,
        member_count,
        overwrites.iter().map(Overwrite::from).collect(),
    )))
}

/// The server a channel belongs to, if it is a server's.
pub async fn guild_of(
    db: impl PgExecutor<'_>,
    channel: Snowflake,
) -> Result<Option<Snowflake>, sqlx::Error> {
    let guild = sqlx::query_scalar!(
        "SELECT guild_id FROM channels WHERE id = $1",
        channel.as_i64()
    )
    .fetch_optional(db)
    .await?;
    Ok(guild.flatten().map(Snowflake::from_i64))
}

pub async fn count(tx: &mut PgConnection, guild: Snowflake) -> Result<u32, sqlx::Error> {
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM channels WHERE guild_id = $1"#,
        guild.as_i64()
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// A new server's first channel: text, `general`.
pub async fn create_general(
    tx: &mut PgConnection,
    id: Snowflake,
    guild: Snowflake,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO channels (id, kind, name, guild_id) VALUES ($1, 'text', 'general', $2)",
        id.as_i64(),
        guild.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A new channel; without a position it goes last.
pub async fn create(
    tx: &mut PgConnection,
    id: Snowflake,
    guild: Snowflake,
    new: &NewGuildChannel,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO channels (id, kind, name, topic, guild_id, parent_id, position, rate_limit_per_user)
         VALUES ($1, $2, $3, $4, $5, $6,
                 COALESCE($7, (SELECT COALESCE(max(position) + 1, 0) FROM channels WHERE guild_id = $5)),
                 $8)",
        id.as_i64(),
        new.kind.as_str(),
        new.name.as_str(),
        new.topic.as_ref().map(|t| t.as_str()),
        guild.as_i64(),
        new.parent_id.map(|p| p.as_i64()),
        new.position,
        new.rate_limit_per_user as i32
    )
    .execute(&mut *tx)
    .await?;
    for overwrite in &new.overwrites {
        set_overwrite(tx, id, overwrite).await?;
    }
    Ok(())
}

/// Applies `changes` (name, topic, slowmode, category, position) to a server's channel.
pub async fn update(
    tx: &mut PgConnection,
    id: Snowflake,
    changes: &ChannelChanges,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE channels SET
             name = COALESCE($2, name),
             topic = CASE WHEN $3 THEN $4 ELSE topic END,
             rate_limit_per_user = COALESCE($5, rate_limit_per_user),
             parent_id = CASE WHEN $6 THEN $7 ELSE parent_id END,
             position = COALESCE($8, position),
             updated_at = now()
         WHERE id = $1",
        id.as_i64(),
        changes.name.as_ref().map(|n| n.as_str()),
        changes.topic.is_some(),
        changes
            .topic
            .as_ref()
            .and_then(|t| t.as_ref().map(|t| t.as_str())),
        changes.rate_limit_per_user.map(|s| s as i32),
        changes.parent_id.is_some(),
        changes.parent_id.flatten().map(|p| p.as_i64()),
        changes.position
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Moves channels as a reorder says.
pub async fn reorder(
    tx: &mut PgConnection,
    positions: &[ChannelPosition],
) -> Result<(), sqlx::Error> {
    for entry in positions {
        let changes = ChannelChanges {
            position: entry.position,
            parent_id: entry.parent_id,
            ..Default::default()
        };
        update(tx, entry.id, &changes).await?;
    }
    Ok(())
}

/// Deletes a channel (its overwrites and invites go with it).
pub async fn delete(tx: &mut PgConnection, id: Snowflake) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM channels WHERE id = $1", id.as_i64())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Sets a channel's overwrite for one role or member, answering the one it replaced.
pub async fn set_overwrite(
    tx: &mut PgConnection,
    channel: Snowflake,
    overwrite: &Overwrite,
) -> Result<Option<Overwrite>, sqlx::Error> {
    let before = overwrite_of(tx, channel, overwrite.id).await?;
    sqlx::query!(
        "INSERT INTO permission_overwrites (channel_id, target_id, type, allow, deny)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (channel_id, target_id)
         DO UPDATE SET type = $3, allow = $4, deny = $5",
        channel.as_i64(),
        overwrite.id.as_i64(),
        overwrite.kind as i16,
        overwrite.allow.as_i64(),
        overwrite.deny.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    Ok(before)
}

/// Deletes a channel's overwrite for one role or member, answering it (if there was one).
pub async fn delete_overwrite(
    tx: &mut PgConnection,
    channel: Snowflake,
    target: Snowflake,
) -> Result<Option<Overwrite>, sqlx::Error> {
    let before = overwrite_of(tx, channel, target).await?;
    sqlx::query!(
        "DELETE FROM permission_overwrites WHERE channel_id = $1 AND target_id = $2",
        channel.as_i64(),
        target.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    Ok(before)
}

async fn overwrite_of(
    tx: &mut PgConnection,
    channel: Snowflake,
    target: Snowflake,
) -> Result<Option<Overwrite>, sqlx::Error> {
    let row = sqlx::query_as!(
        OverwriteRow,
        r#"SELECT channel_id, target_id, type AS kind, allow, deny
         FROM permission_overwrites WHERE channel_id = $1 AND target_id = $2"#,
        channel.as_i64(),
        target.as_i64()
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.as_ref().map(Overwrite::from))
}

/// The server's channels that have an overwrite for `target` (a role or member).
pub async fn with_overwrite_for(
    tx: &mut PgConnection,
    guild: Snowflake,
    target: Snowflake,
) -> Result<Vec<Snowflake>, sqlx::Error> {
    let rows = sqlx::query_scalar!(
        "SELECT o.channel_id FROM permission_overwrites o JOIN channels c ON c.id = o.channel_id
         WHERE c.guild_id = $1 AND o.target_id = $2 ORDER BY o.channel_id",
        guild.as_i64(),
        target.as_i64()
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows.into_iter().map(Snowflake::from_i64).collect())
}
