//! Group channels, DMs and membership in PostgreSQL (tables in `migrations/0003_channels.sql`).
//!
//! Invariants the database holds, whatever requests race:
//! - a group channel never has more members than the limit: adding one locks the channel row
//!   (`SELECT ... FOR UPDATE`), counts, then inserts, in one transaction;
//! - two users share at most one DM: `dm_pairs` has the ordered pair as its primary key and DMs
//!   are made with `INSERT ... ON CONFLICT DO NOTHING`;
//! - a group has exactly one owner (a partial unique index), who is a member.

use std::collections::HashMap;

use shared::Snowflake;
use shared::api::channels::{Channel, ChannelChanges, ChannelKind, Member, MemberRole, NewChannel};
use shared::api::users::User;
use sqlx::{PgExecutor, PgPool};

use crate::profiles::UserRow;

#[derive(sqlx::FromRow)]
struct ChannelRow {
    id: i64,
    kind: String,
    name: Option<String>,
    topic: Option<String>,
    owner_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    channel_id: i64,
    role: String,
    #[sqlx(flatten)]
    user: UserRow,
}

fn kind_of(s: &str) -> ChannelKind {
    if s == "dm" {
        ChannelKind::Dm
    } else {
        ChannelKind::Group
    }
}

/// Channels with their members, in id order. Members' statuses are as others see them.
pub async fn load_many(
    db: impl PgExecutor<'_> + Copy,
    ids: &[Snowflake],
) -> Result<Vec<Channel>, sqlx::Error> {
    let ids: Vec<i64> = ids.iter().map(|id| id.as_i64()).collect();
    let rows: Vec<ChannelRow> = sqlx::query_as(
        "SELECT id, kind, name, topic, owner_id FROM channels WHERE id = ANY($1) ORDER BY id",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?;
    let members: Vec<MemberRow> = sqlx::query_as(
        "SELECT cm.channel_id, cm.role,
                u.id, u.username, u.display_name, u.avatar_url, u.bio, u.status
         FROM channel_members cm JOIN users u ON u.id = cm.user_id
         WHERE cm.channel_id = ANY($1)
         ORDER BY cm.channel_id, (cm.role = 'owner') DESC, cm.joined_at, u.id",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?;
    let mut by_channel: HashMap<i64, Vec<Member>> = HashMap::new();
    for row in members {
        by_channel.entry(row.channel_id).or_default().push(Member {
            role: MemberRole::from_db(&row.role).unwrap_or(MemberRole::Member),
            user: User::from(row.user).seen_by_others(),
        });
    }
    Ok(rows
        .into_iter()
        .map(|row| Channel {
            id: Snowflake::from_i64(row.id),
            kind: kind_of(&row.kind),
            name: row.name,
            topic: row.topic,
            owner_id: row.owner_id.map(Snowflake::from_i64),
            members: by_channel.remove(&row.id).unwrap_or_default(),
        })
        .collect())
}

pub async fn load(db: &PgPool, id: Snowflake) -> Result<Option<Channel>, sqlx::Error> {
    Ok(load_many(db, &[id]).await?.pop())
}

/// The ids of the channels `user` belongs to.
pub async fn ids_of(
    db: impl PgExecutor<'_>,
    user: Snowflake,
) -> Result<Vec<Snowflake>, sqlx::Error> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT channel_id FROM channel_members WHERE user_id = $1 ORDER BY channel_id",
    )
    .bind(user.as_i64())
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id,)| Snowflake::from_i64(id))
        .collect())
}

/// `user`'s place in `channel`, or `None` when they are not a member (or it does not exist:
/// callers cannot tell the two apart, by design).
pub async fn membership(
    db: impl PgExecutor<'_>,
    channel: Snowflake,
    user: Snowflake,
) -> Result<Option<(ChannelKind, MemberRole)>, sqlx::Error> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT c.kind, cm.role FROM channel_members cm JOIN channels c ON c.id = cm.channel_id
         WHERE cm.channel_id = $1 AND cm.user_id = $2",
    )
    .bind(channel.as_i64())
    .bind(user.as_i64())
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(kind, role)| {
        (
            kind_of(&kind),
            MemberRole::from_db(&role).unwrap_or(MemberRole::Member),
        )
    }))
}

pub async fn create_group(
    db: &PgPool,
    id: Snowflake,
    owner: Snowflake,
    new: &NewChannel,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO channels (id, kind, name, topic, owner_id) VALUES ($1, 'group', $2, $3, $4)",
    )
    .bind(id.as_i64())
    .bind(new.name.as_str())
    .bind(new.topic.as_ref().map(|t| t.as_str()))
    .bind(owner.as_i64())
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO channel_members (channel_id, user_id, role) VALUES ($1, $2, 'owner')")
        .bind(id.as_i64())
        .bind(owner.as_i64())
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

pub async fn update(
    db: &PgPool,
    id: Snowflake,
    changes: &ChannelChanges,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE channels SET
             name = COALESCE($2, name),
             topic = CASE WHEN $3 THEN $4 ELSE topic END,
             updated_at = now()
         WHERE id = $1",
    )
    .bind(id.as_i64())
    .bind(changes.name.as_ref().map(|n| n.as_str()))
    .bind(changes.topic.is_some())
    .bind(
        changes
            .topic
            .as_ref()
            .and_then(|t| t.as_ref().map(|t| t.as_str())),
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes a channel; its memberships go with it.
pub async fn delete(db: &PgPool, id: Snowflake) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM channels WHERE id = $1")
        .bind(id.as_i64())
        .execute(db)
        .await?;
    Ok(())
}

pub enum Added {
    Added,
    AlreadyMember,
    Full,
}

