//! Notification settings and push subscriptions in PostgreSQL
//! (`migrations/0007_notifications.sql`), and the one decision of whom a new message concerns
//! ([`recipients`], asked by the notification worker over `{p}.auth.notify`), taken here because it
//! rests on what auth holds: membership, roles, overwrites, blocks and the settings themselves.
//!
//! Discord's rules: a channel override that is not "inherit" wins over the server's setting; no
//! row means the default (all messages, only mentions in servers of more than
//! [`LARGE_GUILD_MEMBERS`]); a group channel of more members than that is told as a server's
//! channel is (only mentions unless its own override says otherwise, plain messages never in the
//! inbox), so that a big group's every message is not an inbox entry for each of its members;
//! a muted server or channel (until its `end_time`) tells of mentions only, a muted DM or small
//! group channel of nothing; "nothing" tells nothing; `suppress_everyone` and
//! `suppress_roles` make those mentions not count; the author is never told, nor someone who
//! blocks them, nor anyone who cannot view the channel.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use proto::Snowflake;
use proto::access::{
    MAX_NOTIFY_QUERIES, NotifyAnswer, NotifyQuery, Readable, ReadableChannel, Recipient,
};
use proto::api::channels::{Channel, MembersQuery};
use proto::api::guilds::Role;
use proto::api::notifications::{
    ChannelOverride, LARGE_GUILD_MEMBERS, MAX_PUSH_SUBSCRIPTIONS, MessageNotifications, MuteConfig,
    NotifyReason, PushKeys, PushSubscription, UpdateUserGuildSettingsRequest, UserGuildSettings,
};
use proto::permissions::{Permissions, effective};
use sqlx::{PgConnection, PgExecutor, PgPool};

use crate::{guild_channels, guild_members, guilds, roles};

/// The key of DMs' and group channels' settings (`guild_id` 0 in the table, `null` on the wire).
const DMS: i64 = 0;

fn level(n: i16) -> MessageNotifications {
    match n {
        0 => MessageNotifications::AllMessages,
        1 => MessageNotifications::OnlyMentions,
        2 => MessageNotifications::NoMessages,
        _ => MessageNotifications::Inherit,
    }
}

/// Whether a mute is on at `now_ms`: muted, and its end (if any) not passed.
fn muted_now(muted: bool, end_ms: Option<i64>, now_ms: i64) -> bool {
    muted && end_ms.is_none_or(|end| end > now_ms)
}

fn mute_config(muted: bool, end_ms: Option<i64>) -> Option<MuteConfig> {
    let end = end_ms.filter(|_| muted)?;
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(end) * 1_000_000).ok()?;
    Some(MuteConfig {
        end_time: time
            .format(&time::format_description::well_known::Rfc3339)
            .ok(),
    })
}

/// `end_time` as Unix ms, or why not.
fn parse_end(config: Option<&MuteConfig>) -> Result<Option<i64>, String> {
    let Some(text) = config.and_then(|c| c.end_time.as_deref()) else {
        return Ok(None);
    };
    let time = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("'{text}' is not an ISO 8601 time (2026-12-01T10:00:00Z)"))?;
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000)
        .map(Some)
        .map_err(|_| "the time is out of range".to_owned())
}

type SettingsRow = (i64, i16, bool, Option<i64>, bool, bool);
type OverrideRow = (i64, i64, i16, bool, Option<i64>);
/// A user's settings of a server (0: DMs): the user, the server, then as in [`SettingsRow`].
type UserSettingsRow = (i64, i64, i16, bool, Option<i64>, bool, bool);
/// A user's override of a channel: the user, the server, then as in [`OverrideRow`].
type UserOverrideRow = (i64, i64, i64, i16, bool, Option<i64>);

/// Every settings row of `user` (the servers and DMs they changed anything in).
pub async fn of_user(
    db: &mut PgConnection,
    user: Snowflake,
) -> Result<Vec<UserGuildSettings>, sqlx::Error> {
    let mut of = of_users(db, &[user.as_i64()]).await?;
    Ok(of.remove(&user).unwrap_or_default())
}

