//! A server's channels: `GET|POST|PATCH /api/v1/guilds/{id}/channels` (PATCH reorders),
//! `GET|PATCH|DELETE /api/v1/channels/{id}` for a server's channel (`super::channels` hands them
//! here), and `PUT|DELETE /api/v1/channels/{id}/permissions/{overwrite_id}`.
//!
//! A channel the caller may not view answers 404, exactly as one that does not exist. Changing
//! channels takes MANAGE_CHANNELS (in that channel, for one channel); overwrites take MANAGE_ROLES
//! in the channel, and nobody may allow or deny a permission they do not have there themselves.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kit::error::{ApiError, ApiResult};
use kit::extract::{ApiJson, ApiPath, AuditLogReason};
use proto::Snowflake;
use proto::api::audit::{AuditEntryInfo, AuditLogChange, AuditLogEvent};
use proto::api::channels::{Channel, ChannelKind, UpdateChannelRequest};
use proto::api::error::ErrorBody;
use proto::api::guilds::{
    ChannelPositionRequest, CreateGuildChannelRequest, MAX_OVERWRITES, OverwriteRequest,
    parse_positions,
};
use proto::events::{ChannelRef, Event};
use proto::permissions::{Overwrite, OverwriteType, Permissions};
use sqlx::PgConnection;

use super::guilds::{limit_reached, publish, record, require, require_in, standing, visible};
use crate::audit::Record;
use crate::extract::Caller;
use crate::guilds::{self, Standing};
use crate::state::AppState;
use crate::{guild_channels, guild_members};

/// Every channel of the server, and its member count.
async fn channels_of(conn: &mut PgConnection, guild: Snowflake) -> ApiResult<Vec<Channel>> {
    let count = guilds::member_count(&mut *conn, guild).await?;
    Ok(guild_channels::all(conn, guild, count).await?)
}

/// A channel as the caller sees it: with what they may do in it.
fn as_seen(standing: &Standing, channel: &Channel) -> Channel {
    Channel {
        permissions: Some(standing.in_channel(channel)),
        ..channel.clone()
    }
}

/// The channels of a server I may view, categories included, in list order.
#[utoipa::path(get, path = "/api/v1/guilds/{id}/channels", operation_id = "list_guild_channels", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<Channel>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(guild): ApiPath<Snowflake>,
) -> ApiResult<Json<Vec<Channel>>> {
    let mut conn = state.db.acquire().await?;
    let standing = standing(&mut conn, guild, &caller, false).await?;
    let channels = channels_of(&mut conn, guild).await?;
    Ok(Json(
        channels
            .iter()
            .filter(|c| standing.in_channel(c).has(Permissions::VIEW_CHANNEL))
            .map(|c| as_seen(&standing, c))
            .collect(),
    ))
}

/// Checks the overwrites the caller asks for: each names a role of the server or one of its
/// members, and allows or denies only what the caller may do in the channel.
async fn check_overwrites(
    tx: &mut PgConnection,
    standing: &Standing,
    mine: Permissions,
    overwrites: &[Overwrite],
) -> ApiResult<()> {
    for overwrite in overwrites {
        let exists = match overwrite.kind {
            OverwriteType::Role => standing.role(overwrite.id).is_some(),
            OverwriteType::Member => guild_members::one(&mut *tx, standing.guild.id, overwrite.id)
                .await?
                .is_some(),
        };
        if !exists {
            return Err(ApiError::not_found(match overwrite.kind {
                OverwriteType::Role => "role",
                OverwriteType::Member => "member",
            }));
        }
        let lacking = standing
            .rank()
            .may_not_grant(mine, overwrite.allow | overwrite.deny);
        if !lacking.is_empty() {
            return Err(ApiError::forbidden(format!(
                "you cannot allow or deny what you may not do yourself: {}",
                lacking.names().join(", ")
            )));
        }
    }
    Ok(())
}

/// A category of this server, or a field error naming `field`.
fn category(channels: &[Channel], id: Snowflake, field: &str) -> ApiResult<()> {
    match channels.iter().find(|c| c.id == id) {
        Some(c) if c.kind == ChannelKind::Category => Ok(()),
        _ => Err(ApiError::field(field, "is not a category of this server")),
    }
}

