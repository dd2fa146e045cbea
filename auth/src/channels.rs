//! Group channels, DMs and membership in PostgreSQL (tables in `migrations/0003_channels.sql` and
//! `0004_consent.sql`).
//!
//! Invariants the database holds, whatever requests race:
//! - a group channel never has more members than the limit: adding one locks the channel row
//!   (`SELECT ... FOR UPDATE`), counts, then inserts, in one transaction;
//! - two users share at most one DM: `dm_pairs` has the ordered pair as its primary key, and a DM
//!   is made with both users' rows locked;
//! - nobody is in more channels than the channel limit, nor made to be: growing someone's
//!   channels locks their user row and counts (`crate::quotas`);
//! - a group has exactly one owner (a partial unique index), who is a member.

use std::collections::HashMap;
use std::time::Duration;

use proto::Snowflake;
use proto::api::channels::{
    Channel, ChannelChanges, ChannelKind, Member, MemberRole, MembersQuery, NewChannel,
};
use proto::api::users::User;
use sqlx::{PgConnection, PgExecutor, PgPool};

use crate::consent::{self, Verdict};
use crate::profiles::UserRow;
use crate::quotas::{self, Action, Quotas};

struct ChannelRow {
    id: i64,
    kind: String,
    name: Option<String>,
    topic: Option<String>,
    owner_id: Option<i64>,
    member_count: i64,
    role: Option<String>,
    opened: Option<bool>,
    /// DMs: the other person of the pair.
    peer: Option<i64>,
}

struct MemberRow {
    role: String,
    id: i64,
    username: String,
    display_name: Option<String>,
    avatar_url: Option<String>,
    bio: Option<String>,
    status: String,
}

fn kind_of(s: &str) -> ChannelKind {
    s.parse().unwrap_or(ChannelKind::Group)
}

/// Rows into channels, with each DM's other person's profile (as others see it).
async fn channels_of(
    db: impl PgExecutor<'_>,
    rows: Vec<ChannelRow>,
) -> Result<Vec<Channel>, sqlx::Error> {
    let peers: Vec<i64> = rows.iter().filter_map(|r| r.peer).collect();
    let mut profiles: HashMap<i64, User> = HashMap::new();
    if !peers.is_empty() {
        let found = sqlx::query_as!(
            UserRow,
            "SELECT id, username, display_name, avatar_url, bio, status FROM users WHERE id = ANY($1)",
            &peers
        )
        .fetch_all(db)
        .await?;
        for row in found {
            profiles.insert(row.id, User::from(row).seen_by_others());
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let kind = kind_of(&row.kind);
            Channel {
                name: row.name,
                topic: row.topic,
                owner_id: row.owner_id.map(Snowflake::from_i64),
                member_count: u32::try_from(row.member_count).unwrap_or(u32::MAX),
                recipients: row
                    .peer
                    .and_then(|p| profiles.get(&p).cloned())
                    .into_iter()
                    .collect(),
                // A DM has no roles; a group channel has no "opened".
                role: match kind {
                    ChannelKind::Group => row.role.as_deref().and_then(|role| role.parse().ok()),
                    _ => None,
                },
                opened: match kind {
                    ChannelKind::Dm => row.opened,
                    _ => None,
                },
                ..Channel::new(Snowflake::from_i64(row.id), kind)
            }
        })
        .collect())
}

/// The channels `user` is in (just `only`, when given), each as they see it: their role, and for
/// a DM the other person and whether they opened it. In id order.
pub async fn mine(
    db: &mut PgConnection,
    user: Snowflake,
    only: Option<Snowflake>,
) -> Result<Vec<Channel>, sqlx::Error> {
    let mut of = mine_of(db, &[user.as_i64()], only).await?;
    Ok(of.remove(&user).unwrap_or_default())
}

