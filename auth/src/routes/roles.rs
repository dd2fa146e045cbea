//! `GET|POST /api/v1/guilds/{id}/roles` and `PATCH|DELETE /api/v1/guilds/{id}/roles/{role}`.
//!
//! Roles take MANAGE_ROLES, and the hierarchy: nobody edits or deletes a role at or above their
//! own highest (the owner is above all), moves one there, or grants a permission they lack.
//! @everyone (the server's id) may have its permissions edited, never its name or place, and is
//! never deleted.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kit::error::{ApiError, ApiResult};
use kit::extract::{ApiJson, ApiPath, AuditLogReason};
use proto::Snowflake;
use proto::api::audit::{AuditLogChange, AuditLogEvent};
use proto::api::error::ErrorBody;
use proto::api::guilds::{CreateRoleRequest, Role, UpdateRoleRequest};
use proto::events::{Event, GuildRoleEvent, GuildRoleRef};
use proto::permissions::Permissions;

use super::guilds::{limit_reached, publish, record, require, standing};
use crate::audit::Record;
use crate::extract::Caller;
use crate::guilds::Standing;
use crate::roles;
use crate::state::AppState;

/// Refuses a role the caller may not manage: at or above their highest.
fn manageable(standing: &Standing, role: Snowflake) -> ApiResult<&Role> {
    let role = standing
        .role(role)
        .ok_or_else(|| ApiError::not_found("role"))?;
    if role.id != standing.guild.id && !standing.rank().above_role(role.position) {
        return Err(ApiError::forbidden(
            "that role is at or above your highest role",
        ));
    }
    Ok(role)
}

/// Refuses permissions the caller may not hand out.
fn grantable(standing: &Standing, added: Permissions) -> ApiResult<()> {
    let lacking = standing.rank().may_not_grant(standing.permissions(), added);
    if lacking.is_empty() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "you cannot grant permissions you do not have: {}",
            lacking.names().join(", ")
        )))
    }
}

/// The events telling everyone which roles moved (every role whose position changed).
fn moved(guild: Snowflake, before: &[Role], after: &[Role], except: Snowflake) -> Vec<Event> {
    after
        .iter()
        .filter(|r| r.id != except)
        .filter(|r| {
            before
                .iter()
                .any(|b| b.id == r.id && b.position != r.position)
        })
        .map(|r| {
            Event::GuildRoleUpdate(GuildRoleEvent {
                guild_id: guild,
                role: r.clone(),
            })
        })
        .collect()
}

/// A server's roles, @everyone first, then by position.
#[utoipa::path(get, path = "/api/v1/guilds/{id}/roles", operation_id = "list_roles", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<Role>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(guild): ApiPath<Snowflake>,
) -> ApiResult<Json<Vec<Role>>> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(
        standing(&mut conn, guild, &caller, false).await?.roles,
    ))
}

/// Create a role (MANAGE_ROLES), just above @everyone, with only permissions you have.
#[utoipa::path(post, path = "/api/v1/guilds/{id}/roles", operation_id = "create_role", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path), ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    request_body = CreateRoleRequest,
    responses((status = 201, body = Role), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "The server has as many roles as it may (`limit_reached`)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(guild): ApiPath<Snowflake>,
    AuditLogReason(reason): AuditLogReason,
    ApiJson(request): ApiJson<CreateRoleRequest>,
) -> ApiResult<(StatusCode, Json<Role>)> {
    let changes = request.parse()?;
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, &caller, true).await?;
    require(&standing, Permissions::MANAGE_ROLES)?;
    grantable(&standing, changes.permissions.unwrap_or_default())?;
    let limit = state.settings.quotas.role_limit;
    if roles::count(&mut tx, guild).await? >= limit {
        return Err(limit_reached("roles", limit));
    }
    let role = roles::create(&mut tx, state.ids.next_id(), guild, &changes).await?;
    let entry = record(
        &state,
        &mut tx,
        Record::new(
            guild,
            caller.user_id,
            AuditLogEvent::RoleCreate,
            Some(role.id),
        )
        .changes([
            AuditLogChange::of("name", None, Some(&role.name)),
            AuditLogChange::of("permissions", None, Some(role.permissions)),
            AuditLogChange::of("color", None, Some(role.color)),
        ])
        .reason(reason),
    )
    .await?;
    let after = roles::all(&mut *tx, guild).await?;
    tx.commit().await?;
    let mut events = vec![Event::GuildRoleCreate(GuildRoleEvent {
        guild_id: guild,
        role: role.clone(),
    })];
    events.extend(moved(guild, &standing.roles, &after, role.id));
    publish(&state, guild, events, vec![entry]).await;
    Ok((StatusCode::CREATED, Json(role)))
}

