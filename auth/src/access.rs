//! Auth's answers to edges over NATS (`{p}.auth.*`, `proto::access`): what a gateway session
//! needs (the user's channels, whose presence it may watch, which DMs refuse sends), whose
//! presence a user may see, and pages of a channel's members.
//!
//! Edges ask here rather than over REST because a session outlives the access token it started
//! with, and because some answers (whose presence is hidden from the user by their block) are not
//! for the user to read. Only services reach NATS; edges ask after checking the user's token.
//! Every auth instance answers in the queue group `auth`, at most `--database-max-connections`
//! requests at once.

use std::collections::HashMap;

use proto::Snowflake;
use proto::access::{
    ChannelGuilds, ChannelGuildsQuery, GuildMembersRequest, GuildMembership, GuildQuery,
    GuildSnapshot, MAX_CHANNEL_GUILDS, MAX_SESSION_STARTS, MembersRequest, MessageDeleted,
    NotifyAnswers, NotifyQueries, PushGone, Readable, ReadableChannel, ReadableQuery, Reply,
    SessionStartAnswers, SessionStarts, SessionState, StateQuery, Visible, VisibleQuery,
    VoiceRequest,
};
use serde::Serialize;

use crate::channels;
use crate::consent;
use crate::state::AppState;

/// Most ids one visibility question may name.
const MAX_VISIBLE_IDS: usize = 1000;

/// Most bytes of sessions' answers in one reply to [`SessionStarts`], well under NATS's 1 MB
/// largest message: the answers past it are asked again.
const ANSWER_BUDGET: usize = 512 * 1024;

/// Subscribes to the edges' requests; a failure here stops auth from starting.
pub async fn subscribe(
    state: &AppState,
) -> Result<async_nats::Subscriber, async_nats::SubscribeError> {
    state
        .nats
        .queue_subscribe(state.subjects.auth_requests(), "auth".to_owned())
        .await
}

/// Answers requests until the subscription ends (the NATS client was closed).
pub async fn answer(state: AppState, requests: async_nats::Subscriber, concurrency: usize) {
    let nats = state.nats.clone();
    let forever = kit::lifecycle::Shutdown::new();
    kit::requests::serve(
        nats,
        requests,
        concurrency,
        forever,
        "auth",
        move |request| {
            let state = state.clone();
            async move { respond(&state, request.subject.as_str(), &request.payload).await }
        },
    )
    .await;
}

async fn respond(state: &AppState, subject: &str, payload: &[u8]) -> Vec<u8> {
    let subjects = &state.subjects;
    if subject == subjects.auth_state() {
        encode(&parse(payload, |q: StateQuery| session_state(state, q)).await)
    } else if subject == subjects.auth_starts() {
        encode(&parse(payload, |q: SessionStarts| session_starts(state, q)).await)
    } else if subject == subjects.auth_visible() {
        encode(&parse(payload, |q: VisibleQuery| visible(state, q)).await)
    } else if subject == subjects.auth_members() {
        encode(&parse(payload, |q: MembersRequest| members(state, q)).await)
    } else if subject == subjects.auth_guild() {
        encode(&parse(payload, |q: GuildQuery| guild(state, q)).await)
    } else if subject == subjects.auth_guild_members() {
        encode(&parse(payload, |q: GuildMembersRequest| guild_members(state, q)).await)
    } else if subject == subjects.auth_voice() {
        encode(&parse(payload, |q: VoiceRequest| crate::voice::request(state, q)).await)
    } else if subject == subjects.auth_notify() {
        encode(&parse(payload, |q: NotifyQueries| notify(state, q)).await)
    } else if subject == subjects.auth_readable() {
        encode(&parse(payload, |q: ReadableQuery| readable(state, q)).await)
    } else if subject == subjects.auth_channel_guilds() {
        encode(&parse(payload, |q: ChannelGuildsQuery| channel_guilds(state, q)).await)
    } else if subject == subjects.auth_push_gone() {
        encode(&parse(payload, |q: PushGone| push_gone(state, q)).await)
    } else if subject == subjects.auth_audit() {
        encode(&parse(payload, |q: MessageDeleted| message_deleted(state, q)).await)
    } else {
        encode::<()>(&Reply::Failed(format!("auth answers no {subject}")))
    }
}

