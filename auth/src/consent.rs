//! Consent in PostgreSQL: a user's privacy settings, their blocks, and the questions every other
//! module asks of them: may this person DM or add that one, and whose presence may a user see.
//!
//! The one rule behind presence: a user's presence reaches another only through a channel the
//! user chose to share with them: a group channel they are in (created, or joined as their
//! settings allowed), or a DM they opened themselves. Never across a block, in either direction.

use std::collections::HashMap;

use proto::Snowflake;
use proto::access::WatchList;
use proto::api::consent::{Audience, UpdateSettingsRequest, UserSettings};
use proto::api::users::User;
use sqlx::{PgConnection, PgExecutor};

use crate::profiles::UserRow;

pub async fn settings(
    db: impl PgExecutor<'_>,
    user: Snowflake,
) -> Result<Option<UserSettings>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT allow_dms_from, allow_channel_adds_from FROM users WHERE id = $1",
        user.as_i64()
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| settings_of(&row.allow_dms_from, &row.allow_channel_adds_from)))
}

fn settings_of(dms: &str, adds: &str) -> UserSettings {
    let defaults = UserSettings::default();
    UserSettings {
        allow_dms_from: dms.parse().unwrap_or(defaults.allow_dms_from),
        allow_channel_adds_from: adds
            .parse::<Audience>()
            .ok()
            .unwrap_or(defaults.allow_channel_adds_from),
    }
}

/// Applies `change` and returns the settings after it.
pub async fn update_settings(
    db: impl PgExecutor<'_>,
    user: Snowflake,
    change: &UpdateSettingsRequest,
) -> Result<Option<UserSettings>, sqlx::Error> {
    let row = sqlx::query!(
        "UPDATE users SET allow_dms_from = COALESCE($2, allow_dms_from),
                          allow_channel_adds_from = COALESCE($3, allow_channel_adds_from),
                          updated_at = now()
         WHERE id = $1 RETURNING allow_dms_from, allow_channel_adds_from",
        user.as_i64(),
        change.allow_dms_from.map(Audience::as_str),
        change.allow_channel_adds_from.map(Audience::as_str)
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| settings_of(&row.allow_dms_from, &row.allow_channel_adds_from)))
}

/// Whether a block stands between two people, and whose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    None,
    /// `me` blocks them (whether or not they block `me` too).
    ByMe,
    /// They block `me`.
    ByThem,
}

pub async fn block_between(
    db: impl PgExecutor<'_>,
    me: Snowflake,
    them: Snowflake,
) -> Result<Block, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT EXISTS (SELECT 1 FROM relationships WHERE user_id = $1 AND target_id = $2)
                    AS "by_me!",
                EXISTS (SELECT 1 FROM relationships WHERE user_id = $2 AND target_id = $1)
                    AS "by_them!""#,
        me.as_i64(),
        them.as_i64()
    )
    .fetch_one(db)
    .await?;
    let (by_me, by_them) = (row.by_me, row.by_them);
    Ok(match (by_me, by_them) {
        (true, _) => Block::ByMe,
        (false, true) => Block::ByThem,
        (false, false) => Block::None,
    })
}

/// Whether `user` has chosen to share a channel with `with`: both are in a group channel or a
/// server, or `user` opened a DM with `with` themselves.
pub async fn shares(
    db: impl PgExecutor<'_>,
    user: Snowflake,
    with: Snowflake,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (
             SELECT 1 FROM channel_members theirs
             JOIN channel_members mine ON mine.channel_id = theirs.channel_id
             JOIN channels c ON c.id = theirs.channel_id
             WHERE theirs.user_id = $1 AND mine.user_id = $2
               AND (c.kind = 'group' OR theirs.opened))
           OR EXISTS (
             SELECT 1 FROM guild_members theirs
             JOIN guild_members mine ON mine.guild_id = theirs.guild_id
             WHERE theirs.user_id = $1 AND mine.user_id = $2) AS "shares!""#,
        user.as_i64(),
        with.as_i64()
    )
    .fetch_one(db)
    .await
}

/// What `target` allows of `caller`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// `caller` blocks `target`.
    CallerBlocks,
    /// `target`'s settings or their block refuse it (never told apart to the caller).
    Refused,
}