/// As [`mine`], for each of `users` that is in a channel (two queries, however many users).
pub async fn mine_of(
    db: &mut PgConnection,
    users: &[i64],
    only: Option<Snowflake>,
) -> Result<HashMap<Snowflake, Vec<Channel>>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT me.user_id, c.id, c.kind, c.name, c.topic, c.owner_id,
                c.member_count::BIGINT AS "member_count!",
                me.role AS "role?", me.opened AS "opened?",
                CASE WHEN p.low_user_id = me.user_id THEN p.high_user_id ELSE p.low_user_id END
                  AS peer
         FROM channel_members me
         JOIN channels c ON c.id = me.channel_id
         LEFT JOIN dm_pairs p ON p.channel_id = c.id
         WHERE me.user_id = ANY($1) AND ($2::BIGINT IS NULL OR c.id = $2)
         ORDER BY me.user_id, c.id"#,
        users,
        only.map(|id| id.as_i64())
    )
    .fetch_all(&mut *db)
    .await?;
    let (owners, rows): (Vec<i64>, Vec<ChannelRow>) = rows
        .into_iter()
        .map(|r| {
            let row = ChannelRow {
                id: r.id,
                kind: r.kind,
                name: r.name,
                topic: r.topic,
                owner_id: r.owner_id,
                member_count: r.member_count,
                role: r.role,
                opened: r.opened,
                peer: r.peer,
            };
            (r.user_id, row)
        })
        .unzip();
    let mut of: HashMap<Snowflake, Vec<Channel>> = HashMap::new();
    for (user, channel) in owners.into_iter().zip(channels_of(&mut *db, rows).await?) {
        of.entry(Snowflake::from_i64(user))
            .or_default()
            .push(channel);
    }
    Ok(of)
}

/// One channel as `user` sees it, or `None` when they are not in it.
pub async fn seen_by(
    db: &PgPool,
    channel: Snowflake,
    user: Snowflake,
) -> Result<Option<Channel>, sqlx::Error> {
    let mut conn = db.acquire().await?;
    Ok(mine(&mut conn, user, Some(channel)).await?.pop())
}

/// A group channel as every member sees it (CHANNEL_UPDATE): no one's own place in it.
pub async fn shared_view(db: &PgPool, channel: Snowflake) -> Result<Option<Channel>, sqlx::Error> {
    let rows = sqlx::query_as!(
        ChannelRow,
        r#"SELECT c.id, c.kind, c.name, c.topic, c.owner_id,
                c.member_count::BIGINT AS "member_count!",
                NULL::TEXT AS role, NULL::BOOLEAN AS opened, NULL::BIGINT AS peer
         FROM channels c WHERE c.id = $1"#,
        channel.as_i64()
    )
    .fetch_all(db)
    .await?;
    Ok(channels_of(db, rows).await?.pop())
}

/// A page of a channel's members in user-id order, or the members among some ids. Statuses are as
/// others see them.
pub async fn members(
    db: impl PgExecutor<'_>,
    channel: Snowflake,
    query: &MembersQuery,
) -> Result<Vec<Member>, sqlx::Error> {
    let rows = match query {
        MembersQuery::Page { after, limit } => {
            sqlx::query_as!(
                MemberRow,
                "SELECT cm.role, u.id, u.username, u.display_name, u.avatar_url, u.bio, u.status
                 FROM channel_members cm JOIN users u ON u.id = cm.user_id WHERE cm.channel_id = $1
                 AND cm.user_id > $2 ORDER BY cm.user_id LIMIT $3",
                channel.as_i64(),
                after.map_or(i64::MIN, |a| a.as_i64()),
                i64::from(*limit)
            )
            .fetch_all(db)
            .await?
        }
        MembersQuery::Ids(ids) => {
            let ids: Vec<i64> = ids.iter().map(|id| id.as_i64()).collect();
            sqlx::query_as!(
                MemberRow,
                "SELECT cm.role, u.id, u.username, u.display_name, u.avatar_url, u.bio, u.status
                 FROM channel_members cm JOIN users u ON u.id = cm.user_id WHERE cm.channel_id = $1
                 AND cm.user_id = ANY($2) ORDER BY cm.user_id",
                channel.as_i64(),
                &ids
            )
            .fetch_all(db)
            .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|row| Member {
            role: row.role.parse().unwrap_or(MemberRole::Member),
            user: User::from(UserRow {
                id: row.id,
                username: row.username,
                display_name: row.display_name,
                avatar_url: row.avatar_url,
                bio: row.bio,
                status: row.status,
            })
            .seen_by_others(),
        })
        .collect())
}

