//! `/api/v1/channels/{id}/messages/{message_id}/reactions…`: Discord's reaction routes. Each
//! change goes through the chat stream as MESSAGE_REACTION_ADD, _REMOVE or _REMOVE_ALL, like an
//! edit, so every device, every resume and every history page sees it in the stream's order.
//!
//! Who may: reacting takes ADD_REACTIONS and READ_MESSAGE_HISTORY in a server's channel (any
//! member of a group channel or DM, not across a block); taking back one's own reaction, nothing
//! more; removing someone else's, or all of a message's, MANAGE_MESSAGES (a group channel's owner
//! or moderators). A channel one may not see is unknown (404), as everywhere.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kit::error::{ApiError, ApiResult};
use kit::extract::{ApiPath, ApiQuery};
use proto::Snowflake;
use proto::api::reactions::{ReactionEmoji, ReactorsQuery};
use proto::api::users::User;
use proto::permissions::Permissions;

use super::messages::{
    Caller, chat_error, member, open_for_sending, refusal, server_permissions, users,
};
use super::{Routes, Verified};
use crate::chat::ChatError;

/// Whose reaction a path names: `@me`, or a user id.
fn whose(caller: &Caller, user: &str) -> ApiResult<Snowflake> {
    if user == "@me" {
        return Ok(caller.claims.sub);
    }
    user.parse()
        .map_err(|_| ApiError::invalid("the user is `@me` or a user id"))
}

fn emoji(raw: &str) -> ApiResult<ReactionEmoji> {
    ReactionEmoji::parse(raw).map_err(ApiError::invalid)
}

/// Whether the caller moderates the channel: MANAGE_MESSAGES in a server, owner or moderator of
/// a group channel.
fn moderates(caller: &Caller) -> bool {
    match server_permissions(caller) {
        Some(permissions) => permissions.has(Permissions::MANAGE_MESSAGES),
        None => caller.channel.moderated().unwrap_or(false),
    }
}

/// `PUT …/reactions/{emoji}/@me`: 204, also when the reaction was already there.
pub(super) async fn add(
    State(routes): State<Routes>,
    verified: Verified,
    ApiPath((channel, message, raw_emoji, user)): ApiPath<(Snowflake, Snowflake, String, String)>,
) -> ApiResult<StatusCode> {
    let caller = member(&routes, verified, channel).await?;
    if user != "@me" {
        return Err(ApiError::invalid("one reacts only as oneself: `@me`"));
    }
    let emoji = emoji(&raw_emoji)?;
    open_for_sending(&routes, &caller).await?;
    if let Some(permissions) = server_permissions(&caller)
        && !permissions.has(Permissions::ADD_REACTIONS | Permissions::READ_MESSAGE_HISTORY)
    {
        return Err(refusal(&routes, &caller, "add reactions").await);
    }
    let state = &routes.state;
    state
        .chat
        .react(
            caller.claims.sub,
            caller.channel.id,
            message,
            &emoji,
            true,
            &state.archive,
        )
        .await
        .map_err(|e| chat_error(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE …/reactions/{emoji}/@me` or `…/{user_id}` (someone else's: MANAGE_MESSAGES): 204,
/// also when there was no such reaction.
pub(super) async fn remove(
    State(routes): State<Routes>,
    verified: Verified,
    ApiPath((channel, message, raw_emoji, user)): ApiPath<(Snowflake, Snowflake, String, String)>,
) -> ApiResult<StatusCode> {
    let caller = member(&routes, verified, channel).await?;
    let emoji = emoji(&raw_emoji)?;
    let target = whose(&caller, &user)?;
    if target != caller.claims.sub && !moderates(&caller) {
        return Err(if caller.channel.guild_id.is_some() {
            refusal(&routes, &caller, "remove others' reactions").await
        } else {
            chat_error(&ChatError::NotAllowed(
                "only the channel's owner and moderators may remove others' reactions".to_owned(),
            ))
        });
    }
    let state = &routes.state;
    state
        .chat
        .react(
            target,
            caller.channel.id,
            message,
            &emoji,
            false,
            &state.archive,
        )
        .await
        .map_err(|e| chat_error(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE …/reactions`: every reaction of the message (MANAGE_MESSAGES).
pub(super) async fn clear(
    State(routes): State<Routes>,
    verified: Verified,
    ApiPath((channel, message)): ApiPath<(Snowflake, Snowflake)>,
) -> ApiResult<StatusCode> {
    let caller = member(&routes, verified, channel).await?;
    if !moderates(&caller) {
        return Err(if caller.channel.guild_id.is_some() {
            refusal(&routes, &caller, "remove reactions").await
        } else {
            chat_error(&ChatError::NotAllowed(
                "only the channel's owner and moderators may remove reactions".to_owned(),
            ))
        });
    }
    let state = &routes.state;
    state
        .chat
        .clear_reactions(caller.channel.id, message, &state.archive)
        .await
        .map_err(|e| chat_error(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/reactions/{emoji}?after=&limit=`: who reacted with it, in user-id order.
pub(super) async fn reactors(
    State(routes): State<Routes>,
    verified: Verified,
    ApiPath((channel, message, raw_emoji)): ApiPath<(Snowflake, Snowflake, String)>,
    ApiQuery(query): ApiQuery<ReactorsQuery>,
) -> ApiResult<Json<Vec<User>>> {
    let caller = member(&routes, verified, channel).await?;
    let emoji = emoji(&raw_emoji)?;
    let (after, limit) = query.parse().map_err(ApiError::invalid)?;
    if server_permissions(&caller).is_some_and(|p| !p.has(Permissions::READ_MESSAGE_HISTORY)) {
        return Err(chat_error(&ChatError::NotAllowed(
            "you may not read this channel's history".to_owned(),
        )));
    }
    let state = &routes.state;
    let ids = state
        .archive
        .reactors(caller.channel.id, message, emoji.as_str(), after, limit)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "reactors read failed");
            chat_error(&ChatError::HistoryUnavailable)
        })?;
    let mut found = users(&routes, &caller, &ids).await;
    found.sort_by_key(|u| u.id);
    Ok(Json(found))
}