/// Whether `target`'s settings (`audience`, read from them) and blocks let `caller` DM them or
/// add them to a channel.
pub async fn allows(
    db: &mut PgConnection,
    target: Snowflake,
    caller: Snowflake,
    audience: impl Fn(&UserSettings) -> Audience,
) -> Result<Verdict, sqlx::Error> {
    match block_between(&mut *db, caller, target).await? {
        Block::ByMe => return Ok(Verdict::CallerBlocks),
        Block::ByThem => return Ok(Verdict::Refused),
        Block::None => {}
    }
    let settings = settings(&mut *db, target).await?.unwrap_or_default();
    let allowed = match audience(&settings) {
        Audience::Everyone => true,
        Audience::Shared => shares(&mut *db, target, caller).await?,
        Audience::Nobody => false,
    };
    Ok(if allowed {
        Verdict::Allowed
    } else {
        Verdict::Refused
    })
}

/// Among `users`, those whose presence `viewer` may see (`viewer` included when asked about).
pub async fn visible(
    db: impl PgExecutor<'_>,
    viewer: Snowflake,
    users: &[Snowflake],
) -> Result<Vec<Snowflake>, sqlx::Error> {
    let ids: Vec<i64> = users.iter().map(|u| u.as_i64()).collect();
    let rows = sqlx::query_scalar!(
        r#"SELECT DISTINCT seen.user_id AS "user_id!" FROM (
             SELECT theirs.user_id
             FROM channel_members theirs
             JOIN channel_members mine ON mine.channel_id = theirs.channel_id AND mine.user_id = $1
             JOIN channels c ON c.id = theirs.channel_id
             WHERE theirs.user_id = ANY($2) AND (c.kind = 'group' OR theirs.opened)
             UNION ALL
             SELECT theirs.user_id
             FROM guild_members theirs
             JOIN guild_members mine ON mine.guild_id = theirs.guild_id AND mine.user_id = $1
             WHERE theirs.user_id = ANY($2)
         ) seen
         WHERE seen.user_id <> $1
           AND NOT EXISTS (SELECT 1 FROM relationships r
                WHERE (r.user_id = $1 AND r.target_id = seen.user_id)
                   OR (r.user_id = seen.user_id AND r.target_id = $1))"#,
        viewer.as_i64(),
        &ids
    )
    .fetch_all(db)
    .await?;
    let mut seen: Vec<Snowflake> = rows.into_iter().map(Snowflake::from_i64).collect();
    if users.contains(&viewer) {
        seen.push(viewer);
    }
    Ok(seen)
}

/// What blocking did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    /// False when the block already stood.
    pub new: bool,
    /// Their DM with the blocker, if any.
    pub dm: Option<Snowflake>,
    /// The blocker had never opened that DM (a request from the person now blocked): they are
    /// no longer in it, so it no longer counts against their requests or shows in their list.
    pub declined: bool,
}

/// `user` blocks `target`.
pub async fn block(
    db: &sqlx::PgPool,
    user: Snowflake,
    target: Snowflake,
) -> Result<Blocked, sqlx::Error> {
    let mut tx = db.begin().await?;
    let inserted = sqlx::query!(
        "INSERT INTO relationships (user_id, target_id, type) VALUES ($1, $2, 2)
         ON CONFLICT DO NOTHING",
        user.as_i64(),
        target.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    let dm = crate::channels::dm_of(&mut *tx, user, target).await?;
    let mut declined = false;
    if let Some(dm) = dm {
        let removed = sqlx::query!(
            "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2 AND NOT opened",
            dm.as_i64(),
            user.as_i64()
        )
        .execute(&mut *tx)
        .await?;
        declined = removed.rows_affected() == 1;
    }
    tx.commit().await?;
    Ok(Blocked {
        new: inserted.rows_affected() == 1,
        dm,
        declined,
    })
}

/// `user` stops blocking `target`; true when they did block them. Their DM, if any.
pub async fn unblock(
    db: &sqlx::PgPool,
    user: Snowflake,
    target: Snowflake,
) -> Result<(bool, Option<Snowflake>), sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM relationships WHERE user_id = $1 AND target_id = $2",
        user.as_i64(),
        target.as_i64()
    )
    .execute(db)
    .await?;
    let dm = crate::channels::dm_of(db, user, target).await?;
    Ok((done.rows_affected() == 1, dm))
}

/// The people `user` blocks, oldest block first.
pub async fn blocked_by(
    db: impl PgExecutor<'_>,
    user: Snowflake,
) -> Result<Vec<User>, sqlx::Error> {
    let rows = sqlx::query_as!(
        UserRow,
        "SELECT u.id, u.username, u.display_name, u.avatar_url, u.bio, u.status
         FROM relationships r JOIN users u ON u.id = r.target_id
         WHERE r.user_id = $1 ORDER BY r.created_at, u.id",
        user.as_i64()
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| User::from(row).seen_by_others())
        .collect())
}