/// As [`of_user`], for each of `users` that has any settings: two queries, however many users
/// (the sessions starting together at an edge).
///
/// On a connection the caller holds: the READY path reads this beside its other queries on one
/// connection, and taking a second from the pool while holding one deadlocks the pool when as
/// many sessions start at once as it has connections.
pub async fn of_users(
    db: &mut PgConnection,
    users: &[i64],
) -> Result<HashMap<Snowflake, Vec<UserGuildSettings>>, sqlx::Error> {
    let now = proto::clock::unix_ms() as i64;
    let rows: Vec<UserSettingsRow> = sqlx::query_as(
        "SELECT user_id, guild_id, message_notifications, muted, mute_end_ms, suppress_everyone,
                suppress_roles
         FROM user_guild_settings WHERE user_id = ANY($1) ORDER BY user_id, guild_id",
    )
    .bind(users)
    .fetch_all(&mut *db)
    .await?;
    let overrides: Vec<UserOverrideRow> = sqlx::query_as(
        "SELECT user_id, guild_id, channel_id, message_notifications, muted, mute_end_ms
         FROM channel_notification_overrides WHERE user_id = ANY($1)
         ORDER BY user_id, channel_id",
    )
    .bind(users)
    .fetch_all(&mut *db)
    .await?;
    let mut channels: HashMap<(i64, i64), Vec<ChannelOverride>> = HashMap::new();
    for (user, guild, channel, n, muted, end) in overrides {
        let muted = muted_now(muted, end, now);
        channels
            .entry((user, guild))
            .or_default()
            .push(ChannelOverride {
                channel_id: Snowflake::from_i64(channel),
                message_notifications: level(n),
                muted,
                mute_config: mute_config(muted, end),
            });
    }
    let mut of: HashMap<Snowflake, Vec<UserGuildSettings>> = HashMap::new();
    for (user, guild, n, muted, end, everyone, roles) in rows {
        let muted = muted_now(muted, end, now);
        of.entry(Snowflake::from_i64(user))
            .or_default()
            .push(UserGuildSettings {
                guild_id: (guild != DMS).then(|| Snowflake::from_i64(guild)),
                message_notifications: level(n),
                muted,
                mute_config: mute_config(muted, end),
                suppress_everyone: everyone,
                suppress_roles: roles,
                channel_overrides: channels.remove(&(user, guild)).unwrap_or_default(),
            });
    }
    Ok(of)
}

