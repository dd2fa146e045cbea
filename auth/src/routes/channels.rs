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
//!
//! Growing someone's channels takes their consent (`crate::consent`: their settings, and no block
//! either way) and stays within the limits (`crate::quotas`): channels one may be in, channels
//! created and members added per hour.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use kit::error::{ApiError, ApiResult};
use kit::extract::{ApiJson, ApiPath, AuditLogReason};
use proto::Snowflake;
use proto::api::channels::{
    Channel, ChannelKind, CreateChannelRequest, Member, MemberRole, MembersParams, MembersQuery,
    OpenDmRequest, UpdateChannelRequest, UsernameRequest,
};
use proto::api::error::{ErrorBody, ErrorCode};
use proto::api::names::Username;
use proto::events::{ChannelRef, Event, MemberAdded, MemberRef};

use crate::channels::{self, Left, Refused};
use crate::extract::Caller;
use crate::quotas::Action;
use crate::state::AppState;
use crate::{guild_channels, profiles};

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
        (ChannelKind::Group, role) if role.moderates() => Ok(role),
        (ChannelKind::Dm, _) => Err(ApiError::forbidden(format!("a DM cannot {action}"))),
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
        (ChannelKind::Group, MemberRole::Owner) => Ok(()),
        (ChannelKind::Dm, _) => Err(ApiError::forbidden(format!("a DM cannot {action}"))),
        _ => Err(ApiError::forbidden(format!("only the owner can {action}"))),
    }
}

/// The channel as `user` sees it.
async fn seen_by(state: &AppState, id: Snowflake, user: Snowflake) -> ApiResult<Channel> {
    channels::seen_by(&state.db, id, user)
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))
}

/// A refusal to grow someone's channels, as the caller is told it. `who` is the other person's
/// username. A refusal by their settings and one by their block read the same.
fn refused(refusal: Refused, who: &str, dm: bool) -> ApiError {
    match refusal {
        Refused::CallerBlocks => ApiError::new(
            ErrorCode::UserBlocked,
            format!("you have blocked {who}; unblock them first"),
        ),
        Refused::NotAllowed if dm => ApiError::new(
            ErrorCode::ConsentRequired,
            format!("{who} does not accept DMs from you"),
        ),
        Refused::NotAllowed => ApiError::new(
            ErrorCode::ConsentRequired,
            format!(
                "{who} does not accept channel adds from you; they can join once you share a \
                 channel, or after they reply to your DM"
            ),
        ),
        Refused::CallerChannelLimit(limit) => ApiError::new(
            ErrorCode::ChannelLimitReached,
            format!("you are in {limit} channels and DMs, the most one may be in; leave one first"),
        ),
        Refused::TheirChannelLimit(limit) => ApiError::new(
            ErrorCode::ChannelLimitReached,
            format!("{who} is in {limit} channels and DMs, the most one may be in"),
        ),
        Refused::TheirRequestLimit(limit) => ApiError::new(
            ErrorCode::ChannelLimitReached,
            format!("{who} has {limit} unanswered DMs, the most one may have; try again later"),
        ),
        Refused::Rate(wait, action) => {
            let what = match action {
                Action::ChannelCreate => "channels you may create",
                Action::MemberAdd => "members you may add",
                Action::InviteCreate => "invites you may create",
            };
            let minutes = wait.as_secs().div_ceil(60).max(1);
            ApiError::rate_limited(wait).with_message(format!(
                "you have reached the {what} per hour; try again in {minutes} minute(s)"
            ))
        }
        Refused::AlreadyMember => ApiError::conflict(format!("{who} is already a member")),
        Refused::Full(limit) => ApiError::new(
            ErrorCode::MemberLimitReached,
            format!("the channel already has {limit} members, the most it may have"),
        ),
    }
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
    responses((status = 201, body = Channel), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, description = "You are in as many channels as one may be (`channel_limit_reached`)", body = ErrorBody),
              (status = 429, description = "You created as many channels as one may per hour", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateChannelRequest>,
) -> ApiResult<(StatusCode, Json<Channel>)> {
    let new = request.parse()?;
    let id = state.ids.next_id();
    channels::create_group(&state.db, id, caller.user_id, &new, &state.settings.quotas)
        .await?
        .map_err(|r| refused(r, "you", false))?;
    let channel = seen_by(&state, id, caller.user_id).await?;
    let event = Event::ChannelCreate(channel.clone().into());
    state.events.publish(&event, &[caller.user_id], None).await;
    state.events.flush().await;
    Ok((StatusCode::CREATED, Json(channel)))
}

/// A channel or DM I belong to, as I see it: its member count, my role, and for a DM the other
/// person.
#[utoipa::path(get, path = "/api/v1/channels/{id}", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Channel), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Snowflake>,
) -> ApiResult<Json<Channel>> {
    if let Some(guild) = guild_channels::guild_of(&state.db, id).await? {
        return super::guild_channels::get(&state, &caller, guild, id)
            .await
            .map(Json);
    }
    Ok(Json(seen_by(&state, id, caller.user_id).await?))
}

