//! `/api/v1/users/*`: profiles. Reads go through the Redis cache; an update invalidates it and
//! publishes USER_UPDATE.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use kit::error::{ApiError, ApiResult};
use kit::extract::{ApiJson, ApiPath};
use proto::Snowflake;
use proto::api::error::ErrorBody;
use proto::api::names::Username;
use proto::api::users::{UpdateProfileRequest, User, UserProfile};
use proto::events::Event;

use crate::channels;
use crate::extract::Caller;
use crate::guilds;
use crate::profiles;
use crate::state::AppState;

/// A profile by id, from the cache or else PostgreSQL (then cached).
pub async fn read(state: &AppState, id: Snowflake) -> ApiResult<Option<User>> {
    if let Some(user) = state.cache.get(id).await {
        return Ok(Some(user));
    }
    let user = profiles::by_id(&state.db, id).await?;
    if let Some(user) = &user {
        state.cache.put(user).await;
    }
    Ok(user)
}

/// The profiles of `ids` that exist, as [`read`] reads one: from the cache (one MGET), and the
/// misses from PostgreSQL (one query), put in the cache.
pub async fn read_many(
    state: &AppState,
    ids: &[Snowflake],
) -> Result<HashMap<Snowflake, User>, sqlx::Error> {
    let cached = state.cache.get_many(ids).await;
    let mut found: HashMap<Snowflake, User> = HashMap::with_capacity(ids.len());
    let mut missed: Vec<i64> = Vec::new();
    for (id, user) in ids.iter().zip(cached) {
        match user {
            Some(user) => {
                found.insert(*id, user);
            }
            None => missed.push(id.as_i64()),
        }
    }
    if !missed.is_empty() {
        for user in profiles::by_ids(&state.db, &missed).await? {
            state.cache.put(&user).await;
            found.insert(user.id, user);
        }
    }
    Ok(found)
}

fn as_seen_by(user: User, caller: &Caller) -> User {
    if user.id == caller.user_id {
        user
    } else {
        user.seen_by_others()
    }
}

/// My own profile, with my real status.
#[utoipa::path(get, path = "/api/v1/users/@me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<User>> {
    read(&state, caller.user_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))
}

/// Change my display name, avatar, bio or status. Leave a field out to keep it; `null` clears it.
#[utoipa::path(patch, path = "/api/v1/users/@me", tag = "users", security(("bearer" = [])),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, description = "The updated profile", body = User),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<UpdateProfileRequest>,
) -> ApiResult<Json<User>> {
    let changes = request.parse()?;
    if let Some(Some(url)) = &changes.avatar_url {
        state
            .settings
            .media_image(url.as_str(), "avatars", caller.user_id, "avatar_url")?;
    }
    let user = profiles::update(&state.db, caller.user_id, changes)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
    state.cache.invalidate(user.id).await;
    // The owner sees their real status; everyone sharing a channel sees the public view.
    state
        .events
        .publish(&Event::UserUpdate(user.clone()), &[user.id], None)
        .await;
    let public = Event::UserUpdate(user.clone().seen_by_others());
    let shared_channels = channels::ids_of(&state.db, user.id).await?;
    state.events.to_channels(&public, &shared_channels).await;
    // And to each server's subject: its members see the new name and avatar on messages and in
    // the member list (a server's channels have no channel members to carry it).
    for guild in guilds::ids_of(&state.db, user.id).await? {
        state.events.guild(&public, guild, &[]).await;
    }
    state.events.flush().await;
    Ok(Json(user))
}

/// Someone's profile by id. `invisible` shows as `offline` to anyone but its owner.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "A user id")),
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn by_id(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Snowflake>,
) -> ApiResult<Json<User>> {
    read(&state, id)
        .await?
        .map(|user| Json(as_seen_by(user, &caller)))
        .ok_or_else(|| ApiError::not_found("user"))
}

/// Someone's profile card, as Discord's `GET /users/{id}/profile`: the profile, and the servers
/// and group channels the caller shares with them (only places the caller is in, so it tells
/// nobody where anyone else is).
#[utoipa::path(get, path = "/api/v1/users/{id}/profile", operation_id = "user_profile", tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "A user id")),
    responses((status = 200, body = UserProfile), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn profile(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Snowflake>,
) -> ApiResult<Json<UserProfile>> {
    let user = read(&state, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let mutual_guilds = profiles::mutual_guilds(&state.db, caller.user_id, id).await?;
    let mutual_channels = profiles::mutual_channels(&state.db, caller.user_id, id).await?;
    Ok(Json(UserProfile {
        user: as_seen_by(user, &caller),
        mutual_guilds,
        mutual_channels,
    }))
}

/// Someone's profile by username (case-insensitive).
#[utoipa::path(get, path = "/api/v1/users/by-username/{username}", tag = "users",
    security(("bearer" = [])),
    params(("username" = String, Path)),
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn by_username(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<User>> {
    let username = Username::parse(&username).map_err(|_| ApiError::not_found("user"))?;
    let id = profiles::id_by_username(&state.db, &username)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    read(&state, id)
        .await?
        .map(|user| Json(as_seen_by(user, &caller)))
        .ok_or_else(|| ApiError::not_found("user"))
}
