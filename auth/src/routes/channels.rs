//! `/api/v1/channels/*`, `/api/v1/users/@me/channels` and `/api/v1/users/@me/dms`.
//!
//! Who may do what in a group channel:
//!
//! | action                        | owner | moderator           | member | non-member |
//! |-------------------------------|-------|---------------------|--------|------------|
//! | read it                       | yes   | yes                 | yes    | 404        |
//! | rename, set the topic         | yes   | yes                 | 403    | 404        |
//! | add members                   | yes   | yes                 | 403    | 404        |
//! | remove members                | yes   | plain members only  | 403    | 404        |
//! | appoint or demote moderators  | yes   | 403                 | 403    | 404        |
//! | delete it                     | yes   | 403                 | 403    | 404        |
//! | leave                         | yes (ownership passes on) | yes | yes | 404   |
//!
//! Non-members always get 404, exactly as for a channel that does not exist, so nothing about a
//! channel leaks to someone outside it. DMs have no owner: they can be read, not changed or left.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use shared::Snowflake;
use shared::api::channels::{
    Channel, ChannelKind, CreateChannelRequest, Member, MemberRole, UpdateChannelRequest,
    UsernameRequest,
};
use shared::api::error::{ErrorBody, ErrorCode};
use shared::api::names::Username;
use shared::events::{ChannelRef, Event, MemberAdded, MemberRef};

use crate::channels::{self, Added, Left};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::profiles;
use crate::publish::Publisher;
use crate::state::AppState;

fn channel_id(raw: &str) -> ApiResult<Snowflake> {
    raw.parse().map_err(|_| ApiError::not_found("channel"))
}

/// The caller's role in a channel, or 404 whether it is missing or just not theirs.
async fn role_in(
    state: &AppState,
    channel: Snowflake,
    caller: &Caller,
) -> ApiResult<(ChannelKind, MemberRole)> {
    channels::membership(&state.db, channel, caller.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))
}

/// As [`role_in`], and the channel must be a group the caller moderates.
async fn moderated_group(
    state: &AppState,
    channel: Snowflake,
    caller: &Caller,
    action: &str,
) -> ApiResult<MemberRole> {
    match role_in(state, channel, caller).await? {
        (ChannelKind::Dm, _) => Err(ApiError::forbidden(format!("a DM cannot {action}"))),
        (ChannelKind::Group, role) if role.moderates() => Ok(role),
        _ => Err(ApiError::forbidden(format!(
            "only the owner and moderators can {action}"
        ))),
    }
}

async fn owned_group(
    state: &AppState,
    channel: Snowflake,
    caller: &Caller,
    action: &str,
) -> ApiResult<()> {
    match role_in(state, channel, caller).await? {
        (ChannelKind::Dm, _) => Err(ApiError::forbidden(format!("a DM cannot {action}"))),
        (ChannelKind::Group, MemberRole::Owner) => Ok(()),
        _ => Err(ApiError::forbidden(format!("only the owner can {action}"))),
    }
}

async fn load(state: &AppState, id: Snowflake) -> ApiResult<Channel> {
    channels::load(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))
}

/// A member of `channel` by username: 404 when there is no such user or they are not in it.
async fn member_named(
    state: &AppState,
    channel: Snowflake,
    username: &str,
) -> ApiResult<(Snowflake, MemberRole)> {
    let username = Username::parse(username).map_err(|_| ApiError::not_found("member"))?;
    let user = profiles::id_by_username(&state.db, &username)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let (_, role) = channels::membership(&state.db, channel, user)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    Ok((user, role))
}

/// Create a group channel; the caller owns it.
#[utoipa::path(post, path = "/api/v1/channels", tag = "channels", security(("bearer" = [])),
    request_body = CreateChannelRequest,
    responses((status = 201, body = Channel), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateChannelRequest>,
) -> ApiResult<(StatusCode, Json<Channel>)> {
    let new = request.parse()?;
    let id = state.ids.next_id();
    channels::create_group(&state.db, id, caller.user_id, &new).await?;
    let channel = load(&state, id).await?;
    let event = Event::ChannelCreate(channel.clone());
    state
        .events
        .channel(&event, id, &Publisher::members_of(&channel))
        .await;
    state.events.flush().await;
    Ok((StatusCode::CREATED, Json(channel)))
}