/// Members of a channel or DM I belong to, in user-id order: up to `limit` (1 to 1,000, default
/// 100) after the user id `after`, or those among `user_ids` (at most 100). Page on with the last
/// id of a page until a page comes back short. A server's channel (one I may view) has no members
/// of its own: this lists the server's.
#[utoipa::path(get, path = "/api/v1/channels/{id}/members", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path),
           ("after" = Option<String>, Query, description = "List members with a higher user id"),
           ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
           ("user_ids" = Option<String>, Query, description = "Comma-separated user ids, at most 100; not with `after` or `limit`")),
    responses((status = 200, body = Vec<Member>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn members(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Snowflake>,
    Query(params): Query<MembersParams>,
) -> ApiResult<Json<Vec<Member>>> {
    let query = params.parse()?;
    if let Some(guild) = guild_channels::guild_of(&state.db, id).await? {
        super::guild_channels::get(&state, &caller, guild, id).await?;
        let members = crate::guild_members::page(&state.db, guild, &query).await?;
        return Ok(Json(
            members
                .into_iter()
                .map(|m| Member {
                    user: m.user,
                    role: MemberRole::Member,
                })
                .collect(),
        ));
    }
    role_in(&state, id, &caller).await?;
    Ok(Json(channels::members(&state.db, id, &query).await?))
}

/// Rename a group channel or change its topic (owner and moderators).
#[utoipa::path(patch, path = "/api/v1/channels/{id}", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = UpdateChannelRequest,
    responses((status = 200, body = Channel), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Snowflake>,
    reason: AuditLogReason,
    ApiJson(request): ApiJson<UpdateChannelRequest>,
) -> ApiResult<Json<Channel>> {
    if let Some(guild) = guild_channels::guild_of(&state.db, id).await? {
        return super::guild_channels::update(&state, &caller, guild, id, &request, reason)
            .await
            .map(Json);
    }
    moderated_group(&state, id, &caller, "be renamed or change its topic").await?;
    let changes = request.parse()?;
    if changes.guild_only() {
        return Err(ApiError::invalid(
            "only a server's channels have slowmode, categories and positions",
        ));
    }
    channels::update(&state.db, id, &changes).await?;
    let shared = channels::shared_view(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))?;
    state
        .events
        .channel(&Event::ChannelUpdate(shared), id, &[])
        .await;
    state.events.flush().await;
    Ok(Json(seen_by(&state, id, caller.user_id).await?))
}

/// Delete a group channel (owner only).
#[utoipa::path(delete, path = "/api/v1/channels/{id}", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Snowflake>,
    reason: AuditLogReason,
) -> ApiResult<StatusCode> {
    if let Some(guild) = guild_channels::guild_of(&state.db, id).await? {
        return super::guild_channels::delete(&state, &caller, guild, id, reason).await;
    }
    owned_group(&state, id, &caller, "be deleted").await?;
    let members = channels::member_ids(&state.db, id).await?;
    channels::delete(&state.db, id).await?;
    let event = Event::ChannelDelete(ChannelRef {
        channel_id: id,
        guild_id: None,
    });
    state.events.channel(&event, id, &members).await;
    state.events.forget_files(&[id]).await;
    state.events.flush().await;
    Ok(StatusCode::NO_CONTENT)
}