/// Why a settings change was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("unknown server")]
    UnknownGuild,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn invalid(field: &str, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Applies `request` to `user`'s settings of `guild` (`None`: DMs and group channels), in one
/// transaction, and returns them as they now are.
pub async fn update(
    db: &PgPool,
    user: Snowflake,
    guild: Option<Snowflake>,
    request: &UpdateUserGuildSettingsRequest,
) -> Result<UserGuildSettings, SettingsError> {
    let mut tx = db.begin().await?;
    let count = match guild {
        Some(guild) => {
            // Only a member changes a server's settings; anyone else learns nothing of it.
            if guild_members::one(&mut *tx, guild, user).await?.is_none() {
                return Err(SettingsError::UnknownGuild);
            }
            guilds::member_count(&mut *tx, guild).await?
        }
        None => 0,
    };
    let key = guild.map_or(DMS, |g| g.as_i64());
    let defaults = UserGuildSettings::default_for(guild, count);
    let end = match &request.mute_config {
        Some(config) => parse_end(config.as_ref()).map_err(|e| invalid("mute_config", e))?,
        None => None,
    };
    sqlx::query(
        "INSERT INTO user_guild_settings (user_id, guild_id, message_notifications)
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(user.as_i64())
    .bind(key)
    .bind(defaults.message_notifications as i16)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE user_guild_settings SET
            message_notifications = COALESCE($3, message_notifications),
            muted = COALESCE($4, muted),
            mute_end_ms = CASE WHEN $5 THEN $6 ELSE mute_end_ms END,
            suppress_everyone = COALESCE($7, suppress_everyone),
            suppress_roles = COALESCE($8, suppress_roles)
         WHERE user_id = $1 AND guild_id = $2",
    )
    .bind(user.as_i64())
    .bind(key)
    .bind(request.message_notifications.map(|n| n as i16))
    .bind(request.muted)
    .bind(request.mute_config.is_some() || request.muted == Some(false))
    .bind(end.filter(|_| request.muted != Some(false)))
    .bind(request.suppress_everyone)
    .bind(request.suppress_roles)
    .execute(&mut *tx)
    .await?;
    for o in request.channel_overrides.iter().flatten() {
        set_override(&mut tx, user, guild, key, o).await?;
    }
    tx.commit().await?;
    let mine = of_user(&mut *db.acquire().await?, user).await?;
    Ok(mine
        .into_iter()
        .find(|s| s.guild_id == guild)
        .unwrap_or(defaults))
}

async fn set_override(
    tx: &mut PgConnection,
    user: Snowflake,
    guild: Option<Snowflake>,
    key: i64,
    o: &ChannelOverride,
) -> Result<(), SettingsError> {
    // The channel must be one of this server's that the user may view, or (for `@me`) one of
    // their DMs or group channels: an unknown one is refused without saying which kind.
    let known = match guild {
        Some(guild) => {
            let found = guild_channels::guild_of(&mut *tx, o.channel_id).await? == Some(guild);
            found && may_view(tx, guild, o.channel_id, user).await?
        }
        None => crate::channels::membership(&mut *tx, o.channel_id, user)
            .await?
            .is_some(),
    };
    if !known {
        return Err(invalid(
            "channel_overrides",
            format!("unknown channel {}", o.channel_id),
        ));
    }
    let end = parse_end(o.mute_config.as_ref()).map_err(|e| invalid("channel_overrides", e))?;
    sqlx::query(
        "INSERT INTO channel_notification_overrides
            (user_id, guild_id, channel_id, message_notifications, muted, mute_end_ms)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id, channel_id) DO UPDATE SET
            message_notifications = EXCLUDED.message_notifications,
            muted = EXCLUDED.muted, mute_end_ms = EXCLUDED.mute_end_ms",
    )
    .bind(user.as_i64())
    .bind(key)
    .bind(o.channel_id.as_i64())
    .bind(o.message_notifications as i16)
    .bind(o.muted)
    .bind(end.filter(|_| o.muted))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Whether `user` may view a server's channel now.
async fn may_view(
    conn: &mut PgConnection,
    guild: Snowflake,
    channel: Snowflake,
    user: Snowflake,
) -> Result<bool, sqlx::Error> {
    let Some(standing) = guilds::standing(conn, guild, user, false).await? else {
        return Ok(false);
    };
    let count = guilds::member_count(&mut *conn, guild).await?;
    let Some(channel) = guild_channels::one(conn, channel, count).await? else {
        return Ok(false);
    };
    Ok(standing.in_channel(&channel).has(Permissions::VIEW_CHANNEL))
}

/// Which of `channels` `user` can read now, with each one's server.
pub async fn readable(
    db: &PgPool,
    user: Snowflake,
    channels: &[Snowflake],
) -> Result<Readable, sqlx::Error> {
    let mut conn = db.acquire().await?;
    let mut found = Vec::new();
    for &channel in channels.iter().take(100) {
        let guild = guild_channels::guild_of(&mut *conn, channel).await?;
        let ok = match guild {
            Some(guild) => may_view(&mut conn, guild, channel, user).await?,
            None => crate::channels::membership(&mut *conn, channel, user)
                .await?
                .is_some(),
        };
        if ok {
            found.push(ReadableChannel {
                channel_id: channel,
                guild_id: guild,
            });
        }
    }
    Ok(Readable { channels: found })
}

/// One person's settings as they apply to one channel.
#[derive(Debug, Clone, Copy)]
struct Applied {
    level: MessageNotifications,
    muted: bool,
    suppress_everyone: bool,
    suppress_roles: bool,
}

/// Candidates one chunk of work looks at: a chunk's answer is at most 50 people with ten
/// browsers of 1 KiB endpoints each (about 600 KB), so an answer stopped after the chunk that
/// passes [`ANSWER_BYTES`] stays under NATS's 1 MiB.
const CHUNK: usize = 50;

/// An answer (all of a question's answers together) stops growing after the chunk that takes it
/// past this many bytes (about 1,000 recipients with one browser each).
const ANSWER_BYTES: usize = 256 * 1024;

/// Whom each of some new messages concerns, and why (see the module's comment for the rules):
/// for each query in order, a page of them in user-id order after its `after`, until the
/// answers together pass [`ANSWER_BYTES`] (the rest are asked again). An @everyone in a server
/// of thousands is many pages; each stays well under NATS's largest message.
///
/// What the messages share is read once: the channels, their servers and roles, who in a
/// channel may be concerned by a plain message, and the settings, blocks and browsers of those
/// people. Four hundred messages a second in a busy channel are a few questions of a few reads
/// each, not four hundred.
pub async fn recipients(
    db: &PgPool,
    queries: &[NotifyQuery],
) -> Result<Vec<NotifyAnswer>, sqlx::Error> {
    let queries = &queries[..queries.len().min(MAX_NOTIFY_QUERIES)];
    let mut conn = db.acquire().await?;
    let mut known = Known::read(&mut conn, queries).await?;
    let mut answers = Vec::with_capacity(queries.len());
    let mut bytes = 0;
    for query in queries {
        if !answers.is_empty() && bytes >= ANSWER_BYTES {
            break;
        }
        let (answer, size) = known.answer(&mut conn, query, ANSWER_BYTES - bytes).await?;
        bytes += size;
        answers.push(answer);
    }
    Ok(answers)
}

/// What deciding for a message in one channel needs.
struct Place {
    guild: Option<Snowflake>,
    member_count: u32,
    /// A group channel of more than LARGE_GUILD_MEMBERS is told as a server's channel is: only
    /// mentions by default, and no inbox entry for a plain message.
    large_group: bool,
    /// In a server: its owner, its roles and the channel (its overwrites).
    server: Option<(Snowflake, Vec<Role>, Channel)>,
}

/// Who may be concerned by a message: the same for every message of a channel that mentions
/// the same people and roles.
type CandidatesKey = (Snowflake, bool, Vec<Snowflake>, Vec<Snowflake>);

/// Of a chunk of candidates, those who may view the channel, each with their roles.
type Viewers = Vec<(Snowflake, Vec<Snowflake>)>;

/// What decides for a chunk of viewers of a channel, for one author's message: whom of them
/// blocks the author, their settings, their overrides for the channel, their browsers.
#[derive(Default)]
struct Rows {
    blocking: HashSet<i64>,
    settings: HashMap<i64, SettingsRow>,
    overrides: HashMap<i64, OverrideRow>,
    subscriptions: HashMap<i64, Vec<PushSubscription>>,
}

/// What one question's messages share, each read at most once.
struct Known {
    now: i64,
    authors: HashMap<Snowflake, String>,
    /// The channels that exist (and, in a server, whose server does).
    places: HashMap<Snowflake, Arc<Place>>,
    candidates: HashMap<CandidatesKey, Arc<Vec<Snowflake>>>,
    viewers: HashMap<(Snowflake, Vec<Snowflake>), Arc<Viewers>>,
    rows: HashMap<(Snowflake, Snowflake, Vec<Snowflake>), Arc<Rows>>,
}

impl Known {
    /// The authors' names and the channels of `queries`, in a round trip each, and for each
    /// server's channel its server.
    async fn read(conn: &mut PgConnection, queries: &[NotifyQuery]) -> Result<Self, sqlx::Error> {
        let authors: Vec<i64> = queries.iter().map(|q| q.author_id.as_i64()).collect();
        let authors: HashMap<Snowflake, String> = sqlx::query_as::<_, (i64, String)>(
            "SELECT id, COALESCE(display_name, username) FROM users WHERE id = ANY($1)",
        )
        .bind(&authors)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id, name)| (Snowflake::from_i64(id), name))
        .collect();
        let channels: Vec<i64> = queries.iter().map(|q| q.channel_id.as_i64()).collect();
        let rows: Vec<(i64, Option<i64>, i32)> =
            sqlx::query_as("SELECT id, guild_id, member_count FROM channels WHERE id = ANY($1)")
                .bind(&channels)
                .fetch_all(&mut *conn)
                .await?;
        let mut places = HashMap::new();
        for (channel, guild, group_members) in rows {
            let channel = Snowflake::from_i64(channel);
            let place = match guild.map(Snowflake::from_i64) {
                None => {
                    let member_count = u32::try_from(group_members).unwrap_or(0);
                    Place {
                        guild: None,
                        member_count,
                        large_group: member_count > LARGE_GUILD_MEMBERS,
                        server: None,
                    }
                }
                Some(guild) => {
                    let Some(row) = guilds::read(&mut *conn, guild).await? else {
                        continue;
                    };
                    let member_count = guilds::member_count(&mut *conn, guild).await?;
                    let Some(found) = guild_channels::one(conn, channel, member_count).await?
                    else {
                        continue;
                    };
                    let roles = roles::all(&mut *conn, guild).await?;
                    Place {
                        guild: Some(guild),
                        member_count,
                        large_group: false,
                        server: Some((row.owner_id, roles, found)),
                    }
                }
            };
            places.insert(channel, Arc::new(place));
        }
        Ok(Self {
            now: proto::clock::unix_ms() as i64,
            authors,
            places,
            candidates: HashMap::new(),
            viewers: HashMap::new(),
            rows: HashMap::new(),
        })
    }

    /// `query`'s page of recipients, stopped after the chunk that takes it past `budget` bytes,
    /// and about how many bytes it is.
    async fn answer(
        &mut self,
        conn: &mut PgConnection,
        query: &NotifyQuery,
        budget: usize,
    ) -> Result<(NotifyAnswer, usize), sqlx::Error> {
        let Some(place) = self.places.get(&query.channel_id).cloned() else {
            return Ok((NotifyAnswer::default(), 0));
        };
        let mut ids = self.candidates(conn, &place, query).await?.to_vec();
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|id| *id != query.author_id);
        ids.truncate(proto::access::MAX_RECIPIENTS);
        ids.retain(|id| query.after.is_none_or(|after| *id > after));
        let default = if place.large_group {
            MessageNotifications::OnlyMentions
        } else {
            UserGuildSettings::default_for(place.guild, place.member_count).message_notifications
        };
        let page = (query.page.max(1) as usize).min(proto::access::MAX_RECIPIENTS);
        let mut answer = NotifyAnswer {
            guild_id: place.guild,
            author_name: self
                .authors
                .get(&query.author_id)
                .cloned()
                .unwrap_or_default(),
            recipients: Vec::new(),
            next: None,
        };
        let mut bytes = 64 + answer.author_name.len();
        let mut looked = 0;
        for chunk in ids.chunks(CHUNK) {
            looked += chunk.len();
            let viewers = self.viewers(conn, &place, query.channel_id, chunk).await?;
            let rows = self.rows(conn, &place, query, &viewers).await?;
            let told = decide_for(query, &place, default, self.now, &viewers, &rows);
            bytes += told.iter().map(answer_bytes).sum::<usize>();
            answer.recipients.extend(told);
            if answer.recipients.len() > page {
                // The rest of this chunk comes again on the next page, from the last one kept.
                answer.recipients.truncate(page);
                answer.next = answer.recipients.last().map(|r| r.user_id);
                break;
            }
            if looked < ids.len() && (answer.recipients.len() == page || bytes >= budget) {
                answer.next = chunk.last().copied();
                break;
            }
        }
        Ok((answer, bytes))
    }

    /// Who in `place` may be concerned by `query`'s message, unsorted (read once for all the
    /// messages that mention the same people and roles).
    async fn candidates(
        &mut self,
        conn: &mut PgConnection,
        place: &Place,
        query: &NotifyQuery,
    ) -> Result<Arc<Vec<Snowflake>>, sqlx::Error> {
        let key = (
            query.channel_id,
            query.mention_everyone,
            query.mentions.clone(),
            query.mention_roles.clone(),
        );
        if let Some(found) = self.candidates.get(&key) {
            return Ok(found.clone());
        }
        let ids = match place.guild {
            None => group_candidates(conn, query, place.large_group).await?,
            Some(guild) => guild_candidates(conn, guild, query, place.member_count).await?,
        };
        Ok(remember(&mut self.candidates, key, ids))
    }

    /// Of `chunk`, those who may view `channel` now, with their roles in its server.
    async fn viewers(
        &mut self,
        conn: &mut PgConnection,
        place: &Place,
        channel: Snowflake,
        chunk: &[Snowflake],
    ) -> Result<Arc<Viewers>, sqlx::Error> {
        let (Some(guild), Some((owner, roles, found))) = (place.guild, &place.server) else {
            return Ok(Arc::new(chunk.iter().map(|&id| (id, Vec::new())).collect()));
        };
        let key = (channel, chunk.to_vec());
        if let Some(known) = self.viewers.get(&key) {
            return Ok(known.clone());
        }
        let members =
            guild_members::page(&mut *conn, guild, &MembersQuery::Ids(chunk.to_vec())).await?;
        let now_ms = self.now as u64;
        let viewers: Viewers = members
            .into_iter()
            .filter(|member| {
                let subject = member.subject(guild, *owner, roles, now_ms);
                effective(&subject, Some(&found.permission_overwrites))
                    .has(Permissions::VIEW_CHANNEL)
            })
            .map(|member| (member.user.id, member.roles))
            .collect();
        Ok(remember(&mut self.viewers, key, viewers))
    }

    /// What decides for `viewers` of `query`'s channel, for its author.
    async fn rows(
        &mut self,
        conn: &mut PgConnection,
        place: &Place,
        query: &NotifyQuery,
        viewers: &Viewers,
    ) -> Result<Arc<Rows>, sqlx::Error> {
        let users: Vec<Snowflake> = viewers.iter().map(|(id, _)| *id).collect();
        let key = (query.channel_id, query.author_id, users);
        if let Some(known) = self.rows.get(&key) {
            return Ok(known.clone());
        }
        let ids: Vec<i64> = key.2.iter().map(|id| id.as_i64()).collect();
        if ids.is_empty() {
            return Ok(Arc::default());
        }
        let blocking = sqlx::query_scalar(
            "SELECT user_id FROM relationships WHERE target_id = $1 AND user_id = ANY($2)",
        )
        .bind(query.author_id.as_i64())
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        let settings = sqlx::query_as::<_, SettingsRow>(
            "SELECT user_id, message_notifications, muted, mute_end_ms, suppress_everyone,
                    suppress_roles
             FROM user_guild_settings WHERE guild_id = $1 AND user_id = ANY($2)",
        )
        .bind(place.guild.map_or(DMS, |g| g.as_i64()))
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|row| (row.0, row))
        .collect();
        let overrides = sqlx::query_as::<_, OverrideRow>(
            "SELECT user_id, channel_id, message_notifications, muted, mute_end_ms
             FROM channel_notification_overrides WHERE channel_id = $1 AND user_id = ANY($2)",
        )
        .bind(query.channel_id.as_i64())
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|row| (row.0, row))
        .collect();
        let subs: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT user_id, endpoint, p256dh, auth FROM push_subscriptions
             WHERE user_id = ANY($1) ORDER BY created_at",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let mut subscriptions: HashMap<i64, Vec<PushSubscription>> = HashMap::new();
        for (user, endpoint, p256dh, auth) in subs {
            subscriptions
                .entry(user)
                .or_default()
                .push(PushSubscription {
                    endpoint,
                    keys: PushKeys { p256dh, auth },
                });
        }
        let rows = Rows {
            blocking,
            settings,
            overrides,
            subscriptions,
        };
        Ok(remember(&mut self.rows, key, rows))
    }
}