/// A channel or DM I belong to, with its members.
#[utoipa::path(get, path = "/api/v1/channels/{id}", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Channel), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Channel>> {
    let id = channel_id(&id)?;
    role_in(&state, id, &caller).await?;
    Ok(Json(load(&state, id).await?))
}

/// Rename a group channel or change its topic (owner and moderators).
#[utoipa::path(patch, path = "/api/v1/channels/{id}", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = UpdateChannelRequest,
    responses((status = 200, body = Channel), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateChannelRequest>,
) -> ApiResult<Json<Channel>> {
    let id = channel_id(&id)?;
    moderated_group(&state, id, &caller, "be renamed or change its topic").await?;
    let changes = request.parse()?;
    channels::update(&state.db, id, &changes).await?;
    let channel = load(&state, id).await?;
    state
        .events
        .channel(&Event::ChannelUpdate(channel.clone()), id, &[])
        .await;
    state.events.flush().await;
    Ok(Json(channel))
}

/// Delete a group channel (owner only).
#[utoipa::path(delete, path = "/api/v1/channels/{id}", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = channel_id(&id)?;
    owned_group(&state, id, &caller, "be deleted").await?;
    let channel = load(&state, id).await?;
    channels::delete(&state.db, id).await?;
    let event = Event::ChannelDelete(ChannelRef { channel_id: id });
    state
        .events
        .channel(&event, id, &Publisher::members_of(&channel))
        .await;
    state.events.flush().await;
    Ok(StatusCode::NO_CONTENT)
}

/// The channels and DMs I belong to, with their members.
#[utoipa::path(get, path = "/api/v1/users/@me/channels", tag = "channels", security(("bearer" = [])),
    responses((status = 200, body = Vec<Channel>), (status = 401, body = ErrorBody)))]
pub async fn mine(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Channel>>> {
    let ids = channels::ids_of(&state.db, caller.user_id).await?;
    Ok(Json(channels::load_many(&state.db, &ids).await?))
}

/// Add someone to a group channel by username (owner and moderators).
#[utoipa::path(post, path = "/api/v1/channels/{id}/members", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = UsernameRequest,
    responses((status = 201, body = Member), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, description = "No such channel, or no such user", body = ErrorBody),
              (status = 409, description = "Already a member, or the channel is full (`member_limit_reached`)", body = ErrorBody)))]
pub async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UsernameRequest>,
) -> ApiResult<(StatusCode, Json<Member>)> {
    let id = channel_id(&id)?;
    moderated_group(&state, id, &caller, "add members").await?;
    let username = request.parse()?;
    let user_id = profiles::id_by_username(&state.db, &username)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let limit = state.settings.member_limit;
    match channels::add_member(&state.db, id, user_id, limit).await? {
        Added::Added => {}
        Added::AlreadyMember => {
            return Err(ApiError::conflict(format!(
                "{username} is already a member"
            )));
        }
        Added::Full => {
            return Err(ApiError::new(
                ErrorCode::MemberLimitReached,
                format!("the channel already has {limit} members, the most it may have"),
            ));
        }
    }
    let channel = load(&state, id).await?;
    let member = channel
        .members
        .iter()
        .find(|m| m.user.id == user_id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("member"))?;
    // The members hear of the newcomer; the newcomer gets the channel itself, as it now is
    // (Discord's CHANNEL_RECIPIENT_ADD / CHANNEL_CREATE split), so their sessions can subscribe
    // to it and watch its members' presence without asking.
    let added = Event::ChannelMemberAdd(MemberAdded {
        channel_id: id,
        member: member.clone(),
    });
    state.events.publish(&added, &[], Some(id)).await;
    state
        .events
        .publish(&Event::ChannelCreate(channel), &[user_id], None)
        .await;
    state.events.flush().await;
    Ok((StatusCode::CREATED, Json(member)))
}

