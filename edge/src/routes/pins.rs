//! `/api/v1/channels/{id}/pins…`: Discord's pin routes. A pin or unpin goes through the chat
//! stream as CHANNEL_PINS_UPDATE (a pin followed by its system message), like a reaction.
//!
//! Who may: MANAGE_MESSAGES in a server's channel; any member of a group channel or DM (as on
//! Discord), not across a block. Listing takes READ_MESSAGE_HISTORY in a server's channel. A
//! channel one may not see is unknown (404), as everywhere.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kit::error::ApiResult;
use kit::extract::ApiPath;
use proto::Snowflake;
use proto::api::messages::Message;
use proto::permissions::Permissions;

use super::messages::{Caller, chat_error, member, open_for_sending, refusal, server_permissions};
use super::{Routes, Verified};
use crate::chat::ChatError;

/// `PUT /api/v1/channels/{id}/pins/{message_id}`: 204, also when it was pinned already.
pub(super) async fn pin(
    routes: State<Routes>,
    verified: Verified,
    path: ApiPath<(Snowflake, Snowflake)>,
) -> ApiResult<StatusCode> {
    change(routes, verified, path, true).await
}

/// `DELETE /api/v1/channels/{id}/pins/{message_id}`: 204, also when it was not pinned.
pub(super) async fn unpin(
    routes: State<Routes>,
    verified: Verified,
    path: ApiPath<(Snowflake, Snowflake)>,
) -> ApiResult<StatusCode> {
    change(routes, verified, path, false).await
}

async fn change(
    State(routes): State<Routes>,
    verified: Verified,
    ApiPath((channel, message)): ApiPath<(Snowflake, Snowflake)>,
    pin: bool,
) -> ApiResult<StatusCode> {
    let caller = member(&routes, verified, channel).await?;
    open_for_sending(&routes, &caller).await?;
    if let Some(permissions) = server_permissions(&caller)
        && !permissions.has(Permissions::MANAGE_MESSAGES | Permissions::READ_MESSAGE_HISTORY)
    {
        return Err(refusal(&routes, &caller, "pin messages").await);
    }
    let state = &routes.state;
    state
        .chat
        .pin(
            caller.claims.sub,
            caller.channel.id,
            caller.channel.guild_id,
            message,
            pin,
            &state.archive,
        )
        .await
        .map_err(|e| chat_error(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/channels/{id}/pins`: the pinned messages, the most recently pinned first.
pub(super) async fn list(
    State(routes): State<Routes>,
    verified: Verified,
    ApiPath(channel): ApiPath<Snowflake>,
) -> ApiResult<Json<Vec<Message>>> {
    let caller: Caller = member(&routes, verified, channel).await?;
    if server_permissions(&caller).is_some_and(|p| !p.has(Permissions::READ_MESSAGE_HISTORY)) {
        return Err(chat_error(&ChatError::NotAllowed(
            "you may not read this channel's history".to_owned(),
        )));
    }
    let pinned = routes
        .state
        .archive
        .pinned(caller.channel.id)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "pins read failed");
            chat_error(&ChatError::HistoryUnavailable)
        })?;
    let attachments = routes.state.chat.attachments();
    let mut pinned: Vec<Message> = pinned
        .into_iter()
        .map(|(mut m, _)| {
            attachments.sign(&mut m);
            m
        })
        .collect();
    let mentioned: Vec<Snowflake> = pinned
        .iter()
        .flat_map(Message::mentioned_ids)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !mentioned.is_empty() {
        let people = super::messages::users(&routes, &caller, &mentioned).await;
        super::messages::name_mentions(&mut pinned, &people);
    }
    Ok(Json(pinned))
}