/// Everyone in a channel, by id (whom a CHANNEL_DELETE goes to).
pub async fn member_ids(
    db: impl PgExecutor<'_>,
    channel: Snowflake,
) -> Result<Vec<Snowflake>, sqlx::Error> {
    let rows = sqlx::query_scalar!(
        "SELECT user_id FROM channel_members WHERE channel_id = $1",
        channel.as_i64()
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Snowflake::from_i64).collect())
}

/// The ids of the channels `user` belongs to.
pub async fn ids_of(
    db: impl PgExecutor<'_>,
    user: Snowflake,
) -> Result<Vec<Snowflake>, sqlx::Error> {
    let rows = sqlx::query_scalar!(
        "SELECT channel_id FROM channel_members WHERE user_id = $1 ORDER BY channel_id",
        user.as_i64()
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Snowflake::from_i64).collect())
}

/// `user`'s place in `channel`, or `None` when they are not a member (or it does not exist:
/// callers cannot tell the two apart, by design).
pub async fn membership(
    db: impl PgExecutor<'_>,
    channel: Snowflake,
    user: Snowflake,
) -> Result<Option<(ChannelKind, MemberRole)>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT c.kind, cm.role FROM channel_members cm JOIN channels c ON c.id = cm.channel_id
         WHERE cm.channel_id = $1 AND cm.user_id = $2",
        channel.as_i64(),
        user.as_i64()
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| {
        let role = row.role.parse().unwrap_or(MemberRole::Member);
        (kind_of(&row.kind), role)
    }))
}

/// Why a change that grows someone's channels was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The caller blocks the other person.
    CallerBlocks,
    /// The other person's settings or block do not allow it.
    NotAllowed,
    /// The caller is in as many channels as they may be.
    CallerChannelLimit(u32),
    /// The other person is.
    TheirChannelLimit(u32),
    /// The other person has as many DM requests waiting as they may have.
    TheirRequestLimit(u32),
    /// The caller did this too often in the window; they may again after this long.
    Rate(Duration, Action),
    AlreadyMember,
    /// The channel has this many members, the most it may have.
    Full(u32),
}

pub type Outcome<T> = Result<T, Refused>;

