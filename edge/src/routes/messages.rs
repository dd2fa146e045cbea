//! `/api/v1/channels/{id}/messages`: history, and the REST twins of a socket's send, edit and
//! delete (the same checks and the same path into the chat stream), plus marking a channel read.
//!
//! Every request carries an access token; a channel the caller is not in is "unknown" (404), the
//! same answer as a channel that does not exist, so nobody learns which channels exist.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{FromRequest, State};
use axum::http::StatusCode;
use kit::error::{ApiError, ApiResult};
use kit::extract::{ApiJson, ApiPath, ApiQuery, AuditLogReason};
use kit::tokens::AccessClaims;
use proto::Snowflake;
use proto::api::channels::{Channel, ChannelKind, MAX_MEMBER_IDS};
use proto::api::error::ErrorCode;
use proto::api::mentions::MentionRights;
use proto::api::messages::{
    EditMessageRequest, HistoryPage, HistoryQuery, Message, PostMessageRequest,
};
use proto::events::ReadState;
use proto::gateway::{MessageEdit, MessageSend};
use proto::permissions::Permissions;

use super::{Routes, Verified, directory_error, not_found};
use crate::chat::ChatError;
use crate::directory::DirectoryError;

/// The caller, and the channel they asked about, as they see it (their role, its member count).
pub(super) struct Caller {
    pub(super) claims: AccessClaims,
    pub(super) token: String,
    pub(super) channel: Channel,
}

/// Checks that the (verified) caller is in the channel.
pub(super) async fn member(
    routes: &Routes,
    verified: Verified,
    channel: Snowflake,
) -> ApiResult<Caller> {
    let Verified { claims, token } = verified;
    let channel = match routes.state.directory.channel(&token, channel).await {
        Ok(channel) => channel,
        Err(DirectoryError::Status(status)) if status == StatusCode::NOT_FOUND => {
            return Err(not_found("channel"));
        }
        Err(e) => return Err(directory_error(&e, "membership")),
    };
    Ok(Caller {
        claims,
        token,
        channel,
    })
}

/// Refuses a send or edit in a DM across a block (either way).
pub(super) async fn open_for_sending(routes: &Routes, caller: &Caller) -> Result<(), ApiError> {
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
            Err(ApiError::unavailable("cannot check this DM right now"))
        }
    }
}

pub(super) fn chat_error(e: &ChatError) -> ApiError {
    let code = match e {
        ChatError::UnknownChannel => return not_found("channel"),
        ChatError::UnknownMessage => return not_found("message"),
        ChatError::Forbidden => ErrorCode::Forbidden,
        ChatError::InvalidContent(_) | ChatError::InvalidNonce | ChatError::InvalidRequest(_) => {
            ErrorCode::ValidationFailed
        }
        ChatError::RateLimited => ErrorCode::RateLimited,
        ChatError::Slowmode(wait) => {
            return ApiError::rate_limited(*wait).with_message(e.to_string());
        }
        ChatError::Closed => ErrorCode::ConsentRequired,
        ChatError::Unavailable | ChatError::HistoryUnavailable => ErrorCode::ServiceUnavailable,
        ChatError::UnknownGuild => return not_found("server"),
        ChatError::TimedOut(_) => ErrorCode::TimedOut,
        ChatError::NotAllowed(_) => ErrorCode::Forbidden,
        ChatError::LimitReached(_) => ErrorCode::LimitReached,
        ChatError::Attachment {
            code,
            field,
            message,
        } => return ApiError::new(*code, e.to_string()).with_field(field, message),
    };
    ApiError::new(code, e.to_string())
}

/// What the caller may do in a server's channel (auth's answer: `permissions`); `None` for a
/// group channel or DM.
pub(super) fn server_permissions(caller: &Caller) -> Option<Permissions> {
    caller
        .channel
        .guild_id
        .map(|_| caller.channel.permissions.unwrap_or_default())
}

