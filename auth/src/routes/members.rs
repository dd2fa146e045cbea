//! A server's members and bans: `GET /api/v1/guilds/{id}/members`, `GET|PATCH|DELETE
//! /api/v1/guilds/{id}/members/{user}` (PATCH: nickname, roles, time-out; DELETE: kick),
//! `PUT|DELETE /api/v1/guilds/{id}/members/{user}/roles/{role}`, `GET /api/v1/guilds/{id}/bans`
//! and `PUT|DELETE /api/v1/guilds/{id}/bans/{user}`.
//!
//! The hierarchy: nobody acts on the owner, nor on a member whose highest role is at or above
//! their own; nobody gives or takes a role at or above their own highest (so nobody gives
//! themselves a higher role); ADMINISTRATORs cannot be timed out. Every action takes a reason
//! (`X-Audit-Log-Reason`) for the audit log.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use kit::error::{ApiError, ApiResult};
use kit::extract::{ApiPath, ApiQuery, AuditLogReason};
use proto::Snowflake;
use proto::access::{PurgeRequest, Purged, Reply};
use proto::api::audit::{AuditEntryInfo, AuditLogChange, AuditLogEvent};
use proto::api::channels::{MembersParams, MembersQuery};
use proto::api::error::{ErrorBody, ErrorCode};
use proto::api::guilds::{Ban, BanRequest, GuildMember, UpdateMemberRequest};
use proto::events::{Event, GuildBanEvent, GuildMemberEvent, GuildRemoval};
use proto::permissions::{Permissions, effective};
use sqlx::PgConnection;

use super::guilds::{gone, publish, record, require, standing};
use crate::audit::Record;
use crate::extract::Caller;
use crate::guilds::Standing;
use crate::state::AppState;
use crate::{guild_members, profiles};

/// A user in a path: an id, or `@me`.
fn user_in_path(raw: &str, caller: &Caller) -> ApiResult<Snowflake> {
    if raw == "@me" {
        return Ok(caller.user_id);
    }
    raw.parse().map_err(|_| ApiError::not_found("member"))
}

async fn member(
    conn: &mut PgConnection,
    guild: Snowflake,
    user: Snowflake,
) -> ApiResult<GuildMember> {
    guild_members::one(conn, guild, user)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))
}

/// Refuses acting on `target` unless the caller ranks above them.
fn outranks(standing: &Standing, target: &GuildMember, what: &str) -> ApiResult<()> {
    if target.user.id == standing.guild.owner_id {
        return Err(ApiError::forbidden(format!("nobody can {what} the owner")));
    }
    if !standing.rank().above(standing.rank_of(target)) {
        return Err(ApiError::forbidden(format!(
            "you cannot {what} a member whose highest role is at or above yours"
        )));
    }
    Ok(())
}

/// Refuses giving or taking a role unless it is a role of the server (not @everyone) below the
/// caller's highest.
fn assignable(standing: &Standing, role: Snowflake) -> ApiResult<()> {
    let Some(found) = standing.role(role).filter(|r| r.id != standing.guild.id) else {
        return Err(ApiError::not_found("role"));
    };
    if !standing.rank().above_role(found.position) {
        return Err(ApiError::forbidden(
            "you cannot give or take a role at or above your highest role",
        ));
    }
    Ok(())
}