/// The channels and DMs I belong to, as I see them (member counts, not members).
#[utoipa::path(get, path = "/api/v1/users/@me/channels", tag = "channels", security(("bearer" = [])),
    responses((status = 200, body = Vec<Channel>), (status = 401, body = ErrorBody)))]
pub async fn mine(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Channel>>> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(channels::mine(&mut conn, caller.user_id, None).await?))
}

/// Add someone to a group channel by username (owner and moderators), as their settings allow.
#[utoipa::path(post, path = "/api/v1/channels/{id}/members", tag = "channels", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = UsernameRequest,
    responses((status = 201, body = Member), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "Not the owner or a moderator; or they do not accept channel adds from you (`consent_required`); or you block them (`user_blocked`)", body = ErrorBody),
              (status = 404, description = "No such channel, or no such user", body = ErrorBody),
              (status = 409, description = "Already a member; the channel is full (`member_limit_reached`); or they are in as many channels as one may be (`channel_limit_reached`)", body = ErrorBody),
              (status = 429, description = "You added as many members as one may per hour", body = ErrorBody)))]
pub async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Snowflake>,
    ApiJson(request): ApiJson<UsernameRequest>,
) -> ApiResult<(StatusCode, Json<Member>)> {
    moderated_group(&state, id, &caller, "add members").await?;
    let username = request.parse()?;
    let user_id = profiles::id_by_username(&state.db, &username)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let settings = &state.settings;
    channels::add_member(
        &state.db,
        id,
        caller.user_id,
        user_id,
        settings.member_limit,
        &settings.quotas,
    )
    .await?
    .map_err(|r| refused(r, username.as_str(), false))?;
    let member = channels::members(&state.db, id, &MembersQuery::Ids(vec![user_id]))
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("member"))?;
    let channel = seen_by(&state, id, user_id).await?;
    // The members hear of the newcomer; the newcomer gets the channel itself, as they see it
    // (Discord's CHANNEL_RECIPIENT_ADD / CHANNEL_CREATE split), so their sessions can subscribe
    // to it and watch its members' presence.
    let added = Event::ChannelMemberAdd(MemberAdded {
        channel_id: id,
        member: member.clone(),
    });
    state.events.publish(&added, &[], Some(id)).await;
    state
        .events
        .publish(&Event::ChannelCreate(channel.into()), &[user_id], None)
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
    ApiPath((id, username)): ApiPath<(Snowflake, String)>,
) -> ApiResult<StatusCode> {
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
        let by = (user_id != caller.user_id).then_some(caller.user_id);
        removed(&state, id, user_id, by).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Tells a channel, and the member gone from it, that they are gone: `by` whoever removed
/// them, or `None` when they left.
async fn removed(state: &AppState, channel: Snowflake, user: Snowflake, by: Option<Snowflake>) {
    let event = Event::ChannelMemberRemove(MemberRef {
        channel_id: channel,
        user_id: user,
        removed_by: by,
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
    ApiPath(id): ApiPath<Snowflake>,
) -> ApiResult<StatusCode> {
    if role_in(&state, id, &caller).await?.0 == ChannelKind::Dm {
        return Err(ApiError::forbidden("a DM cannot be left"));
    }
    match channels::leave(&state.db, id, caller.user_id).await? {
        Left::Left => removed(&state, id, caller.user_id, None).await,
        Left::OwnerLeft { .. } => {
            removed(&state, id, caller.user_id, None).await;
            if let Some(channel) = channels::shared_view(&state.db, id).await? {
                state
                    .events
                    .channel(&Event::ChannelUpdate(channel), id, &[])
                    .await;
            }
            state.events.flush().await;
        }
        Left::Deleted => {
            let event = Event::ChannelDelete(ChannelRef {
                channel_id: id,
                guild_id: None,
            });
            state.events.channel(&event, id, &[caller.user_id]).await;
            state.events.forget_files(&[id]).await;
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
    ApiPath((id, username)): ApiPath<(Snowflake, String)>,
) -> ApiResult<StatusCode> {
    set_moderator(&state, &caller, id, &username, true).await
}

/// Make a moderator a plain member again (owner only).
#[utoipa::path(delete, path = "/api/v1/channels/{id}/moderators/{username}", tag = "channels",
    security(("bearer" = [])), params(("id" = String, Path), ("username" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_moderator(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, username)): ApiPath<(Snowflake, String)>,
) -> ApiResult<StatusCode> {
    set_moderator(&state, &caller, id, &username, false).await
}

async fn set_moderator(
    state: &AppState,
    caller: &Caller,
    id: Snowflake,
    username: &str,
    moderator: bool,
) -> ApiResult<StatusCode> {
    owned_group(state, id, caller, "appoint or demote moderators").await?;
    let (user_id, role) = member_named(state, id, username).await?;
    if role == MemberRole::Owner {
        return Err(ApiError::conflict("the owner's role cannot change"));
    }
    if channels::set_moderator(&state.db, id, user_id, moderator).await? {
        let change = MemberRef {
            channel_id: id,
            user_id,
            removed_by: None,
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

/// Open my side of the DM with someone: made on first use (a request to them until they open it
/// too), the same channel every time after. A new DM needs their consent (`allow_dms_from`) and no
/// block either way.
#[utoipa::path(post, path = "/api/v1/users/@me/dms", tag = "channels", security(("bearer" = [])),
    request_body = UsernameRequest,
    responses((status = 200, description = "The existing DM", body = Channel),
              (status = 201, description = "A new DM", body = Channel),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "They do not accept DMs from you (`consent_required`), or you block them (`user_blocked`)", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, description = "You, or their unanswered DMs, are at the limit (`channel_limit_reached`)", body = ErrorBody)))]
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
    open_dm_with(&state, &caller, other, username.as_str()).await
}

/// The same as `POST /api/v1/users/@me/dms`, in Discord's shape: the other person by id.
#[utoipa::path(post, path = "/api/v1/users/@me/channels", tag = "channels", security(("bearer" = [])),
    request_body = OpenDmRequest,
    responses((status = 200, description = "The existing DM", body = Channel),
              (status = 201, description = "A new DM", body = Channel),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, description = "They do not accept DMs from you (`consent_required`), or you block them (`user_blocked`)", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, description = "You, or their unanswered DMs, are at the limit (`channel_limit_reached`)", body = ErrorBody)))]
pub async fn open_dm_by_id(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<OpenDmRequest>,
) -> ApiResult<(StatusCode, Json<Channel>)> {
    let other = request.parse()?;
    if other == caller.user_id {
        return Err(ApiError::field(
            "recipient_id",
            "is you; a DM needs someone else",
        ));
    }
    let user = crate::routes::users::read(&state, other)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    open_dm_with(&state, &caller, other, &user.username).await
}

async fn open_dm_with(
    state: &AppState,
    caller: &Caller,
    other: Snowflake,
    username: &str,
) -> ApiResult<(StatusCode, Json<Channel>)> {
    let opened = channels::open_dm(
        &state.db,
        state.ids.next_id(),
        caller.user_id,
        other,
        &state.settings.quotas,
    )
    .await?
    .map_err(|r| refused(r, username, true))?;
    let id = opened.channel;
    let channel = seen_by(state, id, caller.user_id).await?;
    if opened.caller_opened_now {
        // My other sessions learn the DM is open on my side; the other person's learn they may
        // now see my presence.
        let event = Event::ChannelCreate(channel.clone().into());
        state.events.publish(&event, &[caller.user_id], None).await;
        if !opened.created {
            let open = Event::DmOpen(MemberRef {
                channel_id: id,
                user_id: caller.user_id,
                removed_by: None,
            });
            state.events.publish(&open, &[], Some(id)).await;
        }
    }
    if opened.requested {
        let theirs = seen_by(state, id, other).await?;
        state
            .events
            .publish(&Event::ChannelCreate(theirs.into()), &[other], None)
            .await;
    }
    state.events.flush().await;
    let status = if opened.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(channel)))
}
