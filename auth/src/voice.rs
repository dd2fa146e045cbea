//! Voice states: who is in which voice channel or call (`voice_states`, one row per user), what
//! they may publish there, and telling everyone who can see the channel.
//!
//! Auth decides here because it holds what the decision rests on (a server's roles and
//! overwrites, a call's members) in the same database, in the same transaction as the change:
//! edges hand it a session's op 4 (`{p}.auth.voice`), and the end of a session that had joined.
//! The row lives as long as the gateway connection that joined; its end (or LiveKit telling that
//! the person's media connection went) deletes it, and the person is taken out of the room.

use std::collections::HashMap;

use proto::Snowflake;
use proto::access::{Reply, VoiceAnswer, VoiceRequest};
use proto::api::channels::ChannelKind;
use proto::api::error::ErrorCode;
use proto::api::voice::{PublishGrants, VoiceServerUpdate, VoiceState, room_name};
use proto::events::{CallEvent, Event};
use proto::permissions::Permissions;
use sqlx::{PgConnection, PgExecutor};

use crate::state::AppState;

#[derive(sqlx::FromRow)]
struct Row {
    user_id: i64,
    channel_id: i64,
    guild_id: Option<i64>,
    session_id: String,
    self_mute: bool,
    self_deaf: bool,
    self_video: bool,
    self_stream: bool,
    mute: bool,
    deaf: bool,
}

impl From<Row> for VoiceState {
    fn from(row: Row) -> Self {
        Self {
            guild_id: row.guild_id.map(Snowflake::from_i64),
            channel_id: Some(Snowflake::from_i64(row.channel_id)),
            user_id: Snowflake::from_i64(row.user_id),
            session_id: row.session_id,
            self_mute: row.self_mute,
            self_deaf: row.self_deaf,
            self_video: row.self_video,
            self_stream: row.self_stream,
            mute: row.mute,
            deaf: row.deaf,
        }
    }
}

const COLUMNS: &str = "user_id, channel_id, guild_id, session_id, self_mute, self_deaf, \
                       self_video, self_stream, mute, deaf";

/// Everyone in a server's voice channels.
pub async fn of_guild(
    db: impl PgExecutor<'_>,
    guild: Snowflake,
) -> Result<Vec<VoiceState>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM voice_states WHERE guild_id = $1 ORDER BY user_id"
    )))
    .bind(guild.as_i64())
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(VoiceState::from).collect())
}

/// A row of [`of_calls_of`]: a state in a call, and a member of the call's channel who sees it.
#[derive(sqlx::FromRow)]
struct CallRow {
    member: i64,
    #[sqlx(flatten)]
    state: Row,
}

/// For each of `users` in any, everyone in a call in one of their DMs and group channels (one
/// query).
pub async fn of_calls_of(
    db: impl PgExecutor<'_>,
    users: &[i64],
) -> Result<HashMap<Snowflake, Vec<VoiceState>>, sqlx::Error> {
    let rows: Vec<CallRow> = sqlx::query_as(
        "SELECT m.user_id AS member, v.user_id, v.channel_id, v.guild_id, v.session_id,
                v.self_mute, v.self_deaf, v.self_video, v.self_stream, v.mute, v.deaf
         FROM voice_states v JOIN channel_members m ON m.channel_id = v.channel_id
         WHERE m.user_id = ANY($1) AND v.guild_id IS NULL ORDER BY m.user_id, v.user_id",
    )
    .bind(users)
    .fetch_all(db)
    .await?;
    let mut of: HashMap<Snowflake, Vec<VoiceState>> = HashMap::new();
    for row in rows {
        of.entry(Snowflake::from_i64(row.member))
            .or_default()
            .push(VoiceState::from(row.state));
    }
    Ok(of)
}

/// The user's voice state, locked until the transaction ends.
async fn lock_of(conn: &mut PgConnection, user: Snowflake) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM voice_states WHERE user_id = $1 FOR UPDATE"
    )))
    .bind(user.as_i64())
    .fetch_optional(conn)
    .await
}