async fn parse<Q, T, F>(payload: &[u8], answer: impl FnOnce(Q) -> F) -> Reply<T>
where
    Q: serde::de::DeserializeOwned,
    F: Future<Output = Reply<T>>,
{
    match kit::requests::parse(payload) {
        Ok(query) => answer(query).await,
        Err(why) => Reply::Failed(why),
    }
}

fn encode<T: Serialize>(reply: &Reply<T>) -> Vec<u8> {
    kit::requests::encode(reply)
}

fn failed<T>(e: &sqlx::Error) -> Reply<T> {
    tracing::warn!(error = %e, "cannot answer an edge's request");
    Reply::Failed("the database did not answer".to_owned())
}

/// Whom new messages concern (the notification worker asks; `crate::notifications`).
async fn notify(state: &AppState, asked: NotifyQueries) -> Reply<NotifyAnswers> {
    match crate::notifications::recipients(&state.db, &asked.queries).await {
        Ok(answers) => Reply::Ok(NotifyAnswers { answers }),
        Err(e) => failed(&e),
    }
}

/// Which of some channels a user can read now (the mentions inbox shows only those).
async fn readable(state: &AppState, query: ReadableQuery) -> Reply<Readable> {
    match crate::notifications::readable(&state.db, query.user_id, &query.channel_ids).await {
        Ok(found) => Reply::Ok(found),
        Err(e) => failed(&e),
    }
}

