//! `/api/v1/guilds`, `/api/v1/guilds/{id}` and `/api/v1/users/@me/guilds`: servers themselves
//! (create, read, rename, give away, delete, leave), and what every server route shares: where
//! the caller stands ([`standing`]) and the checks of what they may do ([`require`]).
//!
//! Someone who is not in a server (never joined, left, kicked or banned) gets 404 for it, exactly
//! as for a server that does not exist. A member without the permission a route needs gets 403
//! `forbidden` naming it, or 403 `timed_out` while timed out (a time-out leaves only VIEW_CHANNEL
//! and READ_MESSAGE_HISTORY). The per-route table is docs/API.md, "Servers".

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kit::error::{ApiError, ApiResult};
use kit::extract::{ApiJson, ApiPath, AuditLogReason};
use proto::Snowflake;
use proto::api::audit::{AuditLogChange, AuditLogEntry, AuditLogEvent};
use proto::api::channels::Channel;
use proto::api::error::{ErrorBody, ErrorCode};
use proto::api::guilds::{CreateGuildRequest, Guild, UpdateGuildRequest, UserGuild};
use proto::events::{Event, GuildMemberRemove, GuildRef, GuildRemoval};
use proto::permissions::Permissions;
use sqlx::PgConnection;

use crate::audit::{self, Record};
use crate::extract::Caller;
use crate::guilds::{self, Standing};
use crate::state::AppState;
use crate::{guild_members, quotas};

/// Where the caller stands in `guild`, or 404 (no such server, or not theirs). With `lock`, the
/// server's row stays locked until the transaction ends: every change holds it.
pub(crate) async fn standing(
    conn: &mut PgConnection,
    guild: Snowflake,
    caller: &Caller,
    lock: bool,
) -> ApiResult<Standing> {
    guilds::standing(conn, guild, caller.user_id, lock)
        .await?
        .ok_or_else(|| ApiError::not_found("server"))
}

/// Refuses unless `granted` holds all of `needed`: 403 `timed_out` when a time-out took it away,
/// else 403 `forbidden` naming what is missing.
pub(crate) fn require_in(
    standing: &Standing,
    granted: Permissions,
    needed: Permissions,
) -> ApiResult<()> {
    if granted.has(needed) {
        return Ok(());
    }
    if let Some(until) = standing
        .member
        .communication_disabled_until
        .filter(|until| *until > standing.now_ms)
    {
        return Err(ApiError::new(
            ErrorCode::TimedOut,
            format!(
                "you are timed out until {}: you may read, not send or change anything",
                moment(until)
            ),
        ));
    }
    Err(ApiError::forbidden(format!(
        "you need the {} permission",
        (needed - granted).names().join(" and ")
    )))
}

/// [`require_in`] the server as a whole.
pub(crate) fn require(standing: &Standing, needed: Permissions) -> ApiResult<()> {
    require_in(standing, standing.permissions(), needed)
}

/// A channel of the server the caller may view, or 404 (as one that does not exist).
pub(crate) fn visible<'a>(
    standing: &Standing,
    channels: &'a [Channel],
    id: Snowflake,
) -> ApiResult<&'a Channel> {
    channels
        .iter()
        .find(|c| c.id == id && standing.in_channel(c).has(Permissions::VIEW_CHANNEL))
        .ok_or_else(|| ApiError::not_found("channel"))
}

/// A moment (Unix milliseconds) as people read it: RFC 3339 in UTC.
pub(crate) fn moment(unix_ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Writes an audit entry in the change's transaction.
pub(crate) async fn record(
    state: &AppState,
    tx: &mut PgConnection,
    record: Record,
) -> ApiResult<AuditLogEntry> {
    Ok(audit::record(tx, state.ids.next_id(), record).await?)
}

/// Publishes a server's events and its new audit entries, in that order, once committed.
pub(crate) async fn publish(
    state: &AppState,
    guild: Snowflake,
    events: Vec<Event>,
    entries: Vec<AuditLogEntry>,
) {
    for event in events {
        state.events.guild(&event, guild, &[]).await;
    }
    for entry in entries {
        let event = Event::GuildAuditLogEntryCreate(entry);
        state.events.guild(&event, guild, &[]).await;
    }
    state.events.flush().await;
}

/// A refusal by one of the server limits.
pub(crate) fn limit_reached(what: &str, limit: u32) -> ApiError {
    ApiError::new(
        ErrorCode::LimitReached,
        format!("the server has {limit} {what}, the most it may have"),
    )
}

/// Create a server: you own it. It starts with @everyone and a text channel `general`.
#[utoipa::path(post, path = "/api/v1/guilds", operation_id = "create_guild", tag = "guilds", security(("bearer" = [])),
    request_body = CreateGuildRequest,
    responses((status = 201, body = UserGuild), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, description = "You are in as many servers as one may be (`guild_limit_reached`)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateGuildRequest>,
) -> ApiResult<(StatusCode, Json<UserGuild>)> {
    let new = request.parse()?;
    if new.icon.is_some() {
        return Err(ApiError::field(
            "icon",
            "upload the icon once the server exists (PUT /api/v1/guilds/{id}/icon on media)",
        ));
    }
    let id = state.ids.next_id();
    let limit = state.settings.quotas.guild_limit;
    let mut tx = state.db.begin().await?;
    quotas::lock_users(&mut tx, &[caller.user_id]).await?;
    if guilds::count_of(&mut tx, caller.user_id).await? >= limit {
        return Err(guild_limit(limit));
    }
    guilds::create(&mut tx, id, caller.user_id, &new, state.ids.next_id()).await?;
    tx.commit().await?;
    let mut conn = state.db.acquire().await?;
    let guild = guilds::seen_by(&mut conn, id, caller.user_id)
        .await?
        .ok_or_else(|| ApiError::internal("a server just made is gone"))?;
    let event = Event::GuildCreate(guild.clone());
    state.events.publish(&event, &[caller.user_id], None).await;
    state.events.flush().await;
    Ok((StatusCode::CREATED, Json(guild)))
}

pub(crate) fn guild_limit(limit: u32) -> ApiError {
    ApiError::new(
        ErrorCode::GuildLimitReached,
        format!("you are in {limit} servers, the most one may be in; leave one first"),
    )
}

/// A server I am in, as I see it: its roles, the channels I may view, my member object.
#[utoipa::path(get, path = "/api/v1/guilds/{id}", operation_id = "get_guild", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = UserGuild), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Snowflake>,
) -> ApiResult<Json<UserGuild>> {
    let mut conn = state.db.acquire().await?;
    guilds::seen_by(&mut conn, id, caller.user_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("server"))
}