/// One user's voice state, if they are in a channel.
pub async fn of_user(
    db: impl PgExecutor<'_>,
    user: Snowflake,
) -> Result<Option<VoiceState>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM voice_states WHERE user_id = $1"
    )))
    .bind(user.as_i64())
    .fetch_optional(db)
    .await?;
    Ok(row.map(VoiceState::from))
}

async fn upsert(conn: &mut PgConnection, state: &VoiceState) -> Result<(), sqlx::Error> {
    let channel = state.channel_id.expect("a joined state has a channel");
    sqlx::query(
        "INSERT INTO voice_states (user_id, channel_id, guild_id, session_id, self_mute, \
             self_deaf, self_video, self_stream, mute, deaf)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (user_id) DO UPDATE SET channel_id = $2, guild_id = $3, session_id = $4,
             self_mute = $5, self_deaf = $6, self_video = $7, self_stream = $8, mute = $9,
             deaf = $10,
             joined_at = CASE WHEN voice_states.channel_id = $2 AND voice_states.session_id = $4
                              THEN voice_states.joined_at ELSE now() END",
    )
    .bind(state.user_id.as_i64())
    .bind(channel.as_i64())
    .bind(state.guild_id.map(Snowflake::as_i64))
    .bind(&state.session_id)
    .bind(state.self_mute)
    .bind(state.self_deaf)
    .bind(state.self_video)
    .bind(state.self_stream)
    .bind(state.mute)
    .bind(state.deaf)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the user's voice state if `session` (when given) made it; the state deleted.
async fn delete(
    db: impl PgExecutor<'_>,
    user: Snowflake,
    session: Option<&str>,
    channel: Option<Snowflake>,
) -> Result<Option<VoiceState>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "DELETE FROM voice_states WHERE user_id = $1
             AND ($2::text IS NULL OR session_id = $2)
             AND ($3::bigint IS NULL OR channel_id = $3)
         RETURNING {COLUMNS}"
    )))
    .bind(user.as_i64())
    .bind(session)
    .bind(channel.map(Snowflake::as_i64))
    .fetch_optional(db)
    .await?;
    Ok(row.map(VoiceState::from))
}

/// Sets a member's server mute and deafen; their state after, if they are in a channel of
/// `guild`.
pub async fn set_moderation(
    conn: &mut PgConnection,
    guild: Snowflake,
    user: Snowflake,
    mute: Option<bool>,
    deaf: Option<bool>,
) -> Result<Option<VoiceState>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE voice_states SET mute = coalesce($3, mute), deaf = coalesce($4, deaf)
         WHERE user_id = $1 AND guild_id = $2 RETURNING {COLUMNS}"
    )))
    .bind(user.as_i64())
    .bind(guild.as_i64())
    .bind(mute)
    .bind(deaf)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(VoiceState::from))
}

/// A state as it reads once its person left.
fn left(state: &VoiceState) -> VoiceState {
    VoiceState {
        channel_id: None,
        ..state.clone()
    }
}

/// Where a state is published: a server's subject, or its call's channel.
pub async fn publish(state: &AppState, voice: &VoiceState, channel: Snowflake) {
    let event = Event::VoiceStateUpdate(voice.clone());
    match voice.guild_id {
        Some(guild) => state.events.guild(&event, guild, &[]).await,
        None => state.events.channel(&event, channel, &[]).await,
    }
}

/// How many people are in `channel`'s call.
async fn in_call(db: impl PgExecutor<'_>, channel: Snowflake) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM voice_states WHERE channel_id = $1")
        .bind(channel.as_i64())
        .fetch_one(db)
        .await
}