/// Edit a role below your highest (MANAGE_ROLES): name, colour, flags, permissions (only ones you
/// have), position (below your highest).
#[utoipa::path(patch, path = "/api/v1/guilds/{id}/roles/{role}", operation_id = "update_role", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path), ("role" = String, Path),
           ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    request_body = UpdateRoleRequest,
    responses((status = 200, body = Role), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((guild, role)): ApiPath<(Snowflake, Snowflake)>,
    AuditLogReason(reason): AuditLogReason,
    ApiJson(request): ApiJson<UpdateRoleRequest>,
) -> ApiResult<Json<Role>> {
    let changes = request.parse()?;
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, &caller, true).await?;
    require(&standing, Permissions::MANAGE_ROLES)?;
    let before = manageable(&standing, role)?.clone();
    if before.id == guild && (changes.name.is_some() || changes.position.is_some()) {
        return Err(ApiError::invalid(
            "@everyone keeps its name and its place; only its permissions change",
        ));
    }
    if let Some(permissions) = changes.permissions {
        grantable(&standing, permissions - before.permissions)?;
    }
    if let Some(position) = changes.position
        && !standing.rank().above_role(position)
    {
        return Err(ApiError::forbidden(
            "a role cannot be moved to or above your highest role",
        ));
    }
    let after = roles::update(&mut tx, guild, &before, &changes).await?;
    let entry = record(
        &state,
        &mut tx,
        Record::new(guild, caller.user_id, AuditLogEvent::RoleUpdate, Some(role))
            .changes([
                AuditLogChange::of("name", Some(&before.name), Some(&after.name)),
                AuditLogChange::of(
                    "permissions",
                    Some(before.permissions),
                    Some(after.permissions),
                ),
                AuditLogChange::of("color", Some(before.color), Some(after.color)),
                AuditLogChange::of("hoist", Some(before.hoist), Some(after.hoist)),
                AuditLogChange::of(
                    "mentionable",
                    Some(before.mentionable),
                    Some(after.mentionable),
                ),
                AuditLogChange::of("position", Some(before.position), Some(after.position)),
            ])
            .reason(reason),
    )
    .await?;
    let all = roles::all(&mut *tx, guild).await?;
    tx.commit().await?;
    let mut events = vec![Event::GuildRoleUpdate(GuildRoleEvent {
        guild_id: guild,
        role: after.clone(),
    })];
    events.extend(moved(guild, &standing.roles, &all, role));
    publish(&state, guild, events, vec![entry]).await;
    Ok(Json(after))
}

/// Delete a role below your highest (MANAGE_ROLES): its members lose it, its overwrites go.
#[utoipa::path(delete, path = "/api/v1/guilds/{id}/roles/{role}", operation_id = "delete_role", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path), ("role" = String, Path),
           ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    responses((status = 204), (status = 400, description = "@everyone cannot be deleted", body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((guild, role)): ApiPath<(Snowflake, Snowflake)>,
    AuditLogReason(reason): AuditLogReason,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, &caller, true).await?;
    require(&standing, Permissions::MANAGE_ROLES)?;
    let gone = manageable(&standing, role)?.clone();
    if gone.id == guild {
        return Err(ApiError::invalid("@everyone cannot be deleted"));
    }
    let channels_touched = crate::guild_channels::with_overwrite_for(&mut tx, guild, role).await?;
    roles::delete(&mut tx, guild, &gone).await?;
    let entry = record(
        &state,
        &mut tx,
        Record::new(guild, caller.user_id, AuditLogEvent::RoleDelete, Some(role))
            .changes([
                AuditLogChange::of("name", Some(&gone.name), None),
                AuditLogChange::of("permissions", Some(gone.permissions), None),
            ])
            .reason(reason),
    )
    .await?;
    let all = roles::all(&mut *tx, guild).await?;
    let count = crate::guilds::member_count(&mut *tx, guild).await?;
    let mut events = vec![Event::GuildRoleDelete(GuildRoleRef {
        guild_id: guild,
        role_id: role,
    })];
    events.extend(moved(guild, &standing.roles, &all, role));
    // The channels whose overwrite for the role went: everyone hears them as they are now.
    for channel in channels_touched {
        if let Some(channel) = crate::guild_channels::one(&mut tx, channel, count).await? {
            events.push(Event::ChannelUpdate(channel));
        }
    }
    tx.commit().await?;
    publish(&state, guild, events, vec![entry]).await;
    Ok(StatusCode::NO_CONTENT)
}