/// Keeps `value` in `known` under `key`, for the rest of a question, and returns it.
fn remember<K: std::hash::Hash + Eq, V>(
    known: &mut HashMap<K, Arc<V>>,
    key: K,
    value: V,
) -> Arc<V> {
    let value = Arc::new(value);
    known.insert(key, value.clone());
    value
}

/// About what one recipient adds to an answer's JSON.
fn answer_bytes(recipient: &Recipient) -> usize {
    64 + recipient
        .subscriptions
        .iter()
        .map(|s| 64 + s.endpoint.len() + s.keys.p256dh.len() + s.keys.auth.len())
        .sum::<usize>()
}

/// Of `viewers` (who may view the channel), those the message concerns under their settings
/// and blocks, with their browsers.
fn decide_for(
    query: &NotifyQuery,
    place: &Place,
    default: MessageNotifications,
    now: i64,
    viewers: &Viewers,
    rows: &Rows,
) -> Vec<Recipient> {
    let mut recipients = Vec::new();
    for (user, roles) in viewers {
        let id = user.as_i64();
        if rows.blocking.contains(&id) {
            continue;
        }
        let base = rows.settings.get(&id);
        let over = rows.overrides.get(&id);
        let over_level = over
            .map(|o| level(o.2))
            .filter(|l| *l != MessageNotifications::Inherit);
        // In a large group, the settings for DMs and groups at large do not choose every
        // message; only the channel's own override does.
        let base_level = base.map(|s| level(s.1)).filter(|_| !place.large_group);
        let applied = Applied {
            level: over_level.or(base_level).unwrap_or(default),
            muted: base.is_some_and(|s| muted_now(s.2, s.3, now))
                || over.is_some_and(|o| muted_now(o.3, o.4, now)),
            suppress_everyone: base.is_some_and(|s| s.4),
            suppress_roles: base.is_some_and(|s| s.5),
        };
        let as_server = place.guild.is_some() || place.large_group;
        if let Some(reason) = decide(query, as_server, *user, roles, applied) {
            recipients.push(Recipient {
                user_id: *user,
                reason,
                subscriptions: rows.subscriptions.get(&id).cloned().unwrap_or_default(),
            });
        }
    }
    recipients
}

