//! `/api/v1/channels/{id}/messages`: history, and the REST twins of a socket's send, edit and
//! delete (the same checks and the same path into the chat stream), plus marking a channel read.
//!
//! Every request carries an access token; a channel the caller is not in is "unknown" (404), the
//! same answer as a channel that does not exist, so nobody learns which channels exist.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kit::tokens::AccessClaims;
use proto::Snowflake;
use proto::api::channels::{Channel, ChannelKind, MAX_MEMBER_IDS};
use proto::api::error::ErrorCode;
use proto::api::messages::{EditMessageRequest, HistoryPage, HistoryQuery, PostMessageRequest};
use proto::events::ReadState;
use proto::gateway::{MessageEdit, MessageSend};

use super::{ApiError, ApiQuery, Body, Routes, directory_error, error, not_found};
use crate::chat::ChatError;
use crate::directory::DirectoryError;

/// The caller, and the channel they asked about, as they see it (their role, its member count).
struct Caller {
    claims: AccessClaims,
    token: String,
    channel: Channel,
}

/// Checks the token and that the caller is in the channel.
async fn caller(routes: &Routes, headers: &HeaderMap, channel: &str) -> Result<Caller, ApiError> {
    let state = &routes.state;
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "send an access token as `Authorization: Bearer <token>`",
        ));
    };
    let Ok(claims) = state.verifier.verify_fetching(token).await else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "the access token was not accepted",
        ));
    };
    let Ok(channel) = channel.parse::<Snowflake>() else {
        return Err(not_found("channel"));
    };
    let channel = match state.directory.channel(token, channel).await {
        Ok(channel) => channel,
        Err(DirectoryError::Status(status)) if status == StatusCode::NOT_FOUND => {
            return Err(not_found("channel"));
        }
        Err(e) => return Err(directory_error(&e, "membership")),
    };
    Ok(Caller {
        claims,
        token: token.to_owned(),
        channel,
    })
}

/// Refuses a send or edit in a DM across a block (either way).
async fn open_for_sending(routes: &Routes, caller: &Caller) -> Result<(), ApiError> {
    if caller.channel.kind != ChannelKind::Dm {
        return Ok(());
    }
    let state = &routes.state;
    match state
        .directory
        .session_state(caller.claims.sub, Some(caller.channel.id), 0)
        .await
    {
        Ok(found) if found.closed.contains(&caller.channel.id) => {
            Err(chat_error(&ChatError::Closed))
        }
        Ok(_) => Ok(()),
        Err(DirectoryError::NotFound) => Err(not_found("channel")),
        Err(e) => {
            tracing::warn!(error = %e, "cannot check a DM with auth");
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ServiceUnavailable,
                "cannot check this DM right now",
            ))
        }
    }
}

fn message_id(raw: &str) -> Result<Snowflake, ApiError> {
    raw.parse().map_err(|_| not_found("message"))
}

fn chat_error(e: &ChatError) -> ApiError {
    let (status, code) = match e {
        ChatError::UnknownChannel => return not_found("channel"),
        ChatError::UnknownMessage => return not_found("message"),
        ChatError::Forbidden => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
        ChatError::InvalidContent(_) | ChatError::InvalidNonce => {
            (StatusCode::BAD_REQUEST, ErrorCode::ValidationFailed)
        }
        ChatError::RateLimited => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
        ChatError::Closed => (StatusCode::FORBIDDEN, ErrorCode::ConsentRequired),
        ChatError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::ValidationFailed),
        ChatError::Unavailable | ChatError::HistoryUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
        ),
    };
    error(status, code, e.to_string())
}

/// A JSON body, or a 400 that says what is wrong with it.
fn body<T: serde::de::DeserializeOwned>(raw: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(raw).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidBody,
            format!("the body is not {what}: {e}"),
        )
    })
}