/// Refuses a send or edit in a server's channel the caller may not send in (403 `timed_out`
/// while they are timed out, else `forbidden`); answers the slowmode that applies to them.
async fn may_send(routes: &Routes, caller: &Caller, what: &str) -> ApiResult<u32> {
    let Some(permissions) = server_permissions(caller) else {
        return Ok(0);
    };
    if permissions.has(Permissions::SEND_MESSAGES) {
        let exempt =
            permissions.intersects(Permissions::MANAGE_MESSAGES | Permissions::MANAGE_CHANNELS);
        return Ok(if exempt {
            0
        } else {
            caller.channel.rate_limit_per_user.unwrap_or(0)
        });
    }
    Err(refusal(routes, caller, what).await)
}

/// Refuses files in a server's channel where the caller lacks ATTACH_FILES.
pub(super) async fn may_attach(routes: &Routes, caller: &Caller) -> ApiResult<()> {
    match server_permissions(caller) {
        Some(permissions) if !permissions.has(Permissions::ATTACH_FILES) => {
            Err(refusal(routes, caller, "attach files").await)
        }
        _ => Ok(()),
    }
}

/// Why a server's channel refused the caller: a time-out (`timed_out`), or the permissions
/// themselves (`forbidden`). Only their member object says which.
pub(super) async fn refusal(routes: &Routes, caller: &Caller, what: &str) -> ApiError {
    let guild = caller.channel.guild_id.expect("a server's channel");
    let until = match routes
        .state
        .directory
        .guild_member(&caller.token, guild)
        .await
    {
        Ok(member) => member
            .communication_disabled_until
            .filter(|until| *until > proto::clock::unix_ms()),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the member refused");
            None
        }
    };
    chat_error(&match until {
        Some(until) => ChatError::TimedOut(until),
        None => ChatError::NotAllowed(format!("you may not {what} in this channel")),
    })
}

/// What the caller may mention in the channel beyond people: MENTION_EVERYONE, and the server's
/// mentionable roles (asked of auth only when `content` names a role and the caller lacks
/// MENTION_EVERYONE, which mentions any).
async fn mention_rights(routes: &Routes, caller: &Caller, content: &str) -> MentionRights {
    let Some(guild) = caller.channel.guild_id else {
        return MentionRights::outside_servers();
    };
    let Some(permissions) = server_permissions(caller) else {
        return MentionRights::default();
    };
    let everyone = permissions.has(Permissions::MENTION_EVERYONE);
    let roles = if everyone || !content.contains("<@&") {
        Vec::new()
    } else {
        match routes.state.directory.guild_roles(guild).await {
            Ok(roles) => roles
                .into_iter()
                .filter(|r| r.mentionable && r.id != guild)
                .map(|r| r.id)
                .collect(),
            Err(e) => {
                // Role mentions are then not honoured; the message still goes.
                tracing::warn!(error = %e, "cannot read a server's roles for mentions");
                Vec::new()
            }
        }
    };
    MentionRights { everyone, roles }
}

/// `GET /api/v1/channels/{id}/messages?before|after|around=<id>&limit=<1..100>`
pub(super) async fn history(
    State(routes): State<Routes>,
    verified: Verified,
    ApiPath(channel): ApiPath<Snowflake>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<HistoryPage>> {
    let caller = member(&routes, verified, channel).await?;
    let (page, limit) = query.parse().map_err(ApiError::invalid)?;
    if server_permissions(&caller).is_some_and(|p| !p.has(Permissions::READ_MESSAGE_HISTORY)) {
        return Err(chat_error(&ChatError::NotAllowed(
            "you may not read this channel's history".to_owned(),
        )));
    }
    let state = &routes.state;
    let mut messages = state
        .archive
        .page_for(caller.claims.sub, caller.channel.id, page, limit)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "history read failed");
            chat_error(&ChatError::HistoryUnavailable)
        })?;
    for message in &mut messages {
        state.chat.attachments().sign(message);
    }
    // Authors by id, so every page shows current names and avatars; the people mentioned are
    // named in the same lookup.
    let authors: BTreeSet<Snowflake> = messages.iter().map(|m| m.author_id).collect();
    let people = users(&routes, &caller, &shown(&messages)).await;
    name_mentions(&mut messages, &people);
    let authors = people
        .into_iter()
        .filter(|u| authors.contains(&u.id))
        .collect();
    Ok(Json(HistoryPage { messages, authors }))
}