/// The servers I am in.
#[utoipa::path(get, path = "/api/v1/users/@me/guilds", operation_id = "my_guilds", tag = "guilds", security(("bearer" = [])),
    responses((status = 200, body = Vec<Guild>), (status = 401, body = ErrorBody)))]
pub async fn mine(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Guild>>> {
    Ok(Json(guilds::of_user(&state.db, caller.user_id).await?))
}

/// Rename a server or change its icon (MANAGE_GUILD), or give it to another member (the owner).
#[utoipa::path(patch, path = "/api/v1/guilds/{id}", operation_id = "update_guild", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path), ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why (percent-encoded, at most 512 characters), for the audit log")),
    request_body = UpdateGuildRequest,
    responses((status = 200, body = Guild), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Snowflake>,
    AuditLogReason(reason): AuditLogReason,
    ApiJson(request): ApiJson<UpdateGuildRequest>,
) -> ApiResult<Json<Guild>> {
    let changes = request.parse()?;
    if let Some(Some(icon)) = &changes.icon {
        state
            .settings
            .media_image(icon.as_str(), "icons", id, "icon")?;
    }
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, id, &caller, true).await?;
    if changes.name.is_some() || changes.icon.is_some() {
        require(&standing, Permissions::MANAGE_GUILD)?;
    }
    if let Some(owner) = changes.owner_id {
        if !standing.is_owner() {
            return Err(ApiError::forbidden(
                "only the owner can give the server away",
            ));
        }
        if guild_members::one(&mut *tx, id, owner).await?.is_none() {
            return Err(ApiError::field("owner_id", "is not a member of the server"));
        }
    }
    let before = standing.guild.clone();
    let after = guilds::update(&mut tx, id, &changes, changes.owner_id).await?;
    let entry = record(
        &state,
        &mut tx,
        Record::new(id, caller.user_id, AuditLogEvent::GuildUpdate, Some(id))
            .changes([
                AuditLogChange::of("name", Some(&before.name), Some(&after.name)),
                AuditLogChange::of("icon", before.icon.as_ref(), after.icon.as_ref()),
                AuditLogChange::of("owner_id", Some(before.owner_id), Some(after.owner_id)),
            ])
            .reason(reason),
    )
    .await?;
    let count = guilds::member_count(&mut *tx, id).await?;
    tx.commit().await?;
    let guild = after.with_count(count);
    publish(
        &state,
        id,
        vec![Event::GuildUpdate(guild.clone())],
        vec![entry],
    )
    .await;
    Ok(Json(guild))
}

/// Delete a server (the owner only): its channels, roles, invites, bans and audit log go too.
#[utoipa::path(delete, path = "/api/v1/guilds/{id}", operation_id = "delete_guild", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Snowflake>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, id, &caller, true).await?;
    if !standing.is_owner() {
        return Err(ApiError::forbidden("only the owner can delete the server"));
    }
    let members = guilds::member_ids(&mut *tx, id).await?;
    let channels: Vec<Snowflake> = crate::guild_channels::all(&mut tx, id, 0)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    guilds::delete(&mut tx, id).await?;
    tx.commit().await?;
    let event = Event::GuildDelete(GuildRef {
        id,
        removal: Some(GuildRemoval::Deleted),
    });
    state.events.guild(&event, id, &members).await;
    state.events.forget_files(&channels).await;
    state.events.flush().await;
    Ok(StatusCode::NO_CONTENT)
}

/// Leave a server. The owner cannot: give it away (`PATCH /api/v1/guilds/{id}` with `owner_id`)
/// or delete it.
#[utoipa::path(delete, path = "/api/v1/users/@me/guilds/{id}", operation_id = "leave_guild", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody),
              (status = 403, description = "The owner cannot leave", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn leave(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Snowflake>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, id, &caller, true).await?;
    if standing.is_owner() {
        return Err(ApiError::forbidden(
            "the owner cannot leave; give the server to someone else or delete it",
        ));
    }
    guild_members::remove(&mut tx, id, caller.user_id).await?;
    tx.commit().await?;
    gone(&state, id, standing.member.user.clone(), GuildRemoval::Left).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Tells everyone a member is gone from a server (they left, or were kicked or banned): the
/// server's subject gets GUILD_MEMBER_REMOVE, and their own sessions GUILD_DELETE saying why.
pub(crate) async fn gone(
    state: &AppState,
    guild: Snowflake,
    user: proto::api::users::User,
    removal: GuildRemoval,
) {
    let user_id = user.id;
    let removed = Event::GuildMemberRemove(GuildMemberRemove {
        guild_id: guild,
        user,
    });
    state.events.guild(&removed, guild, &[]).await;
    let deleted = Event::GuildDelete(GuildRef {
        id: guild,
        removal: Some(removal),
    });
    state.events.publish(&deleted, &[user_id], None).await;
    state.events.flush().await;
}