/// A page of a server's members in user-id order: `limit` (1 to 1,000, default 100) after the
/// user id `after`, or those among `user_ids` (at most 100).
#[utoipa::path(get, path = "/api/v1/guilds/{id}/members", operation_id = "list_members", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path),
           ("after" = Option<String>, Query, description = "List members with a higher user id"),
           ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
           ("user_ids" = Option<String>, Query, description = "Comma-separated user ids, at most 100")),
    responses((status = 200, body = Vec<GuildMember>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(guild): ApiPath<Snowflake>,
    ApiQuery(params): ApiQuery<MembersParams>,
) -> ApiResult<Json<Vec<GuildMember>>> {
    let query = params.parse()?;
    let mut conn = state.db.acquire().await?;
    standing(&mut conn, guild, &caller, false).await?;
    Ok(Json(guild_members::page(&mut *conn, guild, &query).await?))
}

/// One member of a server.
#[utoipa::path(get, path = "/api/v1/guilds/{id}/members/{user}", operation_id = "get_member", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path), ("user" = String, Path, description = "A user id, or `@me`")),
    responses((status = 200, body = GuildMember), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((guild, user)): ApiPath<(Snowflake, String)>,
) -> ApiResult<Json<GuildMember>> {
    let user = user_in_path(&user, &caller)?;
    let mut conn = state.db.acquire().await?;
    standing(&mut conn, guild, &caller, false).await?;
    Ok(Json(member(&mut conn, guild, user).await?))
}

/// Change a member's nickname (MANAGE_NICKNAMES; one's own: CHANGE_NICKNAME), roles
/// (MANAGE_ROLES, only roles below your highest) or time-out (MODERATE_MEMBERS). Others' only
/// when you rank above them.
#[utoipa::path(patch, path = "/api/v1/guilds/{id}/members/{user}", operation_id = "update_member", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path), ("user" = String, Path, description = "A user id, or `@me`"),
           ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    request_body = UpdateMemberRequest,
    responses((status = 200, body = GuildMember), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((guild, user)): ApiPath<(Snowflake, String)>,
    AuditLogReason(reason): AuditLogReason,
    kit::extract::ApiJson(request): kit::extract::ApiJson<UpdateMemberRequest>,
) -> ApiResult<Json<GuildMember>> {
    let user = user_in_path(&user, &caller)?;
    let changes = request.parse(proto::clock::unix_ms())?;
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, &caller, true).await?;
    let before = member(&mut tx, guild, user).await?;
    let myself = user == caller.user_id;
    if changes.nick.is_some() {
        if myself {
            require(&standing, Permissions::CHANGE_NICKNAME)?;
        } else {
            require(&standing, Permissions::MANAGE_NICKNAMES)?;
            outranks(&standing, &before, "rename")?;
        }
    }
    if let Some(roles) = &changes.roles {
        require(&standing, Permissions::MANAGE_ROLES)?;
        if !myself {
            outranks(&standing, &before, "change the roles of")?;
        }
        let changed = roles
            .iter()
            .filter(|r| !before.roles.contains(r))
            .chain(before.roles.iter().filter(|r| !roles.contains(r)));
        for role in changed {
            if standing.role(*role).is_none() || *role == guild {
                return Err(ApiError::field(
                    "roles",
                    format!("{role} is not a role of this server"),
                ));
            }
            assignable(&standing, *role)?;
        }
    }
    if let Some(until) = changes.communication_disabled_until {
        require(&standing, Permissions::MODERATE_MEMBERS)?;
        if myself {
            return Err(ApiError::forbidden("you cannot time yourself out"));
        }
        outranks(&standing, &before, "time out")?;
        let theirs = effective(&standing.subject_of(&before), None);
        if until.is_some() && theirs.has(Permissions::ADMINISTRATOR) {
            return Err(ApiError::forbidden("administrators cannot be timed out"));
        }
    }
    let voice = if changes.touches_voice() {
        Some(voice_moderation(&mut tx, &standing, &before, &changes).await?)
    } else {
        None
    };
    guild_members::update(
        &mut tx,
        guild,
        user,
        changes
            .nick
            .as_ref()
            .map(|n| n.as_ref().map(|n| n.as_str())),
        changes.communication_disabled_until,
    )
    .await?;
    if let Some(roles) = &changes.roles {
        guild_members::set_roles(&mut tx, guild, user, roles).await?;
    }
    let after = member(&mut tx, guild, user).await?;
    let mut entries = Vec::new();
    let voice_changes = voice.as_ref().map(|v| v.changes()).unwrap_or_default();
    if before.nick != after.nick
        || before.communication_disabled_until != after.communication_disabled_until
        || voice_changes.iter().any(Option::is_some)
    {
        let entry = Record::new(
            guild,
            caller.user_id,
            AuditLogEvent::MemberUpdate,
            Some(user),
        )
        .changes([
            AuditLogChange::of("nick", before.nick.as_ref(), after.nick.as_ref()),
            AuditLogChange::of(
                "communication_disabled_until",
                before.communication_disabled_until,
                after.communication_disabled_until,
            ),
        ])
        .changes(voice_changes)
        .reason(reason.clone());
        entries.push(record(&state, &mut tx, entry).await?);
    }
    if before.roles != after.roles {
        entries.push(role_change(&state, &mut tx, &caller, guild, &before, &after, reason).await?);
    }
    tx.commit().await?;
    let event = Event::GuildMemberUpdate(GuildMemberEvent {
        guild_id: guild,
        member: after.clone(),
    });
    publish(&state, guild, vec![event], entries).await;
    if let Some(voice) = voice {
        crate::voice::moderated(&state, guild, voice).await;
    }
    Ok(Json(after))
}