/// Everyone `messages` show, distinct: their authors and the people they mention.
pub(super) fn shown(messages: &[Message]) -> Vec<Snowflake> {
    messages
        .iter()
        .flat_map(|m| std::iter::once(m.author_id).chain(m.mentions.iter().map(|u| u.id)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Names the people `messages` mention from `people`, their current profiles (the store keeps
/// only ids).
pub(super) fn name_mentions(messages: &mut [Message], people: &[proto::api::users::User]) {
    for message in messages {
        message.name_mentions(people);
    }
}

/// The current profiles of `wanted` (distinct ids): the channel's members in one request per
/// hundred, anyone who has left one by one. Who cannot be found is left out.
pub(super) async fn users(
    routes: &Routes,
    caller: &Caller,
    wanted: &[Snowflake],
) -> Vec<proto::api::users::User> {
    users_in(routes, &caller.token, caller.channel.id, wanted).await
}

/// The current profiles of `wanted` (distinct ids), as a member of `channel` with `token` sees
/// them.
pub(super) async fn users_in(
    routes: &Routes,
    token: &str,
    channel: Snowflake,
    wanted: &[Snowflake],
) -> Vec<proto::api::users::User> {
    let state = &routes.state;
    let mut found: Vec<_> = Vec::new();
    for ids in wanted.chunks(MAX_MEMBER_IDS) {
        match state.directory.members_by_id(token, channel, ids).await {
            Ok(members) => found.extend(members.into_iter().map(|m| m.user)),
            Err(e) => tracing::debug!(error = %e, "users could not be resolved"),
        }
    }
    and_former(routes, token, wanted, found).await
}

/// `found` (members), and the profile of each of `wanted` not among them (no longer a member).
pub(super) async fn and_former(
    routes: &Routes,
    token: &str,
    wanted: &[Snowflake],
    mut found: Vec<proto::api::users::User>,
) -> Vec<proto::api::users::User> {
    let former = wanted
        .iter()
        .filter(|id| !found.iter().any(|a| a.id == **id))
        .map(|&id| routes.state.directory.user(token, id));
    for user in futures::future::join_all(former).await {
        match user {
            Ok(user) => found.push(user),
            Err(e) => tracing::debug!(error = %e, "a user could not be resolved"),
        }
    }
    found
}

/// `POST /api/v1/channels/{id}/messages` `{"content", "nonce"?, "message_reference"?,
/// "attachments"?}`, or Discord's multipart body of `payload_json` and `files[n]`
/// ([`super::multipart`]).
pub(super) async fn send(
    State(routes): State<Routes>,
    verified: Verified,
    ApiPath(channel): ApiPath<Snowflake>,
    request: axum::extract::Request,
) -> ApiResult<Json<Message>> {
    let content_type = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let boundary = super::multipart::boundary(content_type.as_deref()).transpose()?;
    // Who may send is known before any file is read.
    let caller = member(&routes, verified, channel).await?;
    open_for_sending(&routes, &caller).await?;
    let slowmode = may_send(&routes, &caller, "send messages").await?;
    let post = match boundary {
        None => {
            let ApiJson(post) =
                ApiJson::<PostMessageRequest>::from_request(request, &routes).await?;
            post
        }
        Some(boundary) => {
            let attachments = routes.state.chat.attachments();
            // The body is read here, not by an extractor: the request's body limit is for JSON,
            // and files are bounded one by one instead.
            let parts = super::multipart::read(
                request.into_body(),
                boundary,
                routes.state.config.max_body_bytes,
                attachments.max_file_size(),
                || may_attach(&routes, &caller),
            )
            .await?;
            let mut post = parts.post;
            if !parts.files.is_empty() {
                let uploads = attachments
                    .upload(&caller.token, caller.channel.id, parts.files)
                    .await?;
                post.attachments = super::multipart::named(&post, uploads);
            }
            post
        }
    };
    if !post.attachments.is_empty() {
        may_attach(&routes, &caller).await?;
    }
    let rights = mention_rights(&routes, &caller, &post.content).await;
    let send = MessageSend {
        channel_id: caller.channel.id,
        content: post.content,
        nonce: post.nonce,
        message_reference: post.message_reference,
        attachments: post.attachments,
        flags: crate::chat::embed_flags(post.flags, server_permissions(&caller)),
    };
    let message = routes
        .state
        .chat
        .send(
            caller.claims.sub,
            send,
            slowmode,
            &rights,
            caller.channel.guild_id,
            &routes.state.archive,
        )
        .await
        .map_err(|e| chat_error(&e))?;
    Ok(Json(message))
}

/// `PATCH /api/v1/channels/{id}/messages/{message_id}` `{"content"?, "flags"?}`: new text
/// (the author's), and/or `flags` with SUPPRESS_EMBEDS to remove its link previews for
/// everyone (the author, or one who may delete others' messages there).
pub(super) async fn edit(
    State(routes): State<Routes>,
    verified: Verified,
    ApiPath((channel, message_id)): ApiPath<(Snowflake, Snowflake)>,
    ApiJson(edit): ApiJson<EditMessageRequest>,
) -> ApiResult<Json<Message>> {
    let caller = member(&routes, verified, channel).await?;
    let state = &routes.state;
    if edit.content.is_none() && edit.flags.is_none() {
        return Err(ApiError::field(
            "content",
            "give `content`, `flags` or both",
        ));
    }
    let mut edited = None;
    if let Some(content) = edit.content {
        open_for_sending(&routes, &caller).await?;
        may_send(&routes, &caller, "edit messages").await?;
        let rights = mention_rights(&routes, &caller, &content).await;
        let edit = MessageEdit {
            channel_id: caller.channel.id,
            message_id,
            content,
            nonce: None,
        };
        edited = Some(
            state
                .chat
                .edit(
                    caller.claims.sub,
                    edit,
                    &rights,
                    caller.channel.guild_id,
                    &state.archive,
                )
                .await
                .map_err(|e| chat_error(&e))?,
        );
    }
    if let Some(flags) = edit.flags {
        let moderates = match server_permissions(&caller) {
            Some(permissions) => permissions.has(Permissions::MANAGE_MESSAGES),
            None => caller.channel.moderated().unwrap_or(false),
        };
        edited = Some(
            state
                .chat
                .set_flags(
                    caller.claims.sub,
                    &caller.channel,
                    message_id,
                    flags,
                    moderates,
                    &state.archive,
                )
                .await
                .map_err(|e| chat_error(&e))?,
        );
    }
    Ok(Json(edited.expect("content or flags was given")))
}

/// `DELETE /api/v1/channels/{id}/messages/{message_id}`
pub(super) async fn delete(
    State(routes): State<Routes>,
    verified: Verified,
    ApiPath((channel, message_id)): ApiPath<(Snowflake, Snowflake)>,
    AuditLogReason(reason): AuditLogReason,
) -> ApiResult<StatusCode> {
    let caller = member(&routes, verified, channel).await?;
    let me = caller.claims.sub;
    let moderates = match server_permissions(&caller) {
        Some(permissions) => permissions.has(Permissions::MANAGE_MESSAGES),
        None => caller.channel.moderated().unwrap_or(false),
    };
    let state = &routes.state;
    let deleted = state
        .chat
        .delete(me, caller.channel.id, message_id, moderates, &state.archive)
        .await;
    let message = match deleted {
        Ok(message) => message,
        // Someone else's message in a server: a time-out may be what took the right away.
        Err(ChatError::Forbidden) if caller.channel.guild_id.is_some() => {
            return Err(refusal(&routes, &caller, "delete others' messages").await);
        }
        Err(e) => return Err(chat_error(&e)),
    };
    if let Some(guild) = caller.channel.guild_id
        && message.author_id != me
    {
        crate::session::record_delete(state, guild, me, &message, reason).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/channels/{id}/messages/{message_id}/ack`: the caller has read the channel up to
/// this message. The marker only moves forward.
pub(super) async fn ack(
    State(routes): State<Routes>,
    verified: Verified,
    ApiPath((channel, message_id)): ApiPath<(Snowflake, Snowflake)>,
) -> ApiResult<StatusCode> {
    let caller = member(&routes, verified, channel).await?;
    if message_id.unix_ms() > proto::clock::unix_ms() + 60_000 {
        return Err(ApiError::invalid("that message id is from the future"));
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
    Ok(StatusCode::NO_CONTENT)
}