/// Remove a member by username. The owner removes anyone but themselves; moderators remove plain
/// members.
#[utoipa::path(delete, path = "/api/v1/channels/{id}/members/{username}", tag = "channels",
    security(("bearer" = [])), params(("id" = String, Path), ("username" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, username)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = channel_id(&id)?;
    let my_role = moderated_group(&state, id, &caller, "remove members").await?;
    let (user_id, their_role) = member_named(&state, id, &username).await?;
    match (my_role, their_role) {
        (_, MemberRole::Owner) => {
            return Err(ApiError::forbidden(
                "the owner cannot be removed; the owner can leave or delete the channel",
            ));
        }
        (MemberRole::Moderator, MemberRole::Moderator) => {
            return Err(ApiError::forbidden(
                "moderators cannot remove other moderators; ask the owner",
            ));
        }
        _ => {}
    }
    if channels::remove_member(&state.db, id, user_id).await? {
        removed(&state, id, user_id).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn removed(state: &AppState, channel: Snowflake, user: Snowflake) {
    let event = Event::ChannelMemberRemove(MemberRef {
        channel_id: channel,
        user_id: user,
    });
    state.events.channel(&event, channel, &[user]).await;
    state.events.flush().await;
}

/// Leave a group channel. When the owner leaves, ownership passes to the longest-standing
/// moderator (else member); when the last member leaves, the channel is deleted.
#[utoipa::path(delete, path = "/api/v1/channels/{id}/members/@me", tag = "channels",
    security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, description = "DMs cannot be left", body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn leave(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = channel_id(&id)?;
    if role_in(&state, id, &caller).await?.0 == ChannelKind::Dm {
        return Err(ApiError::forbidden("a DM cannot be left"));
    }
    match channels::leave(&state.db, id, caller.user_id).await? {
        Left::Left => removed(&state, id, caller.user_id).await,
        Left::OwnerLeft { .. } => {
            removed(&state, id, caller.user_id).await;
            let channel = load(&state, id).await?;
            state
                .events
                .channel(&Event::ChannelUpdate(channel), id, &[])
                .await;
            state.events.flush().await;
        }
        Left::Deleted => {
            let event = Event::ChannelDelete(ChannelRef { channel_id: id });
            state.events.channel(&event, id, &[caller.user_id]).await;
            state.events.flush().await;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Make a member a moderator (owner only).
#[utoipa::path(put, path = "/api/v1/channels/{id}/moderators/{username}", tag = "channels",
    security(("bearer" = [])), params(("id" = String, Path), ("username" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, description = "That member is the owner", body = ErrorBody)))]
pub async fn add_moderator(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, username)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    set_moderator(&state, &caller, &id, &username, true).await
}

/// Make a moderator a plain member again (owner only).
#[utoipa::path(delete, path = "/api/v1/channels/{id}/moderators/{username}", tag = "channels",
    security(("bearer" = [])), params(("id" = String, Path), ("username" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_moderator(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, username)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    set_moderator(&state, &caller, &id, &username, false).await
}

async fn set_moderator(
    state: &AppState,
    caller: &Caller,
    id: &str,
    username: &str,
    moderator: bool,
) -> ApiResult<StatusCode> {
    let id = channel_id(id)?;
    owned_group(state, id, caller, "appoint or demote moderators").await?;
    let (user_id, role) = member_named(state, id, username).await?;
    if role == MemberRole::Owner {
        return Err(ApiError::conflict("the owner's role cannot change"));
    }
    if channels::set_moderator(&state.db, id, user_id, moderator).await? {
        let change = MemberRef {
            channel_id: id,
            user_id,
        };
        let event = if moderator {
            Event::ChannelModeratorAdd(change)
        } else {
            Event::ChannelModeratorRemove(change)
        };
        state.events.channel(&event, id, &[user_id]).await;
        state.events.flush().await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Open the DM with someone: made on first use, the same channel every time after.
#[utoipa::path(post, path = "/api/v1/users/@me/dms", tag = "channels", security(("bearer" = [])),
    request_body = UsernameRequest,
    responses((status = 200, description = "The existing DM", body = Channel),
              (status = 201, description = "A new DM", body = Channel),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn open_dm(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<UsernameRequest>,
) -> ApiResult<(StatusCode, Json<Channel>)> {
    let username = request.parse()?;
    let other = profiles::id_by_username(&state.db, &username)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if other == caller.user_id {
        return Err(ApiError::field(
            "username",
            "is you; a DM needs someone else",
        ));
    }
    let (id, created) =
        channels::open_dm(&state.db, state.ids.next_id(), caller.user_id, other).await?;
    let channel = load(&state, id).await?;
    if created {
        let event = Event::ChannelCreate(channel.clone());
        state
            .events
            .channel(&event, id, &Publisher::members_of(&channel))
            .await;
        state.events.flush().await;
        Ok((StatusCode::CREATED, Json(channel)))
    } else {
        Ok((StatusCode::OK, Json(channel)))
    }
}