/// Checks a server mute, deafen, move or disconnect (MUTE_MEMBERS, DEAFEN_MEMBERS,
/// MOVE_MEMBERS; a move only to a voice channel the member may connect to) and records it.
async fn voice_moderation(
    tx: &mut PgConnection,
    standing: &Standing,
    target: &GuildMember,
    changes: &proto::api::guilds::MemberChanges,
) -> ApiResult<crate::voice::Moderated> {
    if changes.mute.is_some() {
        require(standing, Permissions::MUTE_MEMBERS)?;
    }
    if changes.deaf.is_some() {
        require(standing, Permissions::DEAFEN_MEMBERS)?;
    }
    if changes.channel_id.is_some() {
        require(standing, Permissions::MOVE_MEMBERS)?;
    }
    let guild = standing.guild.id;
    crate::voice::moderate(tx, guild, target.user.id, changes)
        .await?
        .map_err(|(field, why)| ApiError::field(field, why))
}

/// The audit entry of a change of roles, in Discord's shape: `$add` and `$remove`.
async fn role_change(
    state: &AppState,
    tx: &mut PgConnection,
    caller: &Caller,
    guild: Snowflake,
    before: &GuildMember,
    after: &GuildMember,
    reason: Option<String>,
) -> ApiResult<proto::api::audit::AuditLogEntry> {
    let added: Vec<Snowflake> = after
        .roles
        .iter()
        .filter(|r| !before.roles.contains(r))
        .copied()
        .collect();
    let removed: Vec<Snowflake> = before
        .roles
        .iter()
        .filter(|r| !after.roles.contains(r))
        .copied()
        .collect();
    let entry = Record::new(
        guild,
        caller.user_id,
        AuditLogEvent::MemberRoleUpdate,
        Some(after.user.id),
    )
    .changes([
        (!added.is_empty())
            .then(|| AuditLogChange::of("$add", None, Some(added)))
            .flatten(),
        (!removed.is_empty())
            .then(|| AuditLogChange::of("$remove", None, Some(removed)))
            .flatten(),
    ])
    .reason(reason);
    record(state, tx, entry).await
}

/// Give a member a role (MANAGE_ROLES; a role below your highest, to a member below you or
/// yourself).
#[utoipa::path(put, path = "/api/v1/guilds/{id}/members/{user}/roles/{role}", operation_id = "add_member_role", tag = "guilds",
    security(("bearer" = [])),
    params(("id" = String, Path), ("user" = String, Path), ("role" = String, Path),
           ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn add_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((guild, user, role)): ApiPath<(Snowflake, String, Snowflake)>,
    reason: AuditLogReason,
) -> ApiResult<StatusCode> {
    change_role(state, caller, guild, &user, role, true, reason).await
}

/// Take a role from a member (as giving one).
#[utoipa::path(delete, path = "/api/v1/guilds/{id}/members/{user}/roles/{role}", operation_id = "remove_member_role", tag = "guilds",
    security(("bearer" = [])),
    params(("id" = String, Path), ("user" = String, Path), ("role" = String, Path),
           ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((guild, user, role)): ApiPath<(Snowflake, String, Snowflake)>,
    reason: AuditLogReason,
) -> ApiResult<StatusCode> {
    change_role(state, caller, guild, &user, role, false, reason).await
}

async fn change_role(
    state: AppState,
    caller: Caller,
    guild: Snowflake,
    user: &str,
    role: Snowflake,
    give: bool,
    AuditLogReason(reason): AuditLogReason,
) -> ApiResult<StatusCode> {
    let user = user_in_path(user, &caller)?;
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, &caller, true).await?;
    require(&standing, Permissions::MANAGE_ROLES)?;
    assignable(&standing, role)?;
    let before = member(&mut tx, guild, user).await?;
    if user != caller.user_id {
        outranks(&standing, &before, "change the roles of")?;
    }
    let mut roles = before.roles.clone();
    roles.retain(|r| *r != role);
    if give {
        roles.push(role);
    }
    guild_members::set_roles(&mut tx, guild, user, &roles).await?;
    let after = member(&mut tx, guild, user).await?;
    if before.roles == after.roles {
        return Ok(StatusCode::NO_CONTENT);
    }
    let entry = role_change(&state, &mut tx, &caller, guild, &before, &after, reason).await?;
    tx.commit().await?;
    let event = Event::GuildMemberUpdate(GuildMemberEvent {
        guild_id: guild,
        member: after,
    });
    publish(&state, guild, vec![event], vec![entry]).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Kick a member (KICK_MEMBERS, a member below you): they may come back by an invite.