/// `GET /api/v1/channels/{id}/messages?before|after|around=<id>&limit=<1..100>`
pub(super) async fn history(
    State(routes): State<Routes>,
    Path(channel): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller(&routes, &headers, &channel).await?;
    let (page, limit) = query.parse().map_err(|message| {
        error(
            StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed,
            message,
        )
    })?;
    let state = &routes.state;
    let messages = state
        .archive
        .page(caller.channel.id, page, limit)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "history read failed");
            chat_error(&ChatError::HistoryUnavailable)
        })?;
    // Authors by id, so every page shows current names and avatars: members in one request,
    // anyone who has left one by one.
    let wanted: Vec<Snowflake> = messages
        .iter()
        .map(|m| m.author_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut authors: Vec<_> = Vec::new();
    for ids in wanted.chunks(MAX_MEMBER_IDS) {
        match state
            .directory
            .members_by_id(&caller.token, caller.channel.id, ids)
            .await
        {
            Ok(members) => authors.extend(members.into_iter().map(|m| m.user)),
            Err(e) => tracing::debug!(error = %e, "authors could not be resolved"),
        }
    }
    let missing: Vec<Snowflake> = wanted
        .iter()
        .filter(|id| !authors.iter().any(|a| a.id == **id))
        .copied()
        .collect();
    let former = missing
        .iter()
        .map(|&id| state.directory.user(&caller.token, id));
    for found in futures::future::join_all(former).await {
        match found {
            Ok(user) => authors.push(user),
            Err(e) => tracing::debug!(error = %e, "an author could not be resolved"),
        }
    }
    Ok(Json(HistoryPage { messages, authors }).into_response())
}

/// `POST /api/v1/channels/{id}/messages` `{"content", "nonce"?}`
pub(super) async fn send(
    State(routes): State<Routes>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    Body(raw): Body,
) -> Result<Response, ApiError> {
    let caller = caller(&routes, &headers, &channel).await?;
    let post: PostMessageRequest = body(&raw, "a message")?;
    open_for_sending(&routes, &caller).await?;
    let send = MessageSend {
        channel_id: caller.channel.id,
        content: post.content,
        nonce: post.nonce,
    };
    let message = routes
        .state
        .chat
        .send(caller.claims.sub, send)
        .await
        .map_err(|e| chat_error(&e))?;
    Ok(Json(message).into_response())
}

/// `PATCH /api/v1/channels/{id}/messages/{message_id}` `{"content"}`
pub(super) async fn edit(
    State(routes): State<Routes>,
    Path((channel, message)): Path<(String, String)>,
    headers: HeaderMap,
    Body(raw): Body,
) -> Result<Response, ApiError> {
    let caller = caller(&routes, &headers, &channel).await?;
    let message_id = message_id(&message)?;
    let edit: EditMessageRequest = body(&raw, "an edit")?;
    open_for_sending(&routes, &caller).await?;
    let edit = MessageEdit {
        channel_id: caller.channel.id,
        message_id,
        content: edit.content,
        nonce: None,
    };
    let state = &routes.state;
    let edited = state
        .chat
        .edit(caller.claims.sub, edit, &state.archive)
        .await
        .map_err(|e| chat_error(&e))?;
    Ok(Json(edited).into_response())
}

/// `DELETE /api/v1/channels/{id}/messages/{message_id}`
pub(super) async fn delete(
    State(routes): State<Routes>,
    Path((channel, message)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller(&routes, &headers, &channel).await?;
    let message_id = message_id(&message)?;
    let me = caller.claims.sub;
    let moderates = caller.channel.moderated().unwrap_or(false);
    let state = &routes.state;
    let deleted = state
        .chat
        .delete(me, caller.channel.id, message_id, moderates, &state.archive)
        .await;
    deleted.map_err(|e| chat_error(&e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/channels/{id}/messages/{message_id}/ack`: the caller has read the channel up to
/// this message. The marker only moves forward.
pub(super) async fn ack(
    State(routes): State<Routes>,
    Path((channel, message)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller(&routes, &headers, &channel).await?;
    let message_id = message_id(&message)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if message_id.unix_ms() > now + 60_000 {
        return Err(error(
            StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed,
            "that message id is from the future",
        ));
    }
    let state = &routes.state;
    let read = ReadState {
        channel_id: caller.channel.id,
        user_id: caller.claims.sub,
        message_id,
    };
    state
        .archive
        .mark_read(read.user_id, read.channel_id, message_id)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot store a read marker");
            chat_error(&ChatError::HistoryUnavailable)
        })?;
    let receipts = caller.channel.member_count as usize <= state.config.receipts_max_members;
    state.chat.read(read, receipts).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
