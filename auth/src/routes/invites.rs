//! Invites: `GET|POST /api/v1/guilds/{id}/invites`, `POST /api/v1/channels/{id}/invites`, and
//! `GET|POST|DELETE /api/v1/invites/{code}` (preview, accept, revoke).
//!
//! Creating one takes CREATE_INSTANT_INVITE (in the channel it names) and counts against
//! `--invite-create-rate`; listing and revoking take MANAGE_GUILD. Anyone with a code may preview
//! the server (name, icon, member count) without joining or signing in; accepting joins, unless
//! the user is banned (403 `banned`, whatever the invite) or in as many servers as one may be.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kit::error::{ApiError, ApiResult};
use kit::extract::{ApiJson, ApiPath, AuditLogReason};
use proto::Snowflake;
use proto::api::audit::{AuditLogChange, AuditLogEvent};
use proto::api::error::{ErrorBody, ErrorCode};
use proto::api::guilds::UserGuild;
use proto::api::invites::{CreateInviteRequest, Invite, InviteCode, InviteGuild, InvitePreview};
use proto::events::{Event, GuildMemberEvent, InviteRef};
use proto::permissions::Permissions;

use super::guilds::{guild_limit, publish, record, require, require_in, standing, visible};
use crate::audit::Record;
use crate::extract::Caller;
use crate::quotas::{self, Action};
use crate::state::AppState;
use crate::{guild_channels, guild_members, guilds, invites};

fn code_of(raw: &str) -> ApiResult<InviteCode> {
    InviteCode::parse(raw).ok_or_else(|| ApiError::not_found("invite"))
}

/// A server's live invites (MANAGE_GUILD), newest first.
#[utoipa::path(get, path = "/api/v1/guilds/{id}/invites", operation_id = "list_invites", tag = "invites", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<Invite>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(guild): ApiPath<Snowflake>,
) -> ApiResult<Json<Vec<Invite>>> {
    let mut conn = state.db.acquire().await?;
    let standing = standing(&mut conn, guild, &caller, false).await?;
    require(&standing, Permissions::MANAGE_GUILD)?;
    Ok(Json(invites::of_guild(&mut *conn, guild).await?))
}

/// Create an invite to a server (CREATE_INSTANT_INVITE), optionally landing in `channel_id`.
#[utoipa::path(post, path = "/api/v1/guilds/{id}/invites", operation_id = "create_invite", tag = "invites", security(("bearer" = [])),
    params(("id" = String, Path), ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    request_body = CreateInviteRequest,
    responses((status = 201, body = Invite), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 429, description = "You created as many invites as one may for now", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(guild): ApiPath<Snowflake>,
    reason: AuditLogReason,
    ApiJson(request): ApiJson<CreateInviteRequest>,
) -> ApiResult<(StatusCode, Json<Invite>)> {
    let new = request.parse()?;
    make(state, caller, guild, new, reason).await
}

/// Create an invite landing in one of a server's channels (CREATE_INSTANT_INVITE in it).
#[utoipa::path(post, path = "/api/v1/channels/{id}/invites", operation_id = "create_channel_invite", tag = "invites", security(("bearer" = [])),
    params(("id" = String, Path), ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    request_body = CreateInviteRequest,
    responses((status = 201, body = Invite), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, description = "No such channel of a server, or not one you may view", body = ErrorBody),
              (status = 429, body = ErrorBody)))]
pub async fn create_in_channel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(channel): ApiPath<Snowflake>,
    reason: AuditLogReason,
    ApiJson(request): ApiJson<CreateInviteRequest>,
) -> ApiResult<(StatusCode, Json<Invite>)> {
    let mut new = request.parse()?;
    if new.channel_id.is_some() {
        return Err(ApiError::field("channel_id", "the path names the channel"));
    }
    let guild = guild_channels::guild_of(&state.db, channel)
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))?;
    new.channel_id = Some(channel);
    make(state, caller, guild, new, reason).await
}

async fn make(
    state: AppState,
    caller: Caller,
    guild: Snowflake,
    new: proto::api::invites::NewInvite,
    AuditLogReason(reason): AuditLogReason,
) -> ApiResult<(StatusCode, Json<Invite>)> {
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, &caller, true).await?;
    match new.channel_id {
        Some(channel) => {
            let count = guilds::member_count(&mut *tx, guild).await?;
            let channels = guild_channels::all(&mut tx, guild, count).await?;
            let channel = visible(&standing, &channels, channel)?;
            require_in(
                &standing,
                standing.in_channel(channel),
                Permissions::CREATE_INSTANT_INVITE,
            )?;
        }
        None => require(&standing, Permissions::CREATE_INSTANT_INVITE)?,
    }
    quotas::lock_users(&mut tx, &[caller.user_id]).await?;
    let rate = state.settings.quotas.invite_creates;
    if let Err(wait) = quotas::check(&mut tx, caller.user_id, Action::InviteCreate, rate).await? {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return Err(ApiError::rate_limited(wait).with_message(format!(
            "you have created as many invites as one may for now; try again in {minutes} minute(s)"
        )));
    }
    quotas::record(&mut tx, caller.user_id, Action::InviteCreate).await?;
    let invite = invites::create(&mut tx, guild, caller.user_id, &new).await?;
    let entry = record(
        &state,
        &mut tx,
        Record::new(
            guild,
            caller.user_id,
            AuditLogEvent::InviteCreate,
            Some(guild),
        )
        .changes([
            AuditLogChange::of("code", None, Some(&invite.code)),
            AuditLogChange::of("channel_id", None, invite.channel_id),
            AuditLogChange::of("max_age", None, Some(invite.max_age)),
            AuditLogChange::of("max_uses", None, Some(invite.max_uses)),
        ])
        .reason(reason),
    )
    .await?;
    tx.commit().await?;
    publish(
        &state,
        guild,
        vec![Event::InviteCreate(invite.clone())],
        vec![entry],
    )
    .await;
    Ok((StatusCode::CREATED, Json(invite)))
}