/// Who in a group channel may be concerned: every member of a small one (each message is for
/// them, as in a DM); of a large one, everyone for @everyone, else those it mentions and those
/// who chose all messages for it.
async fn group_candidates(
    conn: &mut PgConnection,
    query: &NotifyQuery,
    large: bool,
) -> Result<Vec<Snowflake>, sqlx::Error> {
    if !large || query.mention_everyone {
        return crate::channels::member_ids(&mut *conn, query.channel_id).await;
    }
    let users: Vec<i64> = query.mentions.iter().map(|u| u.as_i64()).collect();
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT user_id FROM channel_members WHERE channel_id = $1 AND user_id = ANY($2)
         UNION SELECT o.user_id FROM channel_notification_overrides o
               JOIN channel_members m ON m.channel_id = o.channel_id AND m.user_id = o.user_id
               WHERE o.channel_id = $1 AND o.message_notifications = 0
         ORDER BY 1 LIMIT $3",
    )
    .bind(query.channel_id.as_i64())
    .bind(&users)
    .bind(proto::access::MAX_RECIPIENTS as i64 + 1)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids.into_iter().map(Snowflake::from_i64).collect())
}

/// Who in a server may be concerned: everyone, when the message mentions everyone or the
/// server is small enough that all messages is the default; otherwise the people and roles it
/// mentions and those who chose all messages (for the server or this channel).
async fn guild_candidates(
    conn: &mut PgConnection,
    guild: Snowflake,
    query: &NotifyQuery,
    member_count: u32,
) -> Result<Vec<Snowflake>, sqlx::Error> {
    let limit = proto::access::MAX_RECIPIENTS as i64 + 1;
    let ids: Vec<i64> = if query.mention_everyone || member_count <= LARGE_GUILD_MEMBERS {
        sqlx::query_scalar(
            "SELECT user_id FROM guild_members WHERE guild_id = $1 ORDER BY user_id LIMIT $2",
        )
        .bind(guild.as_i64())
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
    } else {
        let users: Vec<i64> = query.mentions.iter().map(|u| u.as_i64()).collect();
        let roles: Vec<i64> = query.mention_roles.iter().map(|r| r.as_i64()).collect();
        sqlx::query_scalar(
            "SELECT user_id FROM guild_members WHERE guild_id = $1 AND user_id = ANY($2)
             UNION SELECT user_id FROM member_roles WHERE guild_id = $1 AND role_id = ANY($3)
             UNION SELECT user_id FROM user_guild_settings
                   WHERE guild_id = $1 AND message_notifications = 0
             UNION SELECT user_id FROM channel_notification_overrides
                   WHERE channel_id = $4 AND message_notifications = 0
             ORDER BY 1 LIMIT $5",
        )
        .bind(guild.as_i64())
        .bind(&users)
        .bind(&roles)
        .bind(query.channel_id.as_i64())
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
    };
    Ok(ids.into_iter().map(Snowflake::from_i64).collect())
}