/// Publishes that `voice`'s person left `channel`, and, when that emptied a DM's or group's call,
/// that the call ended (and its message, `crate::calls`).
async fn publish_left(state: &AppState, voice: &VoiceState, channel: Snowflake) {
    publish(state, &left(voice), channel).await;
    if voice.guild_id.is_some() {
        return;
    }
    match in_call(&state.db, channel).await {
        Ok(0) => {
            if let Err(e) = crate::calls::emptied(state, channel).await {
                tracing::warn!(error = %e, "cannot end a call");
            }
            let ended = Event::CallDelete(CallEvent {
                channel_id: channel,
                ringing: Vec::new(),
            });
            state.events.channel(&ended, channel, &[]).await;
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot count a call's people"),
    }
}

/// Takes everyone out of `channel`'s call (a call nobody answered).
pub async fn hang_up_all(state: &AppState, channel: Snowflake) -> Result<(), sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM voice_states WHERE channel_id = $1 AND guild_id IS NULL"
    )))
    .bind(channel.as_i64())
    .fetch_all(&state.db)
    .await?;
    for row in rows {
        let voice = VoiceState::from(row);
        if let Some(gone) = delete(
            &state.db,
            voice.user_id,
            Some(&voice.session_id),
            Some(channel),
        )
        .await?
        {
            announce_left(state, &gone).await;
        }
    }
    state.events.flush().await;
    Ok(())
}

/// Publishes that `voice`'s person left its channel, and takes them out of its media room.
pub async fn announce_left(state: &AppState, voice: &VoiceState) {
    let Some(channel) = voice.channel_id else {
        return;
    };
    publish_left(state, voice, channel).await;
    if let Some(livekit) = &state.livekit {
        let livekit = livekit.clone();
        let identity = voice.user_id.to_string();
        if let Err(e) = livekit.remove(&room_name(channel), &identity).await {
            tracing::warn!(error = %e, %channel, "cannot take a participant out of a room");
        }
    }
}