/// Preview the server an invite leads to, without joining (no sign-in needed).
#[utoipa::path(get, path = "/api/v1/invites/{code}", operation_id = "preview_invite", tag = "invites",
    params(("code" = String, Path)),
    responses((status = 200, body = InvitePreview),
              (status = 404, description = "No such invite, or it expired or was used up", body = ErrorBody)))]
pub async fn preview(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<InvitePreview>> {
    let code = code_of(&code)?;
    let mut conn = state.db.acquire().await?;
    let invite = invites::find(&mut conn, &code, false)
        .await?
        .ok_or_else(|| ApiError::not_found("invite"))?;
    let guild = guilds::read(&mut *conn, invite.guild_id)
        .await?
        .ok_or_else(|| ApiError::not_found("invite"))?;
    let count = guilds::member_count(&mut *conn, guild.id).await?;
    Ok(Json(InvitePreview {
        code: invite.code,
        guild: InviteGuild {
            id: guild.id,
            name: guild.name,
            icon: guild.icon,
            member_count: count,
        },
        channel_id: invite.channel_id,
        expires_at: invite.expires_at,
    }))
}

/// Join the server an invite leads to: the server as you see it. Already a member: the same,
/// and the invite is not spent.
#[utoipa::path(post, path = "/api/v1/invites/{code}", operation_id = "accept_invite", tag = "invites", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 200, body = UserGuild), (status = 401, body = ErrorBody),
              (status = 403, description = "You are banned from the server (`banned`)", body = ErrorBody),
              (status = 404, description = "No such invite, or it expired or was used up", body = ErrorBody),
              (status = 409, description = "You are in as many servers as one may be (`guild_limit_reached`)", body = ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<UserGuild>> {
    let code = code_of(&code)?;
    let mut tx = state.db.begin().await?;
    let Some(invite) = invites::find(&mut tx, &code, true).await? else {
        return Err(ApiError::not_found("invite"));
    };
    let guild = invite.guild_id;
    // The server's lock orders this join after any ban being given meanwhile.
    if guilds::standing(&mut tx, guild, caller.user_id, true)
        .await?
        .is_some()
    {
        tx.commit().await?;
        let mut conn = state.db.acquire().await?;
        return guilds::seen_by(&mut conn, guild, caller.user_id)
            .await?
            .map(Json)
            .ok_or_else(|| ApiError::not_found("invite"));
    }
    if guild_members::is_banned(&mut tx, guild, caller.user_id).await? {
        return Err(ApiError::new(
            ErrorCode::Banned,
            "you are banned from this server",
        ));
    }
    quotas::lock_users(&mut tx, &[caller.user_id]).await?;
    let limit = state.settings.quotas.guild_limit;
    if guilds::count_of(&mut tx, caller.user_id).await? >= limit {
        return Err(guild_limit(limit));
    }
    guild_members::join(&mut tx, guild, caller.user_id).await?;
    let used_up = invites::spend(&mut tx, &invite).await?;
    tx.commit().await?;
    let mut conn = state.db.acquire().await?;
    let joined = guilds::seen_by(&mut conn, guild, caller.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("invite"))?;
    state
        .events
        .publish(&Event::GuildCreate(joined.clone()), &[caller.user_id], None)
        .await;
    let mut events = vec![Event::GuildMemberAdd(GuildMemberEvent {
        guild_id: guild,
        member: joined.member.clone(),
    })];
    if used_up {
        events.push(Event::InviteDelete(InviteRef {
            guild_id: guild,
            channel_id: invite.channel_id,
            code: invite.code,
        }));
    }
    publish(&state, guild, events, Vec::new()).await;
    Ok(Json(joined))
}

/// Revoke an invite (MANAGE_GUILD in its server).
#[utoipa::path(delete, path = "/api/v1/invites/{code}", operation_id = "revoke_invite", tag = "invites", security(("bearer" = [])),
    params(("code" = String, Path), ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(code): ApiPath<String>,
    AuditLogReason(reason): AuditLogReason,
) -> ApiResult<StatusCode> {
    let code = code_of(&code)?;
    let mut tx = state.db.begin().await?;
    let Some(invite) = invites::find(&mut tx, &code, true).await? else {
        return Err(ApiError::not_found("invite"));
    };
    let guild = invite.guild_id;
    let standing = standing(&mut tx, guild, &caller, true).await?;
    require(&standing, Permissions::MANAGE_GUILD)?;
    invites::delete(&mut tx, &invite.code).await?;
    let entry = record(
        &state,
        &mut tx,
        Record::new(
            guild,
            caller.user_id,
            AuditLogEvent::InviteDelete,
            Some(guild),
        )
        .changes([AuditLogChange::of("code", Some(&invite.code), None)])
        .reason(reason),
    )
    .await?;
    tx.commit().await?;
    let event = Event::InviteDelete(InviteRef {
        guild_id: guild,
        channel_id: invite.channel_id,
        code: invite.code,
    });
    publish(&state, guild, vec![event], vec![entry]).await;
    Ok(StatusCode::NO_CONTENT)
}