/// Creates a group channel owned by `owner`, if their channel limit and hourly creations allow.
pub async fn create_group(
    db: &PgPool,
    id: Snowflake,
    owner: Snowflake,
    new: &NewChannel,
    limits: &Quotas,
) -> Result<Outcome<()>, sqlx::Error> {
    let mut tx = db.begin().await?;
    quotas::lock_users(&mut tx, &[owner]).await?;
    if let Err(wait) = quotas::check(
        &mut tx,
        owner,
        Action::ChannelCreate,
        limits.channel_creates,
    )
    .await?
    {
        return Ok(Err(Refused::Rate(wait, Action::ChannelCreate)));
    }
    if quotas::channel_counts(&mut tx, owner).await?.chosen >= limits.channel_limit {
        return Ok(Err(Refused::CallerChannelLimit(limits.channel_limit)));
    }
    sqlx::query!(
        "INSERT INTO channels (id, kind, name, topic, owner_id) VALUES ($1, 'group', $2, $3, $4)",
        id.as_i64(),
        new.name.as_str(),
        new.topic.as_ref().map(|t| t.as_str()),
        owner.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO channel_members (channel_id, user_id, role) VALUES ($1, $2, 'owner')",
        id.as_i64(),
        owner.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    quotas::record(&mut tx, owner, Action::ChannelCreate).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

pub async fn update(
    db: &PgPool,
    id: Snowflake,
    changes: &ChannelChanges,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE channels SET
             name = COALESCE($2, name),
             topic = CASE WHEN $3 THEN $4 ELSE topic END,
             updated_at = now()
         WHERE id = $1",
        id.as_i64(),
        changes.name.as_ref().map(|n| n.as_str()),
        changes.topic.is_some(),
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
    sqlx::query!("DELETE FROM channels WHERE id = $1", id.as_i64())
        .execute(db)
        .await?;
    Ok(())
}

/// `actor` adds `user` as a member, if `user` allows channel adds from them, neither blocks the
/// other, the channel has fewer than `member_limit` members, `user` is under their channel limit
/// and `actor` under their hourly adds. Concurrent adds to one channel queue on its row lock, and
/// adds of one person on theirs, so the counts they check are exact.
pub async fn add_member(
    db: &PgPool,
    channel: Snowflake,
    actor: Snowflake,
    user: Snowflake,
    member_limit: u32,
    limits: &Quotas,
) -> Result<Outcome<()>, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query!(
        "SELECT 1 AS locked FROM channels WHERE id = $1 FOR UPDATE",
        channel.as_i64()
    )
    .fetch_all(&mut *tx)
    .await?;
    quotas::lock_users(&mut tx, &[actor, user]).await?;
    let row = sqlx::query!(
        r#"SELECT count(*) AS "count!", coalesce(bool_or(user_id = $2), false) AS "already!"
         FROM channel_members WHERE channel_id = $1"#,
        channel.as_i64(),
        user.as_i64()
    )
    .fetch_one(&mut *tx)
    .await?;
    let (count, already) = (row.count, row.already);
    if already {
        return Ok(Err(Refused::AlreadyMember));
    }
    // Consent before anything that would tell the caller about the other person's channels.
    match consent::allows(&mut tx, user, actor, |s| s.allow_channel_adds_from).await? {
        Verdict::Allowed => {}
        Verdict::CallerBlocks => return Ok(Err(Refused::CallerBlocks)),
        Verdict::Refused => return Ok(Err(Refused::NotAllowed)),
    }
    if count >= i64::from(member_limit) {
        return Ok(Err(Refused::Full(member_limit)));
    }
    if quotas::channel_counts(&mut tx, user).await?.chosen >= limits.channel_limit {
        return Ok(Err(Refused::TheirChannelLimit(limits.channel_limit)));
    }
    if let Err(wait) = quotas::check(&mut tx, actor, Action::MemberAdd, limits.member_adds).await? {
        return Ok(Err(Refused::Rate(wait, Action::MemberAdd)));
    }
    sqlx::query!(
        "INSERT INTO channel_members (channel_id, user_id, role) VALUES ($1, $2, 'member')",
        channel.as_i64(),
        user.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    quotas::record(&mut tx, actor, Action::MemberAdd).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// Removes a member (never the owner: callers check). True when they were a member.
pub async fn remove_member(
    db: &PgPool,
    channel: Snowflake,
    user: Snowflake,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2 AND role <> 'owner'",
        channel.as_i64(),
        user.as_i64()
    )
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
    let done = sqlx::query!(
        "UPDATE channel_members SET role = $4 WHERE channel_id = $1 AND user_id = $2 AND role = $3",
        channel.as_i64(),
        user.as_i64(),
        from,
        to
    )
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
    sqlx::query!(
        "SELECT 1 AS locked FROM channels WHERE id = $1 FOR UPDATE",
        channel.as_i64()
    )
    .fetch_all(&mut *tx)
    .await?;
    let role = sqlx::query_scalar!(
        "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2 RETURNING role",
        channel.as_i64(),
        user.as_i64()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let successor = sqlx::query_scalar!(
        "SELECT user_id FROM channel_members WHERE channel_id = $1
         ORDER BY (role = 'moderator') DESC, joined_at, user_id LIMIT 1",
        channel.as_i64()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match (role.as_deref(), successor) {
        (_, None) => {
            sqlx::query!("DELETE FROM channels WHERE id = $1", channel.as_i64())
                .execute(&mut *tx)
                .await?;
            Left::Deleted
        }
        (Some("owner"), Some(next)) => {
            sqlx::query!(
                "UPDATE channel_members SET role = 'owner' WHERE channel_id = $1 AND user_id = $2",
                channel.as_i64(),
                next
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!(
                "UPDATE channels SET owner_id = $2, updated_at = now() WHERE id = $1",
                channel.as_i64(),
                next
            )
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

/// The DM between `a` and `b`, if one was ever made.
pub async fn dm_of(
    db: impl PgExecutor<'_>,
    a: Snowflake,
    b: Snowflake,
) -> Result<Option<Snowflake>, sqlx::Error> {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    let id = sqlx::query_scalar!(
        "SELECT channel_id FROM dm_pairs WHERE low_user_id = $1 AND high_user_id = $2",
        low.as_i64(),
        high.as_i64()
    )
    .fetch_optional(db)
    .await?;
    Ok(id.map(Snowflake::from_i64))
}

/// What opening a DM did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmOpened {
    pub channel: Snowflake,
    /// The DM was made by this call.
    pub created: bool,
    /// The caller had not opened it before (a request to them, or one they had declined).
    pub caller_opened_now: bool,
    /// The other person was not in it: it is now a request to them.
    pub requested: bool,
}

async fn dm_side(
    tx: &mut PgConnection,
    channel: Snowflake,
    user: Snowflake,
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT opened FROM channel_members WHERE channel_id = $1 AND user_id = $2",
        channel.as_i64(),
        user.as_i64()
    )
    .fetch_optional(&mut *tx)
    .await
}

/// `caller` opens their side of the DM with `other`, making the DM (`new_id`) if there is none.
/// Where `other` is not in it yet, it becomes a request to them, which their settings
/// (`allow_dms_from`), blocks and their request budget must allow; opening one's own side counts
/// against one's channel limit. Both people's rows are locked, so concurrent opens of the same
/// pair make one DM and count exactly.
pub async fn open_dm(
    db: &PgPool,
    new_id: Snowflake,
    caller: Snowflake,
    other: Snowflake,
    limits: &Quotas,
) -> Result<Outcome<DmOpened>, sqlx::Error> {
    let (low, high) = if caller < other {
        (caller, other)
    } else {
        (other, caller)
    };
    let mut tx = db.begin().await?;
    quotas::lock_users(&mut tx, &[caller, other]).await?;
    match consent::block_between(&mut *tx, caller, other).await? {
        consent::Block::ByMe => return Ok(Err(Refused::CallerBlocks)),
        consent::Block::ByThem => return Ok(Err(Refused::NotAllowed)),
        consent::Block::None => {}
    }
    let existing = dm_of(&mut *tx, caller, other).await?;
    let (mine, theirs) = match existing {
        Some(id) => (
            dm_side(&mut tx, id, caller).await?,
            dm_side(&mut tx, id, other).await?,
        ),
        None => (None, None),
    };
    let requested = theirs.is_none();
    if requested {
        if consent::allows(&mut tx, other, caller, |s| s.allow_dms_from).await? != Verdict::Allowed
        {
            return Ok(Err(Refused::NotAllowed));
        }
        if quotas::channel_counts(&mut tx, other).await?.requests >= limits.channel_limit {
            return Ok(Err(Refused::TheirRequestLimit(limits.channel_limit)));
        }
    }
    let caller_opened_now = mine != Some(true);
    if caller_opened_now
        && quotas::channel_counts(&mut tx, caller).await?.chosen >= limits.channel_limit
    {
        return Ok(Err(Refused::CallerChannelLimit(limits.channel_limit)));
    }
    let channel = match existing {
        Some(id) => id,
        None => {
            sqlx::query!(
                "INSERT INTO channels (id, kind) VALUES ($1, 'dm')",
                new_id.as_i64()
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!(
                "INSERT INTO dm_pairs (low_user_id, high_user_id, channel_id) VALUES ($1, $2, $3)",
                low.as_i64(),
                high.as_i64(),
                new_id.as_i64()
            )
            .execute(&mut *tx)
            .await?;
            new_id
        }
    };
    sqlx::query!("INSERT INTO channel_members (channel_id, user_id, role, opened) VALUES ($1, $2, 'member', true)
         ON CONFLICT (channel_id, user_id) DO UPDATE SET opened = true", channel.as_i64(), caller.as_i64())
    .execute(&mut *tx)
    .await?;
    if requested {
        sqlx::query!("INSERT INTO channel_members (channel_id, user_id, role, opened) VALUES ($1, $2, 'member', false)", channel.as_i64(), other.as_i64())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Ok(DmOpened {
        channel,
        created: existing.is_none(),
        caller_opened_now,
        requested,
    }))
}