/// Create a channel (MANAGE_CHANNELS; overwrites also MANAGE_ROLES): text unless `kind` says
/// voice or category.
#[utoipa::path(post, path = "/api/v1/guilds/{id}/channels", operation_id = "create_guild_channel", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path), ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    request_body = CreateGuildChannelRequest,
    responses((status = 201, body = Channel), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "The server has as many channels as it may (`limit_reached`)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(guild): ApiPath<Snowflake>,
    AuditLogReason(reason): AuditLogReason,
    ApiJson(request): ApiJson<CreateGuildChannelRequest>,
) -> ApiResult<(StatusCode, Json<Channel>)> {
    let new = request.parse()?;
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, &caller, true).await?;
    require(&standing, Permissions::MANAGE_CHANNELS)?;
    let channels = channels_of(&mut tx, guild).await?;
    if let Some(parent) = new.parent_id {
        category(&channels, parent, "parent_id")?;
    }
    if !new.overwrites.is_empty() {
        require(&standing, Permissions::MANAGE_ROLES)?;
        check_overwrites(&mut tx, &standing, standing.permissions(), &new.overwrites).await?;
    }
    let limit = state.settings.quotas.guild_channel_limit;
    if guild_channels::count(&mut tx, guild).await? >= limit {
        return Err(limit_reached("channels", limit));
    }
    let id = state.ids.next_id();
    guild_channels::create(&mut tx, id, guild, &new).await?;
    let entry = record(
        &state,
        &mut tx,
        Record::new(
            guild,
            caller.user_id,
            AuditLogEvent::ChannelCreate,
            Some(id),
        )
        .changes([
            AuditLogChange::of("name", None, Some(new.name.as_str())),
            AuditLogChange::of("kind", None, Some(new.kind.as_str())),
        ])
        .reason(reason),
    )
    .await?;
    let count = guilds::member_count(&mut *tx, guild).await?;
    let channel = guild_channels::one(&mut tx, id, count)
        .await?
        .ok_or_else(|| ApiError::internal("a channel just made is gone"))?;
    tx.commit().await?;
    let seen = as_seen(&standing, &channel);
    publish(
        &state,
        guild,
        vec![Event::ChannelCreate(channel.into())],
        vec![entry],
    )
    .await;
    Ok((StatusCode::CREATED, Json(seen)))
}