/// What a user may do in a channel's call: CONNECT (else why not), and what they may publish.
enum Decision {
    /// Not a channel they can see, or not one with calls.
    Unknown,
    Missing(&'static str),
    Allowed {
        guild: Option<Snowflake>,
        grants: PublishGrants,
    },
}

async fn decide(
    conn: &mut PgConnection,
    user: Snowflake,
    guild: Option<Snowflake>,
    channel: Snowflake,
) -> Result<Decision, sqlx::Error> {
    let Some(guild) = guild else {
        // A call in a DM or group channel: its members may join, and publish.
        return Ok(
            match crate::channels::membership(&mut *conn, channel, user).await? {
                Some((ChannelKind::Dm | ChannelKind::Group, _)) => Decision::Allowed {
                    guild: None,
                    grants: PublishGrants {
                        audio: true,
                        video: true,
                    },
                },
                _ => Decision::Unknown,
            },
        );
    };
    let Some(standing) = crate::guilds::standing(conn, guild, user, false).await? else {
        return Ok(Decision::Unknown);
    };
    let count = crate::guilds::member_count(&mut *conn, guild).await?;
    let Some(found) = crate::guild_channels::one(conn, channel, count).await? else {
        return Ok(Decision::Unknown);
    };
    if found.guild_id != Some(guild) || found.kind != ChannelKind::Voice {
        return Ok(Decision::Unknown);
    }
    let permissions = standing.in_channel(&found);
    if !permissions.has(Permissions::VIEW_CHANNEL) {
        return Ok(Decision::Unknown);
    }
    if !permissions.has(Permissions::CONNECT) {
        return Ok(Decision::Missing("CONNECT"));
    }
    Ok(Decision::Allowed {
        guild: Some(guild),
        grants: PublishGrants {
            audio: permissions.has(Permissions::SPEAK),
            video: permissions.has(Permissions::STREAM),
        },
    })
}

fn refused(code: ErrorCode, message: impl Into<String>) -> Reply<VoiceAnswer> {
    Reply::Ok(VoiceAnswer::Refused {
        code,
        message: message.into(),
    })
}

/// A session's op 4, or its end.
pub async fn request(state: &AppState, request: VoiceRequest) -> Reply<VoiceAnswer> {
    match answer(state, request).await {
        Ok(reply) => reply,
        Err(e) => {
            tracing::warn!(error = %e, "cannot record a voice state");
            Reply::Failed("the database did not answer".to_owned())
        }
    }
}

async fn answer(
    state: &AppState,
    request: VoiceRequest,
) -> Result<Reply<VoiceAnswer>, sqlx::Error> {
    let user = request.user_id;
    let update = &request.update;
    let channel = match update.channel_id {
        Some(channel) if !request.ended => channel,
        _ => {
            // Leaving (or the connection ended): only what this connection joined.
            if let Some(gone) = delete(&state.db, user, Some(&request.session_id), None).await? {
                announce_left(state, &gone).await;
            }
            return Ok(Reply::Ok(VoiceAnswer::Updated));
        }
    };
    let Some(livekit) = state.livekit.clone() else {
        return Ok(refused(
            ErrorCode::ServiceUnavailable,
            "voice is not set up on this server (no media server configured)",
        ));
    };
    let mut tx = state.db.begin().await?;
    let (guild, grants) = match decide(&mut tx, user, update.guild_id, channel).await? {
        Decision::Unknown => {
            return Ok(refused(
                ErrorCode::NotFound,
                "unknown voice channel (or you cannot see it)",
            ));
        }
        Decision::Missing(permission) => {
            return Ok(refused(
                ErrorCode::Forbidden,
                format!("missing permission {permission}: you may not join this voice channel"),
            ));
        }
        Decision::Allowed { guild, grants } => (guild, grants),
    };
    let before = lock_of(&mut tx, user).await?.map(VoiceState::from);
    let same_place = before
        .as_ref()
        .is_some_and(|b| b.channel_id == Some(channel));
    let same_connection = same_place
        && before
            .as_ref()
            .is_some_and(|b| b.session_id == request.session_id);
    // A server mute or deafen stays while the member stays in the server's channels.
    let (mute, deaf) = match &before {
        Some(b) if b.guild_id.is_some() && b.guild_id == guild => (b.mute, b.deaf),
        _ => (false, false),
    };
    let now = VoiceState {
        guild_id: guild,
        channel_id: Some(channel),
        user_id: user,
        session_id: request.session_id.clone(),
        self_mute: update.self_mute,
        self_deaf: update.self_deaf,
        self_video: update.self_video && grants.video,
        self_stream: update.self_stream && grants.video,
        mute,
        deaf,
    };
    upsert(&mut tx, &now).await?;
    tx.commit().await?;
    // Moved (or joined from another connection): the old place hears that they left it.
    if let Some(before) = before.filter(|_| !same_place) {
        announce_left(state, &before).await;
    }
    publish(state, &now, channel).await;
    state.events.flush().await;
    if guild.is_none()
        && !same_place
        && let Err(e) = crate::calls::joined(state, channel, user).await
    {
        tracing::warn!(error = %e, "cannot record a call's ringing");
    }
    if same_connection {
        return Ok(Reply::Ok(VoiceAnswer::Updated));
    }
    let grants = PublishGrants {
        audio: grants.audio && !mute,
        ..grants
    };
    let token = livekit.join_token(
        &user.to_string(),
        &request.session_id,
        &room_name(channel),
        grants,
        deaf,
    );
    Ok(Reply::Ok(VoiceAnswer::Joined(VoiceServerUpdate {
        token,
        endpoint: livekit.public_url().to_owned(),
        guild_id: guild,
        channel_id: channel,
    })))
}

/// LiveKit said a participant left a room: their voice state goes, if it is still the one that
/// connection made (a person who moved, or joined again elsewhere, keeps their new state).
pub async fn participant_left(
    state: &AppState,
    room: &str,
    identity: &str,
    session: &str,
) -> Result<(), sqlx::Error> {
    let (Ok(user), Ok(channel)) = (identity.parse::<Snowflake>(), room.parse::<Snowflake>()) else {
        return Ok(());
    };
    let session = (!session.is_empty()).then_some(session);
    if let Some(gone) = delete(&state.db, user, session, Some(channel)).await? {
        publish_left(state, &gone, channel).await;
    }
    Ok(())
}

/// Takes a member out of their server voice channel (a moderator's disconnect, or they lost
/// CONNECT there): the state goes and so does their media connection.
pub async fn disconnect(
    state: &AppState,
    guild: Snowflake,
    user: Snowflake,
) -> Result<(), sqlx::Error> {
    let Some(voice) = of_user(&state.db, user).await? else {
        return Ok(());
    };
    if voice.guild_id != Some(guild) {
        return Ok(());
    }
    if let Some(gone) = delete(&state.db, user, Some(&voice.session_id), voice.channel_id).await? {
        announce_left(state, &gone).await;
    }
    Ok(())
}

/// Applies a server mute or deafen to the member's media connection at once.
pub async fn apply_moderation(state: &AppState, voice: &VoiceState) {
    let (Some(livekit), Some(channel), Some(guild)) =
        (&state.livekit, voice.channel_id, voice.guild_id)
    else {
        return;
    };
    let video = {
        let read = async {
            let mut conn = state.db.acquire().await?;
            decide(&mut conn, voice.user_id, Some(guild), channel).await
        };
        match read.await {
            Ok(Decision::Allowed { grants, .. }) => grants,
            Ok(_) => PublishGrants::default(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a member's voice permissions");
                PublishGrants::default()
            }
        }
    };
    let grants = PublishGrants {
        audio: video.audio && !voice.mute,
        video: video.video,
    };
    if let Err(e) = livekit
        .restrict(
            &room_name(channel),
            &voice.user_id.to_string(),
            grants,
            voice.deaf,
        )
        .await
    {
        tracing::warn!(error = %e, "cannot apply a server mute or deafen");
    }
    publish(state, voice, channel).await;
}

/// A moderator's change of someone's voice state, recorded, to be applied once committed.
#[derive(Debug)]
pub struct Moderated {
    before: VoiceState,
    /// `None`: disconnected.
    after: Option<VoiceState>,
    /// What they may publish where they are after.
    grants: PublishGrants,
}

impl Moderated {
    /// What changed, for the audit log (Discord records a server mute or deafen as a member
    /// update; a move or disconnect as the channel they are in).
    pub fn changes(&self) -> Vec<Option<proto::api::audit::AuditLogChange>> {
        use proto::api::audit::AuditLogChange;
        let after = self.after.as_ref();
        vec![
            AuditLogChange::of("mute", Some(self.before.mute), after.map(|a| a.mute)),
            AuditLogChange::of("deaf", Some(self.before.deaf), after.map(|a| a.deaf)),
            AuditLogChange::of(
                "channel_id",
                self.before.channel_id,
                after.and_then(|a| a.channel_id),
            ),
        ]
    }
}

/// Records a server mute, deafen, move or disconnect of `user` (the caller's permissions
/// checked): `Err` names the field and why it cannot be done.
pub async fn moderate(
    tx: &mut PgConnection,
    guild: Snowflake,
    user: Snowflake,
    changes: &proto::api::guilds::MemberChanges,
) -> Result<Result<Moderated, (&'static str, String)>, sqlx::Error> {
    let field = if changes.channel_id.is_some() {
        "channel_id"
    } else if changes.mute.is_some() {
        "mute"
    } else {
        "deaf"
    };
    let Some(before) = lock_of(tx, user)
        .await?
        .map(VoiceState::from)
        .filter(|v| v.guild_id == Some(guild))
    else {
        return Ok(Err((
            field,
            "the member is not in a voice channel of this server".to_owned(),
        )));
    };
    let mut after = VoiceState {
        mute: changes.mute.unwrap_or(before.mute),
        deaf: changes.deaf.unwrap_or(before.deaf),
        ..before.clone()
    };
    let channel = match changes.channel_id {
        Some(None) => {
            delete(&mut *tx, user, None, None).await?;
            return Ok(Ok(Moderated {
                before,
                after: None,
                grants: PublishGrants::default(),
            }));
        }
        Some(Some(channel)) => channel,
        None => before.channel_id.expect("a stored state has a channel"),
    };
    let grants = match decide(tx, user, Some(guild), channel).await? {
        Decision::Allowed { grants, .. } => grants,
        Decision::Unknown if changes.channel_id.is_some() => {
            return Ok(Err((
                "channel_id",
                "not a voice channel of this server".to_owned(),
            )));
        }
        Decision::Missing(permission) if changes.channel_id.is_some() => {
            return Ok(Err((
                "channel_id",
                format!("the member may not join that channel (missing permission {permission})"),
            )));
        }
        _ => PublishGrants::default(),
    };
    after.channel_id = Some(channel);
    upsert(tx, &after).await?;
    Ok(Ok(Moderated {
        before,
        after: Some(after),
        grants,
    }))
}

/// Applies a committed [`Moderated`]: everyone is told, and LiveKit follows at once (the person
/// taken out of the room, restricted in it, or handed the new room's token through their inbox).
pub async fn moderated(state: &AppState, guild: Snowflake, change: Moderated) {
    let Moderated {
        before,
        after,
        grants,
    } = change;
    let Some(after) = after else {
        announce_left(state, &before).await;
        return;
    };
    let channel = after.channel_id.expect("a moved state has a channel");
    if before.channel_id == Some(channel) {
        apply_moderation(state, &after).await;
        return;
    }
    announce_left(state, &before).await;
    publish(state, &after, channel).await;
    let Some(livekit) = &state.livekit else {
        return;
    };
    let grants = PublishGrants {
        audio: grants.audio && !after.mute,
        ..grants
    };
    let token = livekit.join_token(
        &after.user_id.to_string(),
        &after.session_id,
        &room_name(channel),
        grants,
        after.deaf,
    );
    let server = Event::VoiceServerUpdate(VoiceServerUpdate {
        token,
        endpoint: livekit.public_url().to_owned(),
        guild_id: Some(guild),
        channel_id: channel,
    });
    state.events.publish(&server, &[after.user_id], None).await;
}

/// Every `every`, checks the voice states at least `every` old against LiveKit's rooms, and
/// clears those whose person is not in the room: what webhooks miss (none configured, one lost,
/// an edge that died with its sessions, a client that never connected its media) is gone within
/// two intervals. A room LiveKit cannot list is left alone.
pub async fn reconcile(
    state: AppState,
    every: std::time::Duration,
    shutdown: kit::lifecycle::Shutdown,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = reconcile_once(&state, every).await {
            tracing::warn!(error = %e, "cannot check voice states against the media server");
        }
    }
}

