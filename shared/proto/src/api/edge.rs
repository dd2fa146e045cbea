//! The REST routes the edges serve, described for the one OpenAPI document (auth serves it at
//! `/api/v1/openapi.json`, with these under the tags `messages` and `presences` and an edge's
//! HTTP origin as their server). The handlers are the edge's (`edge/src/routes/`); these
//! functions only carry the description, so auth's document covers every route of the system
//! without auth depending on the edge. An edge test checks every route described here answers.

use super::error::ErrorBody;
use super::messages::{EditMessageRequest, HistoryPage, HistoryQuery, Message, PostMessageRequest};
use super::presence::{Presence, PresencesQuery};
use super::reactions::ReactorsQuery;
use super::search::{SearchQuery, SearchResults};
use super::users::User;

/// A page of a channel's history, newest first, with the current profile of every author on it.
/// Includes what the chat stream holds and the store does not yet have. In a server's channel:
/// READ_MESSAGE_HISTORY (403 `forbidden`).
#[utoipa::path(get, path = "/api/v1/channels/{id}/messages", tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "A channel id"), HistoryQuery),
    responses((status = 200, body = HistoryPage), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub fn message_history() {}

/// Send a message, as a socket's MESSAGE_SEND: answered once the chat stream stored it. A retried
/// send with the same nonce is stored once. In a server's channel: SEND_MESSAGES (403
/// `forbidden`; `timed_out` while timed out) and its slowmode (429).
#[utoipa::path(post, path = "/api/v1/channels/{id}/messages", tag = "messages",
    security(("bearer" = [])), params(("id" = String, Path, description = "A channel id")),
    request_body = PostMessageRequest,
    responses((status = 200, body = Message), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub fn send_message() {}

/// Edit one's own message (in a server's channel: SEND_MESSAGES, not timed out).
#[utoipa::path(patch, path = "/api/v1/channels/{id}/messages/{message_id}", tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "A channel id"),
           ("message_id" = String, Path, description = "A message id")),
    request_body = EditMessageRequest,
    responses((status = 200, body = Message), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub fn edit_message() {}

/// Delete a message: one's own, or any as the channel's owner or a moderator (in a server's
/// channel: with MANAGE_MESSAGES, recorded in the audit log with the reason).
#[utoipa::path(delete, path = "/api/v1/channels/{id}/messages/{message_id}", tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "A channel id"),
           ("message_id" = String, Path, description = "A message id"),
           ("X-Audit-Log-Reason" = Option<String>, Header, description = "Why, for the audit log (a moderator's delete in a server)")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub fn delete_message() {}

/// Mark the channel read up to a message (the marker only moves forward): the caller's other
/// devices, and in small channels the other members, get a MESSAGE_ACK.
#[utoipa::path(post, path = "/api/v1/channels/{id}/messages/{message_id}/ack", tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "A channel id"),
           ("message_id" = String, Path, description = "A message id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub fn mark_read() {}

/// React to a message with a Unicode emoji (URL-encoded), once per emoji: MESSAGE_REACTION_ADD
/// to the channel. 204 also when the reaction was there already. In a server's channel:
/// ADD_REACTIONS and READ_MESSAGE_HISTORY (403).
#[utoipa::path(put, path = "/api/v1/channels/{id}/messages/{message_id}/reactions/{emoji}/{user}",
    tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path, description = "A channel id"),
           ("message_id" = String, Path, description = "A message id"),
           ("emoji" = String, Path, description = "One Unicode emoji, URL-encoded"),
           ("user" = String, Path, description = "`@me`")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub fn add_reaction() {}

/// Take a reaction back: `@me`, or someone else's by user id (MANAGE_MESSAGES, or a group
/// channel's owner or moderators): MESSAGE_REACTION_REMOVE. 204 also when there was none.
#[utoipa::path(delete, path = "/api/v1/channels/{id}/messages/{message_id}/reactions/{emoji}/{user}",
    tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path, description = "A channel id"),
           ("message_id" = String, Path, description = "A message id"),
           ("emoji" = String, Path, description = "One Unicode emoji, URL-encoded"),
           ("user" = String, Path, description = "`@me` or a user id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub fn remove_reaction() {}

/// Who reacted with an emoji, in user-id order, paged (`after`, `limit`).
#[utoipa::path(get, path = "/api/v1/channels/{id}/messages/{message_id}/reactions/{emoji}",
    tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path, description = "A channel id"),
           ("message_id" = String, Path, description = "A message id"),
           ("emoji" = String, Path, description = "One Unicode emoji, URL-encoded"),
           ReactorsQuery),
    responses((status = 200, body = Vec<User>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub fn reactors() {}

/// Remove every reaction of a message (MANAGE_MESSAGES, or a group channel's owner or
/// moderators): MESSAGE_REACTION_REMOVE_ALL.
#[utoipa::path(delete, path = "/api/v1/channels/{id}/messages/{message_id}/reactions",
    tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path, description = "A channel id"),
           ("message_id" = String, Path, description = "A message id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub fn clear_reactions() {}

/// Pin a message (MANAGE_MESSAGES in a server's channel; any member of a group channel or DM):
/// CHANNEL_PINS_UPDATE and the system message "… pinned a message" (type 6) to the channel.
/// 204 also when it was pinned already; 409 `limit_reached` past 50 pins; 400 for a system
/// message.
#[utoipa::path(put, path = "/api/v1/channels/{id}/pins/{message_id}",
    tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path, description = "A channel id"),
           ("message_id" = String, Path, description = "A message id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 429, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub fn pin_message() {}

/// Unpin a message (as pinning): CHANNEL_PINS_UPDATE. 204 also when it was not pinned.
#[utoipa::path(delete, path = "/api/v1/channels/{id}/pins/{message_id}",
    tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path, description = "A channel id"),
           ("message_id" = String, Path, description = "A message id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 429, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub fn unpin_message() {}

/// The channel's pinned messages, the most recently pinned first (at most 50).
#[utoipa::path(get, path = "/api/v1/channels/{id}/pins",
    tag = "messages", security(("bearer" = [])),
    params(("id" = String, Path, description = "A channel id")),
    responses((status = 200, body = Vec<Message>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub fn pins() {}

/// Search a server's messages, newest first: only in the channels the caller may read now
/// (VIEW_CHANNEL and READ_MESSAGE_HISTORY). Each hit comes with up to two messages on either
/// side (`hit: true` marks it). 400 for a bad parameter; 503 while the search service is
/// rebuilding its index.
#[utoipa::path(get, path = "/api/v1/guilds/{id}/messages/search", tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "A server id"), SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub fn search_guild_messages() {}

/// Search one channel's messages (a DM, a group channel, or a server's channel with
/// READ_MESSAGE_HISTORY), as the server search does.
#[utoipa::path(get, path = "/api/v1/channels/{id}/messages/search", tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "A channel id"), SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub fn search_channel_messages() {}

/// The presence of up to 100 users, as the caller may see it: anyone they may not see is
/// `offline` with no last-seen; their own real status.
#[utoipa::path(get, path = "/api/v1/presences", tag = "presences", security(("bearer" = [])),
    params(PresencesQuery),
    responses((status = 200, body = Vec<Presence>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub fn presences() {}