/// Per channel of `user` (just `only`, when given) that is a group of at most `max_members`
/// members, or a DM whose other side opened it: the other members whose presence `user` may see.
/// Channels with nobody to watch are left out.
///
/// Which channels are small is decided first, once per channel, from the channel's kept member
/// count: counting inside the join cost a member of a 1,000-member channel a million index
/// entries per session start (142 ms of PostgreSQL).
pub async fn watch_lists(
    db: impl PgExecutor<'_>,
    user: Snowflake,
    only: Option<Snowflake>,
    max_members: u32,
) -> Result<Vec<WatchList>, sqlx::Error> {
    let mut of = watch_lists_of(db, &[user.as_i64()], only, max_members).await?;
    Ok(of.remove(&user).unwrap_or_default())
}

/// As [`watch_lists`], for each of `users` that has one (one query).
pub async fn watch_lists_of(
    db: impl PgExecutor<'_>,
    users: &[i64],
    only: Option<Snowflake>,
    max_members: u32,
) -> Result<HashMap<Snowflake, Vec<WatchList>>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"WITH small AS MATERIALIZED (
             SELECT mine.user_id AS viewer, c.id, c.kind = 'dm' AS dm
             FROM channel_members mine JOIN channels c ON c.id = mine.channel_id
             WHERE mine.user_id = ANY($1) AND ($2::BIGINT IS NULL OR mine.channel_id = $2)
               AND (c.kind = 'dm' OR c.member_count <= $3::BIGINT))
         SELECT small.viewer AS "viewer!", theirs.channel_id, theirs.user_id
         FROM small JOIN channel_members theirs
           ON theirs.channel_id = small.id AND theirs.user_id <> small.viewer
         WHERE (NOT small.dm OR theirs.opened)
           AND NOT EXISTS (SELECT 1 FROM relationships r
                WHERE (r.user_id = small.viewer AND r.target_id = theirs.user_id)
                   OR (r.user_id = theirs.user_id AND r.target_id = small.viewer))
         ORDER BY small.viewer, theirs.channel_id, theirs.user_id"#,
        users,
        only.map(|id| id.as_i64()),
        i64::from(max_members)
    )
    .fetch_all(db)
    .await?;
    let mut of: HashMap<Snowflake, Vec<WatchList>> = HashMap::new();
    for row in rows {
        let (channel, member) = (
            Snowflake::from_i64(row.channel_id),
            Snowflake::from_i64(row.user_id),
        );
        let lists = of.entry(Snowflake::from_i64(row.viewer)).or_default();
        match lists.last_mut() {
            Some(list) if list.channel_id == channel => list.user_ids.push(member),
            _ => lists.push(WatchList {
                channel_id: channel,
                user_ids: vec![member],
            }),
        }
    }
    Ok(of)
}

/// `user`'s DMs (just `only`, when given) across which a block stands, either way.
pub async fn closed_dms(
    db: impl PgExecutor<'_>,
    user: Snowflake,
    only: Option<Snowflake>,
) -> Result<Vec<Snowflake>, sqlx::Error> {
    let mut of = closed_dms_of(db, &[user.as_i64()], only).await?;
    Ok(of.remove(&user).unwrap_or_default())
}

/// As [`closed_dms`], for each of `users` that has one (one query).
pub async fn closed_dms_of(
    db: impl PgExecutor<'_>,
    users: &[i64],
    only: Option<Snowflake>,
) -> Result<HashMap<Snowflake, Vec<Snowflake>>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT ends.user_id AS "user_id!", p.channel_id
         FROM dm_pairs p
         CROSS JOIN LATERAL (VALUES (p.low_user_id), (p.high_user_id)) AS ends(user_id)
         WHERE (p.low_user_id = ANY($1) OR p.high_user_id = ANY($1))
           AND ends.user_id = ANY($1)
           AND ($2::BIGINT IS NULL OR p.channel_id = $2)
           AND EXISTS (SELECT 1 FROM relationships r
                WHERE (r.user_id = p.low_user_id AND r.target_id = p.high_user_id)
                   OR (r.user_id = p.high_user_id AND r.target_id = p.low_user_id))
         ORDER BY 1, p.channel_id"#,
        users,
        only.map(|id| id.as_i64())
    )
    .fetch_all(db)
    .await?;
    let mut of: HashMap<Snowflake, Vec<Snowflake>> = HashMap::new();
    for row in rows {
        of.entry(Snowflake::from_i64(row.user_id))
            .or_default()
            .push(Snowflake::from_i64(row.channel_id));
    }
    Ok(of)
}