/// Reorder channels and move them between categories (MANAGE_CHANNELS): each entry is a channel
/// of the server with its new `position` and, optionally, `parent_id`.
#[utoipa::path(patch, path = "/api/v1/guilds/{id}/channels", operation_id = "reorder_guild_channels", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path), ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    request_body = Vec<ChannelPositionRequest>,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reorder(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(guild): ApiPath<Snowflake>,
    AuditLogReason(reason): AuditLogReason,
    ApiJson(request): ApiJson<Vec<ChannelPositionRequest>>,
) -> ApiResult<StatusCode> {
    let positions = parse_positions(&request)?;
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, &caller, true).await?;
    require(&standing, Permissions::MANAGE_CHANNELS)?;
    let before = channels_of(&mut tx, guild).await?;
    for (i, entry) in positions.iter().enumerate() {
        let Some(channel) = before.iter().find(|c| c.id == entry.id) else {
            return Err(ApiError::field(
                &format!("[{i}].id"),
                "is not a channel of this server",
            ));
        };
        if let Some(Some(parent)) = entry.parent_id {
            if channel.kind == ChannelKind::Category {
                return Err(ApiError::field(
                    &format!("[{i}].parent_id"),
                    "a category cannot be in another category",
                ));
            }
            category(&before, parent, &format!("[{i}].parent_id"))?;
        }
    }
    guild_channels::reorder(&mut tx, &positions).await?;
    let after = channels_of(&mut tx, guild).await?;
    let mut events = Vec::new();
    let mut entries = Vec::new();
    for channel in &after {
        let Some(old) = before.iter().find(|c| c.id == channel.id) else {
            continue;
        };
        if old == channel {
            continue;
        }
        entries.push(
            record(
                &state,
                &mut tx,
                Record::new(
                    guild,
                    caller.user_id,
                    AuditLogEvent::ChannelUpdate,
                    Some(channel.id),
                )
                .changes([
                    AuditLogChange::of("position", old.position, channel.position),
                    AuditLogChange::of("parent_id", old.parent_id, channel.parent_id),
                ])
                .reason(reason.clone()),
            )
            .await?,
        );
        events.push(Event::ChannelUpdate(channel.clone()));
    }
    tx.commit().await?;
    publish(&state, guild, events, entries).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/channels/{id}` of a server's channel: as the caller sees it, with what they may
/// do in it (`permissions`).
pub(crate) async fn get(
    state: &AppState,
    caller: &Caller,
    guild: Snowflake,
    id: Snowflake,
) -> ApiResult<Channel> {
    let mut conn = state.db.acquire().await?;
    let standing = standing(&mut conn, guild, caller, false).await?;
    // The one channel, not the server's every channel: edges ask this on every request.
    let count = guilds::member_count(&mut *conn, guild).await?;
    let channel = guild_channels::one(&mut conn, id, count)
        .await?
        .filter(|c| c.guild_id == Some(guild));
    Ok(as_seen(
        &standing,
        visible(&standing, channel.as_slice(), id)?,
    ))
}

/// `PATCH /api/v1/channels/{id}` of a server's channel (MANAGE_CHANNELS in it).
pub(crate) async fn update(
    state: &AppState,
    caller: &Caller,
    guild: Snowflake,
    id: Snowflake,
    request: &UpdateChannelRequest,
    AuditLogReason(reason): AuditLogReason,
) -> ApiResult<Channel> {
    let changes = request.parse()?;
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, caller, true).await?;
    let channels = channels_of(&mut tx, guild).await?;
    let before = visible(&standing, &channels, id)?.clone();
    require_in(
        &standing,
        standing.in_channel(&before),
        Permissions::MANAGE_CHANNELS,
    )?;
    if let Some(Some(parent)) = changes.parent_id {
        if before.kind == ChannelKind::Category {
            return Err(ApiError::field(
                "parent_id",
                "a category cannot be in another category",
            ));
        }
        category(&channels, parent, "parent_id")?;
    }
    guild_channels::update(&mut tx, id, &changes).await?;
    let count = guilds::member_count(&mut *tx, guild).await?;
    let after = guild_channels::one(&mut tx, id, count)
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))?;
    let entry = record(
        state,
        &mut tx,
        Record::new(
            guild,
            caller.user_id,
            AuditLogEvent::ChannelUpdate,
            Some(id),
        )
        .changes([
            AuditLogChange::of("name", before.name.as_ref(), after.name.as_ref()),
            AuditLogChange::of("topic", before.topic.as_ref(), after.topic.as_ref()),
            AuditLogChange::of(
                "rate_limit_per_user",
                before.rate_limit_per_user,
                after.rate_limit_per_user,
            ),
            AuditLogChange::of("parent_id", before.parent_id, after.parent_id),
            AuditLogChange::of("position", before.position, after.position),
        ])
        .reason(reason),
    )
    .await?;
    tx.commit().await?;
    let seen = as_seen(&standing, &after);
    publish(state, guild, vec![Event::ChannelUpdate(after)], vec![entry]).await;
    Ok(seen)
}

/// `DELETE /api/v1/channels/{id}` of a server's channel (MANAGE_CHANNELS in it).
pub(crate) async fn delete(
    state: &AppState,
    caller: &Caller,
    guild: Snowflake,
    id: Snowflake,
    AuditLogReason(reason): AuditLogReason,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, caller, true).await?;
    let channels = channels_of(&mut tx, guild).await?;
    let channel = visible(&standing, &channels, id)?;
    require_in(
        &standing,
        standing.in_channel(channel),
        Permissions::MANAGE_CHANNELS,
    )?;
    guild_channels::delete(&mut tx, id).await?;
    let entry = record(
        state,
        &mut tx,
        Record::new(
            guild,
            caller.user_id,
            AuditLogEvent::ChannelDelete,
            Some(id),
        )
        .changes([AuditLogChange::of("name", channel.name.as_ref(), None)])
        .reason(reason),
    )
    .await?;
    tx.commit().await?;
    let event = Event::ChannelDelete(ChannelRef {
        channel_id: id,
        guild_id: Some(guild),
    });
    publish(state, guild, vec![event], vec![entry]).await;
    state.events.forget_files(&[id]).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The server a channel belongs to, or 404 (not a server's channel).
async fn guild_of(state: &AppState, channel: Snowflake) -> ApiResult<Snowflake> {
    guild_channels::guild_of(&state.db, channel)
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))
}

/// Set a channel's overwrite for a role (`type` 0) or member (`type` 1): MANAGE_ROLES in the
/// channel, and only permissions you have there yourself.
#[utoipa::path(put, path = "/api/v1/channels/{id}/permissions/{overwrite_id}", operation_id = "set_overwrite", tag = "guilds",
    security(("bearer" = [])),
    params(("id" = String, Path), ("overwrite_id" = String, Path, description = "A role's id (the server's for @everyone) or a member's user id"),
           ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    request_body = OverwriteRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_overwrite(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, target)): ApiPath<(Snowflake, Snowflake)>,
    AuditLogReason(reason): AuditLogReason,
    ApiJson(request): ApiJson<OverwriteRequest>,
) -> ApiResult<StatusCode> {
    let overwrite = request.parse(Some(target))?;
    let guild = guild_of(&state, id).await?;
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, &caller, true).await?;
    let channels = channels_of(&mut tx, guild).await?;
    let channel = visible(&standing, &channels, id)?.clone();
    let mine = standing.in_channel(&channel);
    require_in(&standing, mine, Permissions::MANAGE_ROLES)?;
    check_overwrites(&mut tx, &standing, mine, &[overwrite]).await?;
    let is_new = !channel.permission_overwrites.iter().any(|o| o.id == target);
    if is_new && channel.permission_overwrites.len() >= MAX_OVERWRITES {
        return Err(limit_reached(
            "overwrites on this channel",
            MAX_OVERWRITES as u32,
        ));
    }
    let before = guild_channels::set_overwrite(&mut tx, id, &overwrite).await?;
    let action = if before.is_some() {
        AuditLogEvent::ChannelOverwriteUpdate
    } else {
        AuditLogEvent::ChannelOverwriteCreate
    };
    let entry = overwrite_entry(
        &state,
        &mut tx,
        &caller,
        guild,
        id,
        action,
        before,
        Some(overwrite),
        reason,
    )
    .await?;
    changed(&state, tx, guild, id, entry).await
}

/// Delete a channel's overwrite for a role or member: MANAGE_ROLES in the channel, and only one
/// that allows or denies what you may do there yourself.
#[utoipa::path(delete, path = "/api/v1/channels/{id}/permissions/{overwrite_id}", operation_id = "delete_overwrite", tag = "guilds",
    security(("bearer" = [])),
    params(("id" = String, Path), ("overwrite_id" = String, Path),
           ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_overwrite(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, target)): ApiPath<(Snowflake, Snowflake)>,
    AuditLogReason(reason): AuditLogReason,
) -> ApiResult<StatusCode> {
    let guild = guild_of(&state, id).await?;
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, &caller, true).await?;
    let channels = channels_of(&mut tx, guild).await?;
    let channel = visible(&standing, &channels, id)?.clone();
    let mine = standing.in_channel(&channel);
    require_in(&standing, mine, Permissions::MANAGE_ROLES)?;
    let Some(existing) = channel
        .permission_overwrites
        .iter()
        .find(|o| o.id == target)
    else {
        return Err(ApiError::not_found("overwrite"));
    };
    let lacking = standing
        .rank()
        .may_not_grant(mine, existing.allow | existing.deny);
    if !lacking.is_empty() {
        return Err(ApiError::forbidden(format!(
            "the overwrite allows or denies what you may not do yourself: {}",
            lacking.names().join(", ")
        )));
    }
    let before = guild_channels::delete_overwrite(&mut tx, id, target).await?;
    let entry = overwrite_entry(
        &state,
        &mut tx,
        &caller,
        guild,
        id,
        AuditLogEvent::ChannelOverwriteDelete,
        before,
        None,
        reason,
    )
    .await?;
    changed(&state, tx, guild, id, entry).await
}

#[allow(clippy::too_many_arguments)]
async fn overwrite_entry(
    state: &AppState,
    tx: &mut PgConnection,
    caller: &Caller,
    guild: Snowflake,
    channel: Snowflake,
    action: AuditLogEvent,
    before: Option<Overwrite>,
    after: Option<Overwrite>,
    reason: Option<String>,
) -> ApiResult<proto::api::audit::AuditLogEntry> {
    let target = after.or(before).map(|o| (o.id, o.kind));
    record(
        state,
        tx,
        Record::new(guild, caller.user_id, action, Some(channel))
            .changes([
                AuditLogChange::of("allow", before.map(|o| o.allow), after.map(|o| o.allow)),
                AuditLogChange::of("deny", before.map(|o| o.deny), after.map(|o| o.deny)),
            ])
            .options(AuditEntryInfo {
                channel_id: Some(channel),
                id: target.map(|(id, _)| id),
                kind: target.map(|(_, kind)| kind as u8),
                ..Default::default()
            })
            .reason(reason),
    )
    .await
}

/// Commits an overwrite change and tells the server: the channel as it is now.
async fn changed(
    state: &AppState,
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    guild: Snowflake,
    id: Snowflake,
    entry: proto::api::audit::AuditLogEntry,
) -> ApiResult<StatusCode> {
    let count = guilds::member_count(&mut *tx, guild).await?;
    let channel = guild_channels::one(&mut tx, id, count)
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))?;
    tx.commit().await?;
    publish(
        state,
        guild,
        vec![Event::ChannelUpdate(channel)],
        vec![entry],
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