/// The server of each of some channels (the search service indexes it).
async fn channel_guilds(state: &AppState, query: ChannelGuildsQuery) -> Reply<ChannelGuilds> {
    if query.channel_ids.len() > MAX_CHANNEL_GUILDS {
        return Reply::Failed(format!("at most {MAX_CHANNEL_GUILDS} channels at once"));
    }
    let ids: Vec<i64> = query.channel_ids.iter().map(|c| c.as_i64()).collect();
    let rows = sqlx::query_as::<_, (i64, Option<i64>)>(
        "SELECT id, guild_id FROM channels WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&state.db)
    .await;
    match rows {
        Ok(rows) => Reply::Ok(ChannelGuilds {
            channels: rows
                .into_iter()
                .map(|(channel, guild)| ReadableChannel {
                    channel_id: Snowflake::from_i64(channel),
                    guild_id: guild.map(Snowflake::from_i64),
                })
                .collect(),
        }),
        Err(e) => failed(&e),
    }
}

/// A push service refused a subscription for good: it goes.
async fn push_gone(state: &AppState, gone: PushGone) -> Reply<bool> {
    match crate::notifications::unsubscribe(&state.db, None, &gone.endpoint).await {
        Ok(removed) => Reply::Ok(removed),
        Err(e) => failed(&e),
    }
}

async fn session_state(state: &AppState, query: StateQuery) -> Reply<SessionState> {
    let read = async {
        let mut conn = state.db.acquire().await?;
        let guilds: Vec<GuildMembership> = crate::guild_members::of_user(&mut *conn, query.user_id)
            .await?
            .into_iter()
            .map(|(guild_id, member)| GuildMembership { guild_id, member })
            .collect();
        if query.guilds_only {
            return Ok(Some(SessionState {
                guilds,
                ..Default::default()
            }));
        }
        let channels = channels::mine(&mut conn, query.user_id, query.channel_id).await?;
        if query.channel_id.is_some() && channels.is_empty() {
            return Ok(None);
        }
        let watch = consent::watch_lists(
            &mut *conn,
            query.user_id,
            query.channel_id,
            query.watch_max_members,
        )
        .await?;
        let closed = consent::closed_dms(&mut *conn, query.user_id, query.channel_id).await?;
        Ok::<_, sqlx::Error>(Some(SessionState {
            channels,
            watch,
            closed,
            guilds,
            ..Default::default()
        }))
    };
    match read.await {
        Ok(Some(found)) => Reply::Ok(found),
        Ok(None) => Reply::NotFound,
        Err(e) => failed(&e),
    }
}

/// The sessions starting at an edge, together: which are still signed in, and for those, the
/// user's profile and everything [`session_state`] reads, each kind of read once for all their
/// users (a user's devices starting together are one user). READY's calls and notification
/// settings too, for the users with a fresh start (a storm of resumes skips them). The answer
/// stops short of [`ANSWER_BUDGET`] bytes; the edge asks again for the rest.
async fn session_starts(state: &AppState, asked: SessionStarts) -> Reply<SessionStartAnswers> {
    if asked.starts.len() > MAX_SESSION_STARTS {
        return Reply::Failed(format!("at most {MAX_SESSION_STARTS} sessions at once"));
    }
    let pairs: Vec<(Snowflake, Snowflake)> = asked
        .starts
        .iter()
        .map(|start| (start.session_id, start.user_id))
        .collect();
    let active = match crate::sessions::active_of(&state.db, &pairs).await {
        Ok(active) => active,
        Err(e) => return failed(&e),
    };
    let mut users: Vec<Snowflake> = active.iter().map(|(_, user)| *user).collect();
    users.sort_unstable();
    users.dedup();
    let mut profiles = match crate::routes::users::read_many(state, &users).await {
        Ok(found) => found,
        Err(e) => return failed(&e),
    };
    let ids: Vec<i64> = users.iter().map(|user| user.as_i64()).collect();
    let max = asked.watch_max_members;
    let read = async {
        // Every statement here finds the ids it is given through their indexes, the same plan
        // whatever the ids. PostgreSQL planned each run anew (its custom plans, which it kept
        // choosing for these), which cost as much as the reads: within this transaction a
        // statement runs the generic plan its connection made once.
        let mut conn = state.db.begin().await?;
        sqlx::raw_sql("SET LOCAL plan_cache_mode = force_generic_plan")
            .execute(&mut *conn)
            .await?;
        let mut guilds = crate::guild_members::of_users(&mut *conn, &ids).await?;
        let mut channels = channels::mine_of(&mut conn, &ids, None).await?;
        let mut watch = consent::watch_lists_of(&mut *conn, &ids, None, max).await?;
        let mut closed = consent::closed_dms_of(&mut *conn, &ids, None).await?;
        // Only READY shows the calls and the settings: read for the users with a fresh start.
        let mut readying: Vec<i64> = (asked.starts.iter())
            .filter(|start| !start.resuming && active.contains(&(start.session_id, start.user_id)))
            .map(|start| start.user_id.as_i64())
            .collect();
        readying.sort_unstable();
        readying.dedup();
        let (mut calls, mut settings) = if readying.is_empty() {
            (HashMap::new(), HashMap::new())
        } else {
            (
                crate::voice::of_calls_of(&mut *conn, &readying).await?,
                crate::notifications::of_users(&mut conn, &readying).await?,
            )
        };
        let mut answers = Vec::with_capacity(asked.starts.len());
        let mut size = 0;
        for (i, start) in asked.starts.iter().enumerate() {
            let user = start.user_id;
            let Some(profile) = profiles
                .get(&user)
                .filter(|_| active.contains(&(start.session_id, user)))
            else {
                answers.push(Reply::SignedOut);
                continue;
            };
            // The last start of a user takes their reads; earlier ones (their other devices) clone.
            let last = !asked.starts[i + 1..]
                .iter()
                .any(|later| later.user_id == user);
            let mut found = SessionState {
                guilds: take(&mut guilds, user, last)
                    .into_iter()
                    .map(|(guild_id, member)| GuildMembership { guild_id, member })
                    .collect(),
                channels: take(&mut channels, user, last),
                watch: take(&mut watch, user, last),
                closed: take(&mut closed, user, last),
                user: Some(profile.clone()),
                ..Default::default()
            };
            if last {
                profiles.remove(&user);
            }
            if !start.resuming {
                let last_ready = !asked.starts[i + 1..]
                    .iter()
                    .any(|later| later.user_id == user && !later.resuming);
                found.voice_states = take(&mut calls, user, last_ready);
                found.user_guild_settings = take(&mut settings, user, last_ready);
            }
            let answer = Reply::Ok(found);
            size += serde_json::to_vec(&answer).map_or(0, |bytes| bytes.len());
            if size > ANSWER_BUDGET && !answers.is_empty() {
                break;
            }
            answers.push(answer);
        }
        conn.commit().await?;
        Ok::<_, sqlx::Error>(answers)
    };
    match read.await {
        Ok(answers) => Reply::Ok(SessionStartAnswers { answers }),
        Err(e) => failed(&e),
    }
}

/// `user`'s part of one of [`session_starts`]'s reads: taken by their `last` start, cloned for
/// the others.
fn take<T: Clone>(of: &mut HashMap<Snowflake, Vec<T>>, user: Snowflake, last: bool) -> Vec<T> {
    if last {
        of.remove(&user).unwrap_or_default()
    } else {
        of.get(&user).cloned().unwrap_or_default()
    }
}

async fn visible(state: &AppState, query: VisibleQuery) -> Reply<Visible> {
    if query.user_ids.len() > MAX_VISIBLE_IDS {
        return Reply::Failed(format!("at most {MAX_VISIBLE_IDS} ids at once"));
    }
    match consent::visible(&state.db, query.user_id, &query.user_ids).await {
        Ok(user_ids) => Reply::Ok(Visible { user_ids }),
        Err(e) => failed(&e),
    }
}

async fn members(
    state: &AppState,
    query: MembersRequest,
) -> Reply<Vec<proto::api::channels::Member>> {
    let read = async {
        if channels::membership(&state.db, query.channel_id, query.user_id)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        channels::members(&state.db, query.channel_id, &query.query)
            .await
            .map(Some)
    };
    match read.await {
        Ok(Some(members)) => Reply::Ok(members),
        Ok(None) => Reply::NotFound,
        Err(e) => failed(&e),
    }
}

async fn guild(state: &AppState, query: GuildQuery) -> Reply<GuildSnapshot> {
    let read = async {
        let mut conn = state.db.acquire().await?;
        crate::guilds::snapshot(&mut conn, query.guild_id).await
    };
    match read.await {
        Ok(Some(snapshot)) => Reply::Ok(snapshot),
        Ok(None) => Reply::NotFound,
        Err(e) => failed(&e),
    }
}

async fn guild_members(
    state: &AppState,
    query: GuildMembersRequest,
) -> Reply<Vec<proto::api::guilds::GuildMember>> {
    let read = async {
        let mut conn = state.db.acquire().await?;
        if crate::guild_members::one(&mut *conn, query.guild_id, query.user_id)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        crate::guild_members::page(&mut *conn, query.guild_id, &query.query)
            .await
            .map(Some)
    };
    match read.await {
        Ok(Some(members)) => Reply::Ok(members),
        Ok(None) => Reply::NotFound,
        Err(e) => failed(&e),
    }
}

/// Records a moderator's delete of someone else's message, once auth has checked they may
/// (MANAGE_MESSAGES in the channel), and tells those who read the audit log.
async fn message_deleted(state: &AppState, deleted: MessageDeleted) -> Reply<()> {
    use proto::api::audit::{AuditEntryInfo, AuditLogEvent};
    use proto::permissions::Permissions;
    let guild = deleted.guild_id;
    let write = async {
        let mut tx = state.db.begin().await?;
        let Some(standing) = crate::guilds::standing(&mut tx, guild, deleted.user_id, true).await?
        else {
            return Ok(None);
        };
        let count = crate::guilds::member_count(&mut *tx, guild).await?;
        let Some(channel) = crate::guild_channels::one(&mut tx, deleted.channel_id, count).await?
        else {
            return Ok(None);
        };
        if channel.guild_id != Some(guild)
            || !standing
                .in_channel(&channel)
                .has(Permissions::MANAGE_MESSAGES)
        {
            return Ok(None);
        }
        let record = crate::audit::Record::new(
            guild,
            deleted.user_id,
            AuditLogEvent::MessageDelete,
            Some(deleted.author_id),
        )
        .options(AuditEntryInfo {
            channel_id: Some(deleted.channel_id),
            message_id: Some(deleted.message_id),
            count: Some(1),
            ..Default::default()
        })
        .reason(deleted.reason.clone());
        let entry = crate::audit::record(&mut tx, state.ids.next_id(), record).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Some(entry))
    };
    match write.await {
        Ok(Some(entry)) => {
            crate::routes::guilds::publish(state, guild, Vec::new(), vec![entry]).await;
            Reply::Ok(())
        }
        Ok(None) => Reply::NotFound,
        Err(e) => failed(&e),
    }
}