/// Whether (and why) one person is told of a message, from their settings as they apply here.
fn decide(
    query: &NotifyQuery,
    // In a server's channel, or told as one (a large group channel).
    in_guild: bool,
    user: Snowflake,
    roles: &[Snowflake],
    applied: Applied,
) -> Option<NotifyReason> {
    let mention = if query.mentions.contains(&user) {
        Some(NotifyReason::Mention)
    } else if !applied.suppress_roles && query.mention_roles.iter().any(|r| roles.contains(r)) {
        Some(NotifyReason::RoleMention)
    } else if query.mention_everyone && !applied.suppress_everyone {
        Some(NotifyReason::Everyone)
    } else {
        None
    };
    if applied.level == MessageNotifications::NoMessages {
        return None;
    }
    if !in_guild {
        // A muted DM or group channel tells nothing; otherwise every message is for them.
        if applied.muted {
            return None;
        }
        return match (mention, applied.level) {
            (Some(reason), _) => Some(reason),
            (None, MessageNotifications::OnlyMentions) => None,
            (None, _) => Some(NotifyReason::Direct),
        };
    }
    match mention {
        Some(reason) => Some(reason),
        None if !applied.muted && applied.level == MessageNotifications::AllMessages => {
            Some(NotifyReason::AllMessages)
        }
        None => None,
    }
}

