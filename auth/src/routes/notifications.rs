//! Notification settings (`/api/v1/users/@me/guilds/{guild_id}/settings`, `@me` for DMs and group
//! channels; `/api/v1/users/@me/guilds/settings`) and browsers' push subscriptions
//! (`/api/v1/users/@me/push-subscriptions`), in Discord's shapes. A settings change reaches every
//! device of the user as USER_GUILD_SETTINGS_UPDATE.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kit::error::{ApiError, ApiResult};
use kit::extract::ApiJson;
use proto::Snowflake;
use proto::api::error::ErrorBody;
use proto::api::notifications::{
    PushSubscription, PushUnsubscribe, UpdateUserGuildSettingsRequest, UserGuildSettings,
};
use proto::events::Event;

use crate::extract::Caller;
use crate::notifications::{self, SettingsError};
use crate::state::AppState;

/// My notification settings: one entry per server (and `guild_id` null for DMs and group
/// channels) I changed anything in; the others have the defaults.
#[utoipa::path(get, path = "/api/v1/users/@me/guilds/settings", operation_id = "user_guild_settings", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<UserGuildSettings>), (status = 401, body = ErrorBody)))]
pub async fn settings(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<UserGuildSettings>>> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(
        notifications::of_user(&mut conn, caller.user_id).await?,
    ))
}

/// Change my notification settings of a server (`@me`: my DMs and group channels): what I am
/// told of (0 all messages, 1 only mentions, 2 nothing), a mute (until `mute_config.end_time`,
/// or until turned back off), whether @everyone and role mentions count, and per-channel
/// overrides (each named channel's replaced; 3 follows the server). A field left out keeps its
/// value.
#[utoipa::path(patch, path = "/api/v1/users/@me/guilds/{guild_id}/settings", operation_id = "update_user_guild_settings", tag = "users",
    security(("bearer" = [])),
    params(("guild_id" = String, Path, description = "A server id, or `@me`")),
    request_body = UpdateUserGuildSettingsRequest,
    responses((status = 200, body = UserGuildSettings), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(guild_id): Path<String>,
    ApiJson(request): ApiJson<UpdateUserGuildSettingsRequest>,
) -> ApiResult<Json<UserGuildSettings>> {
    let guild = match guild_id.as_str() {
        "@me" => None,
        other => Some(
            other
                .parse::<u64>()
                .map(Snowflake::from_u64)
                .map_err(|_| ApiError::not_found("guild"))?,
        ),
    };
    request.check()?;
    let settings = notifications::update(&state.db, caller.user_id, guild, &request)
        .await
        .map_err(|e| match e {
            SettingsError::Invalid { field, message } => ApiError::field(&field, message),
            SettingsError::UnknownGuild => ApiError::not_found("guild"),
            SettingsError::Database(e) => ApiError::from(e),
        })?;
    state
        .events
        .publish(
            &Event::UserGuildSettingsUpdate(settings.clone()),
            &[caller.user_id],
            None,
        )
        .await;
    state.events.flush().await;
    Ok(Json(settings))
}

/// Subscribe this browser to Web Push (its `PushSubscription.toJSON()`): pushes tell me of
/// mentions and DMs while I am away. At most ten browsers per user; the oldest goes.
#[utoipa::path(post, path = "/api/v1/users/@me/push-subscriptions", tag = "users",
    security(("bearer" = [])),
    request_body = PushSubscription,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<PushSubscription>,
) -> ApiResult<StatusCode> {
    request.check()?;
    notifications::subscribe(&state.db, caller.user_id, &request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop pushes to a browser of mine.
#[utoipa::path(delete, path = "/api/v1/users/@me/push-subscriptions", tag = "users",
    security(("bearer" = [])),
    request_body = PushUnsubscribe,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<PushUnsubscribe>,
) -> ApiResult<StatusCode> {
    if notifications::unsubscribe(&state.db, Some(caller.user_id), &request.endpoint).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("push subscription"))
    }
}