async fn reconcile_once(
    state: &AppState,
    older_than: std::time::Duration,
) -> Result<(), sqlx::Error> {
    let Some(livekit) = &state.livekit else {
        return Ok(());
    };
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM voice_states
         WHERE joined_at < now() - make_interval(secs => $1) ORDER BY channel_id"
    )))
    .bind(older_than.as_secs_f64())
    .fetch_all(&state.db)
    .await?;
    let mut by_room: std::collections::BTreeMap<i64, Vec<VoiceState>> = Default::default();
    for row in rows {
        by_room
            .entry(row.channel_id)
            .or_default()
            .push(VoiceState::from(row));
    }
    for (channel, states) in by_room {
        let channel = Snowflake::from_i64(channel);
        let present = match livekit.participants(&room_name(channel)).await {
            Ok(participants) => participants,
            Err(e) => {
                tracing::debug!(error = %e, %channel, "cannot list a room");
                continue;
            }
        };
        for voice in states {
            let identity = voice.user_id.to_string();
            if present.iter().any(|p| p.identity == identity) {
                continue;
            }
            if let Some(gone) = delete(
                &state.db,
                voice.user_id,
                Some(&voice.session_id),
                Some(channel),
            )
            .await?
            {
                publish_left(state, &gone, channel).await;
            }
        }
    }
    Ok(())
}