#[utoipa::path(delete, path = "/api/v1/guilds/{id}/members/{user}", operation_id = "kick_member", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path), ("user" = String, Path),
           ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn kick(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((guild, user)): ApiPath<(Snowflake, String)>,
    AuditLogReason(reason): AuditLogReason,
) -> ApiResult<StatusCode> {
    let user = user_in_path(&user, &caller)?;
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, &caller, true).await?;
    require(&standing, Permissions::KICK_MEMBERS)?;
    let target = member(&mut tx, guild, user).await?;
    if user == caller.user_id {
        return Err(ApiError::forbidden(
            "you cannot kick yourself; leave instead",
        ));
    }
    outranks(&standing, &target, "kick")?;
    guild_members::remove(&mut tx, guild, user).await?;
    let entry = record(
        &state,
        &mut tx,
        Record::new(guild, caller.user_id, AuditLogEvent::MemberKick, Some(user)).reason(reason),
    )
    .await?;
    tx.commit().await?;
    gone(&state, guild, target.user, GuildRemoval::Kicked).await;
    publish(&state, guild, Vec::new(), vec![entry]).await;
    Ok(StatusCode::NO_CONTENT)
}

/// A server's bans (BAN_MEMBERS), in user-id order: `limit` (1 to 1,000, default 100) after the
/// user id `after`.
#[utoipa::path(get, path = "/api/v1/guilds/{id}/bans", operation_id = "list_bans", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path),
           ("after" = Option<String>, Query, description = "Bans of users with a higher id"),
           ("limit" = Option<u32>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, body = Vec<Ban>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn bans(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(guild): ApiPath<Snowflake>,
    ApiQuery(params): ApiQuery<MembersParams>,
) -> ApiResult<Json<Vec<Ban>>> {
    let (after, limit) = match params.parse()? {
        MembersQuery::Page { after, limit } => (after, limit),
        MembersQuery::Ids(_) => return Err(ApiError::field("user_ids", "bans page by `after`")),
    };
    let mut conn = state.db.acquire().await?;
    let standing = standing(&mut conn, guild, &caller, false).await?;
    require(&standing, Permissions::BAN_MEMBERS)?;
    Ok(Json(
        guild_members::bans(&mut *conn, guild, after, limit).await?,
    ))
}

/// A ban's optional body: empty (or `null`), or `{"delete_message_seconds": N}`.
fn ban_body(body: &Bytes) -> ApiResult<u32> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(0);
    }
    let request: Option<BanRequest> = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidBody,
            format!("the body does not have the expected shape: {e}"),
        )
    })?;
    Ok(request.unwrap_or_default().parse()?)
}

