//! `/api/v1/users/@me/settings` (who may DM me or add me to channels) and
//! `/api/v1/users/@me/relationships` (whom I block), in Discord's shapes. Every change is told to
//! the user's own sessions (USER_SETTINGS_UPDATE, RELATIONSHIP_ADD, RELATIONSHIP_REMOVE); a block
//! also to both people's edges (BLOCK_UPDATE, never shown to a client), which stop presence
//! either way and close their DM to sends.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kit::error::{ApiError, ApiResult};
use kit::extract::{ApiJson, ApiPath};
use proto::Snowflake;
use proto::api::consent::{
    PutRelationshipRequest, Relationship, RelationshipRef, RelationshipType, UpdateSettingsRequest,
    UserSettings,
};
use proto::api::error::ErrorBody;
use proto::events::{BlockUpdate, Event, MemberRef};

use crate::consent;
use crate::extract::Caller;
use crate::routes::users::read;
use crate::state::AppState;

/// My privacy settings.
#[utoipa::path(get, path = "/api/v1/users/@me/settings", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserSettings), (status = 401, body = ErrorBody)))]
pub async fn settings(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<UserSettings>> {
    consent::settings(&state.db, caller.user_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))
}

/// Change who may DM me (`allow_dms_from`) or add me to channels (`allow_channel_adds_from`):
/// `everyone`, `shared` (people I share a group channel with, or whose DM I opened) or `nobody`.
/// Leave a field out to keep it. Applies to new DMs and adds; channels I am in stay.
#[utoipa::path(patch, path = "/api/v1/users/@me/settings", tag = "users", security(("bearer" = [])),
    request_body = UpdateSettingsRequest,
    responses((status = 200, body = UserSettings), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn update_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<UpdateSettingsRequest>,
) -> ApiResult<Json<UserSettings>> {
    let settings = consent::update_settings(&state.db, caller.user_id, &request)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
    state
        .events
        .publish(
            &Event::UserSettingsUpdate(settings),
            &[caller.user_id],
            None,
        )
        .await;
    state.events.flush().await;
    Ok(Json(settings))
}

/// The people I block, oldest block first.
#[utoipa::path(get, path = "/api/v1/users/@me/relationships", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Vec<Relationship>), (status = 401, body = ErrorBody)))]
pub async fn relationships(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Relationship>>> {
    let blocked = consent::blocked_by(&state.db, caller.user_id).await?;
    Ok(Json(
        blocked
            .into_iter()
            .map(|user| Relationship {
                id: user.id,
                kind: RelationshipType::Blocked,
                user,
            })
            .collect(),
    ))
}

/// Someone else, by id: 404 for an id that is no user, 400 for myself.
async fn other(
    state: &AppState,
    caller: &Caller,
    id: Snowflake,
) -> ApiResult<proto::api::users::User> {
    if id == caller.user_id {
        return Err(ApiError::field(
            "user_id",
            "is you; one cannot block oneself",
        ));
    }
    read(state, id)
        .await?
        .map(proto::api::users::User::seen_by_others)
        .ok_or_else(|| ApiError::not_found("user"))
}

/// Block someone (`{"type": 2}`): no DMs or channel adds from them, no presence either way, our DM
/// refuses sends both ways, and my clients hide their messages. A DM they opened with me that I
/// never opened goes from my list. Blocking twice is blocking once.
#[utoipa::path(put, path = "/api/v1/users/@me/relationships/{user_id}", tag = "users",
    security(("bearer" = [])), params(("user_id" = String, Path)), request_body = PutRelationshipRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn block(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(user_id): ApiPath<Snowflake>,
    ApiJson(request): ApiJson<PutRelationshipRequest>,
) -> ApiResult<StatusCode> {
    let kind = request.parse()?;
    let user = other(&state, &caller, user_id).await?;
    let done = consent::block(&state.db, caller.user_id, user.id).await?;
    if done.new {
        // The edges' BLOCK_UPDATE first: by the time my clients hear RELATIONSHIP_ADD (after it,
        // on my inbox), my sessions have applied the block.
        let events = &state.events;
        let update = Event::BlockUpdate(BlockUpdate {
            user_id: caller.user_id,
            target_id: user.id,
            blocked: true,
            dm: done.dm,
        });
        events
            .publish(&update, &[caller.user_id, user.id], None)
            .await;
        let relationship = Event::RelationshipAdd(Relationship {
            id: user.id,
            kind,
            user: user.clone(),
        });
        events.publish(&relationship, &[caller.user_id], None).await;
        if let (true, Some(dm)) = (done.declined, done.dm) {
            // Told to me alone: they keep their DM, and do not learn that it left my list.
            let gone = Event::ChannelMemberRemove(MemberRef {
                channel_id: dm,
                user_id: caller.user_id,
                removed_by: None,
            });
            events.publish(&gone, &[caller.user_id], None).await;
        }
        events.flush().await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Stop blocking someone. Unblocking someone not blocked changes nothing.
#[utoipa::path(delete, path = "/api/v1/users/@me/relationships/{user_id}", tag = "users",
    security(("bearer" = [])), params(("user_id" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn unblock(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(user_id): ApiPath<Snowflake>,
) -> ApiResult<StatusCode> {
    let user = other(&state, &caller, user_id).await?;
    let (was, dm) = consent::unblock(&state.db, caller.user_id, user.id).await?;
    if was {
        let events = &state.events;
        let update = Event::BlockUpdate(BlockUpdate {
            user_id: caller.user_id,
            target_id: user.id,
            blocked: false,
            dm,
        });
        events
            .publish(&update, &[caller.user_id, user.id], None)
            .await;
        let relationship = Event::RelationshipRemove(RelationshipRef {
            id: user.id,
            kind: RelationshipType::Blocked,
        });
        events.publish(&relationship, &[caller.user_id], None).await;
        events.flush().await;
    }
    Ok(StatusCode::NO_CONTENT)
}