/// Records a browser's subscription for `user` (taking it over if another user held the same
/// endpoint: it is one browser), keeping at most [`MAX_PUSH_SUBSCRIPTIONS`] per user.
pub async fn subscribe(
    db: &PgPool,
    user: Snowflake,
    sub: &PushSubscription,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO push_subscriptions (endpoint, user_id, p256dh, auth) VALUES ($1, $2, $3, $4)
         ON CONFLICT (endpoint) DO UPDATE SET user_id = EXCLUDED.user_id,
            p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, created_at = now()",
    )
    .bind(&sub.endpoint)
    .bind(user.as_i64())
    .bind(&sub.keys.p256dh)
    .bind(&sub.keys.auth)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint NOT IN (
            SELECT endpoint FROM push_subscriptions WHERE user_id = $1
            ORDER BY created_at DESC LIMIT $2)",
    )
    .bind(user.as_i64())
    .bind(MAX_PUSH_SUBSCRIPTIONS as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Removes a subscription: the user's own (`Some`), or whoever's (the push service said it is
/// gone). Whether one was removed.
pub async fn unsubscribe(
    db: impl PgExecutor<'_>,
    user: Option<Snowflake>,
    endpoint: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM push_subscriptions WHERE endpoint = $1 AND ($2::BIGINT IS NULL OR user_id = $2)",
    )
    .bind(endpoint)
    .bind(user.map(|u| u.as_i64()))
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> NotifyQuery {
        NotifyQuery {
            channel_id: Snowflake::from_u64(1),
            author_id: Snowflake::from_u64(2),
            mentions: vec![],
            mention_roles: vec![],
            mention_everyone: false,
            after: None,
            page: proto::access::RECIPIENTS_PAGE,
        }
    }

    fn applied(level: MessageNotifications) -> Applied {
        Applied {
            level,
            muted: false,
            suppress_everyone: false,
            suppress_roles: false,
        }
    }

    #[test]
    fn a_muted_server_channel_tells_of_mentions_only() {
        let me = Snowflake::from_u64(3);
        let mut muted = applied(MessageNotifications::AllMessages);
        muted.muted = true;
        assert_eq!(decide(&query(), true, me, &[], muted), None);
        let mut q = query();
        q.mentions.push(me);
        assert_eq!(
            decide(&q, true, me, &[], muted),
            Some(NotifyReason::Mention)
        );
    }

    #[test]
    fn suppressed_everyone_is_no_mention() {
        let me = Snowflake::from_u64(3);
        let mut q = query();
        q.mention_everyone = true;
        let mut settings = applied(MessageNotifications::OnlyMentions);
        assert_eq!(
            decide(&q, true, me, &[], settings),
            Some(NotifyReason::Everyone)
        );
        settings.suppress_everyone = true;
        assert_eq!(decide(&q, true, me, &[], settings), None);
    }

    #[test]
    fn nothing_means_nothing_and_a_muted_dm_is_silent() {
        let me = Snowflake::from_u64(3);
        let mut q = query();
        q.mentions.push(me);
        assert_eq!(
            decide(&q, true, me, &[], applied(MessageNotifications::NoMessages)),
            None
        );
        let mut dm = applied(MessageNotifications::AllMessages);
        assert_eq!(
            decide(&query(), false, me, &[], dm),
            Some(NotifyReason::Direct)
        );
        dm.muted = true;
        assert_eq!(decide(&query(), false, me, &[], dm), None);
    }

    #[test]
    fn a_mute_with_an_end_ends() {
        assert!(muted_now(true, None, 10));
        assert!(muted_now(true, Some(20), 10));
        assert!(!muted_now(true, Some(5), 10));
        assert!(!muted_now(false, None, 10));
    }
}