/// Ban someone (BAN_MEMBERS; a member below you, or anyone not in the server): they leave, and
/// no invite lets them back until unbanned. `delete_message_seconds` (at most a week) also
/// deletes what they sent in that time.
#[utoipa::path(put, path = "/api/v1/guilds/{id}/bans/{user}", operation_id = "ban", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path), ("user" = String, Path),
           ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log (and the ban)")),
    request_body(content = Option<BanRequest>, description = "Optional"),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn ban(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((guild, user)): ApiPath<(Snowflake, Snowflake)>,
    AuditLogReason(reason): AuditLogReason,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let delete_seconds = ban_body(&body)?;
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, &caller, true).await?;
    require(&standing, Permissions::BAN_MEMBERS)?;
    if user == caller.user_id {
        return Err(ApiError::forbidden("you cannot ban yourself"));
    }
    let target = guild_members::one(&mut *tx, guild, user).await?;
    if let Some(target) = &target {
        outranks(&standing, target, "ban")?;
    } else if profiles::by_id(&mut *tx, user).await?.is_none() {
        return Err(ApiError::not_found("user"));
    }
    let new = guild_members::ban(&mut tx, guild, user, reason.as_deref()).await?;
    if target.is_some() {
        guild_members::remove(&mut tx, guild, user).await?;
    }
    let purge = if delete_seconds > 0 {
        let count = crate::guilds::member_count(&mut *tx, guild).await?;
        let channels = crate::guild_channels::all(&mut tx, guild, count).await?;
        Some(PurgeRequest {
            guild_id: guild,
            channel_ids: channels
                .iter()
                .filter(|c| c.kind.has_messages())
                .map(|c| c.id)
                .collect(),
            author_id: user,
            since_ms: standing
                .now_ms
                .saturating_sub(u64::from(delete_seconds) * 1000),
        })
    } else {
        None
    };
    let mut entries = Vec::new();
    if new {
        let options = (delete_seconds > 0).then(|| AuditEntryInfo {
            delete_message_seconds: Some(delete_seconds),
            ..Default::default()
        });
        let mut entry = Record::new(
            guild,
            caller.user_id,
            AuditLogEvent::MemberBanAdd,
            Some(user),
        )
        .reason(reason);
        entry.options = options;
        entries.push(record(&state, &mut tx, entry).await?);
    }
    tx.commit().await?;
    let banned = profiles::by_id(&state.db, user)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?
        .seen_by_others();
    if let Some(target) = target {
        gone(&state, guild, target.user, GuildRemoval::Banned).await;
    }
    let event = Event::GuildBanAdd(GuildBanEvent {
        guild_id: guild,
        user: banned,
    });
    publish(
        &state,
        guild,
        if new { vec![event] } else { Vec::new() },
        entries,
    )
    .await;
    if let Some(purge) = purge {
        tokio::spawn(delete_recent(state.clone(), purge));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// How long an edge may take to delete a banned member's recent messages.
const PURGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Asks the edges (one answers) to delete a banned member's recent messages, through the chat
/// stream as any delete: the ban is answered before, as on Discord. A failure is logged; the ban
/// stands.
async fn delete_recent(state: AppState, purge: PurgeRequest) {
    let payload = serde_json::to_vec(&purge).expect("requests serialise");
    let request = async_nats::Request::new()
        .payload(payload.into())
        .timeout(Some(PURGE_TIMEOUT));
    match state
        .nats
        .send_request(state.subjects.edge_purge(), request)
        .await
    {
        Ok(reply) => match serde_json::from_slice::<Reply<Purged>>(&reply.payload) {
            Ok(Reply::Ok(purged)) => tracing::info!(
                guild = %purge.guild_id,
                deleted = purged.deleted,
                "a banned member's recent messages are deleted"
            ),
            Ok(other) => {
                tracing::warn!(
                    ?other,
                    "an edge could not delete a banned member's messages"
                )
            }
            Err(e) => tracing::warn!(error = %e, "an edge's answer to a purge is not one"),
        },
        Err(e) => tracing::warn!(error = %e, "no edge deleted a banned member's messages"),
    }
}

/// Lift a ban (BAN_MEMBERS).
#[utoipa::path(delete, path = "/api/v1/guilds/{id}/bans/{user}", operation_id = "unban", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path), ("user" = String, Path),
           ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, description = "No such server, or no such ban", body = ErrorBody)))]
pub async fn unban(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((guild, user)): ApiPath<(Snowflake, Snowflake)>,
    AuditLogReason(reason): AuditLogReason,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let standing = standing(&mut tx, guild, &caller, true).await?;
    require(&standing, Permissions::BAN_MEMBERS)?;
    if !guild_members::unban(&mut tx, guild, user).await? {
        return Err(ApiError::not_found("ban"));
    }
    let entry = record(
        &state,
        &mut tx,
        Record::new(
            guild,
            caller.user_id,
            AuditLogEvent::MemberBanRemove,
            Some(user),
        )
        .reason(reason),
    )
    .await?;
    tx.commit().await?;
    let mut events = Vec::new();
    if let Some(unbanned) = profiles::by_id(&state.db, user).await? {
        events.push(Event::GuildBanRemove(GuildBanEvent {
            guild_id: guild,
            user: unbanned.seen_by_others(),
        }));
    }
    publish(&state, guild, events, vec![entry]).await;
    Ok(StatusCode::NO_CONTENT)
}