/// Adds `user` as a member unless the channel already has `limit` members. Concurrent adds to one
/// channel queue on its row lock, so the count they check is exact.
pub async fn add_member(
    db: &PgPool,
    channel: Snowflake,
    user: Snowflake,
    limit: u32,
) -> Result<Added, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("SELECT 1 FROM channels WHERE id = $1 FOR UPDATE")
        .bind(channel.as_i64())
        .execute(&mut *tx)
        .await?;
    let (count, already): (i64, bool) = sqlx::query_as(
        "SELECT count(*), coalesce(bool_or(user_id = $2), false)
         FROM channel_members WHERE channel_id = $1",
    )
    .bind(channel.as_i64())
    .bind(user.as_i64())
    .fetch_one(&mut *tx)
    .await?;
    if already {
        return Ok(Added::AlreadyMember);
    }
    if count >= i64::from(limit) {
        return Ok(Added::Full);
    }
    sqlx::query(
        "INSERT INTO channel_members (channel_id, user_id, role) VALUES ($1, $2, 'member')",
    )
    .bind(channel.as_i64())
    .bind(user.as_i64())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Added::Added)
}

/// Removes a member (never the owner: callers check). True when they were a member.
pub async fn remove_member(
    db: &PgPool,
    channel: Snowflake,
    user: Snowflake,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2 AND role <> 'owner'",
    )
    .bind(channel.as_i64())
    .bind(user.as_i64())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Makes a member a moderator or a moderator a member. True when the role changed.
pub async fn set_moderator(
    db: &PgPool,
    channel: Snowflake,
    user: Snowflake,
    moderator: bool,
) -> Result<bool, sqlx::Error> {
    let (from, to) = if moderator {
        ("member", "moderator")
    } else {
        ("moderator", "member")
    };
    let done = sqlx::query(
        "UPDATE channel_members SET role = $4 WHERE channel_id = $1 AND user_id = $2 AND role = $3",
    )
    .bind(channel.as_i64())
    .bind(user.as_i64())
    .bind(from)
    .bind(to)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub enum Left {
    /// Gone; the channel carries on.
    Left,
    /// The owner left; ownership passed to this member (a moderator if there was one).
    OwnerLeft { new_owner: Snowflake },
    /// The last member left; the channel is deleted.
    Deleted,
}

pub async fn leave(db: &PgPool, channel: Snowflake, user: Snowflake) -> Result<Left, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("SELECT 1 FROM channels WHERE id = $1 FOR UPDATE")
        .bind(channel.as_i64())
        .execute(&mut *tx)
        .await?;
    let role: Option<(String,)> = sqlx::query_as(
        "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2 RETURNING role",
    )
    .bind(channel.as_i64())
    .bind(user.as_i64())
    .fetch_optional(&mut *tx)
    .await?;
    let successor: Option<(i64,)> = sqlx::query_as(
        "SELECT user_id FROM channel_members WHERE channel_id = $1
         ORDER BY (role = 'moderator') DESC, joined_at, user_id LIMIT 1",
    )
    .bind(channel.as_i64())
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match (role.as_ref().map(|(r,)| r.as_str()), successor) {
        (_, None) => {
            sqlx::query("DELETE FROM channels WHERE id = $1")
                .bind(channel.as_i64())
                .execute(&mut *tx)
                .await?;
            Left::Deleted
        }
        (Some("owner"), Some((next,))) => {
            sqlx::query(
                "UPDATE channel_members SET role = 'owner' WHERE channel_id = $1 AND user_id = $2",
            )
            .bind(channel.as_i64())
            .bind(next)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE channels SET owner_id = $2, updated_at = now() WHERE id = $1")
                .bind(channel.as_i64())
                .bind(next)
                .execute(&mut *tx)
                .await?;
            Left::OwnerLeft {
                new_owner: Snowflake::from_i64(next),
            }
        }
        _ => Left::Left,
    };
    tx.commit().await?;
    Ok(outcome)
}

async fn existing_dm(
    db: &PgPool,
    low: Snowflake,
    high: Snowflake,
) -> Result<Option<Snowflake>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT channel_id FROM dm_pairs WHERE low_user_id = $1 AND high_user_id = $2",
    )
    .bind(low.as_i64())
    .bind(high.as_i64())
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(id,)| Snowflake::from_i64(id)))
}

/// The DM between `a` and `b`, made now if there was none. True when it was made by this call.
pub async fn open_dm(
    db: &PgPool,
    new_id: Snowflake,
    a: Snowflake,
    b: Snowflake,
) -> Result<(Snowflake, bool), sqlx::Error> {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    if let Some(id) = existing_dm(db, low, high).await? {
        return Ok((id, false));
    }
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO channels (id, kind) VALUES ($1, 'dm')")
        .bind(new_id.as_i64())
        .execute(&mut *tx)
        .await?;
    // Concurrent first opens of the same pair wait here on the key until the first commits, then
    // find the conflict and take the existing DM instead.
    let claimed: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO dm_pairs (low_user_id, high_user_id, channel_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING RETURNING channel_id",
    )
    .bind(low.as_i64())
    .bind(high.as_i64())
    .bind(new_id.as_i64())
    .fetch_optional(&mut *tx)
    .await?;
    if claimed.is_none() {
        tx.rollback().await?;
        let id = existing_dm(db, low, high)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        return Ok((id, false));
    }
    sqlx::query(
        "INSERT INTO channel_members (channel_id, user_id, role) VALUES ($1, $2, 'member'), ($1, $3, 'member')",
    )
    .bind(new_id.as_i64())
    .bind(low.as_i64())
    .bind(high.as_i64())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((new_id, true))
}
