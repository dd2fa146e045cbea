//! What an edge asks auth about a user over NATS (`{p}.auth.*`, answered by auth): what a session
//! needs to start, whose presence the user may see, pages of a channel's or a server's members, a
//! server's roles and channels (what the edge keeps to decide permissions), and the audit entry
//! of a moderator's message delete. And what auth asks the edges (`{p}.edge.purge`): delete a
//! banned member's recent messages.
//!
//! These go over NATS rather than auth's REST API with the user's token for two reasons: a
//! session outlives its access token (15 minutes), yet must learn about channels it joins hours
//! later; and the answers carry what the user may not read themselves (whose presence is hidden
//! from them because that person blocks them). Edges ask only after checking the user's token;
//! the sessions starting at an edge (IDENTIFY, RESUME) are asked about together
//! ([`SessionStarts`]), each naming its session: auth checks that it is still signed in and sends
//! the user's own profile with the answer.

use serde::{Deserialize, Serialize};

use crate::Snowflake;
use crate::api::channels::{Channel, MembersQuery};
use crate::api::guilds::{Guild, GuildMember, Role};
use crate::api::users::User;

/// `{p}.auth.state`: the user's channels (one, when `channel_id` is given) as they see them, and
/// what the edge needs to watch presence and refuse sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateQuery {
    pub user_id: Snowflake,
    #[serde(default)]
    pub channel_id: Option<Snowflake>,
    /// Group channels of at most this many members get `watch` lists (the edge's
    /// `--presence-max-members`); bigger ones are asked about when opened.
    pub watch_max_members: u32,
    /// Only the user's servers (`guilds`), asked again once the session follows them.
    #[serde(default)]
    pub guilds_only: bool,
}

/// `{p}.auth.starts`: sessions starting at one edge (IDENTIFY or RESUME), asked about together
/// (at most [`MAX_SESSION_STARTS`]), so that a reconnect storm's thousands of sessions cost auth
/// one read of each kind per question rather than per session, and one read per user however
/// many of their devices come back at once. Answered with [`SessionStartAnswers`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStarts {
    pub starts: Vec<SessionStart>,
    /// As [`StateQuery::watch_max_members`]: the edge's one setting, for every start.
    pub watch_max_members: u32,
}

/// The most sessions one [`SessionStarts`] asks about.
pub const MAX_SESSION_STARTS: usize = 128;

/// One session starting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStart {
    pub user_id: Snowflake,
    /// Its id, from the access token: its answer is [`Reply::SignedOut`] unless that session is
    /// still signed in (and the account still there).
    pub session_id: Snowflake,
    /// A RESUME: the answer leaves out what only READY carries (the calls in the user's DMs and
    /// group channels, the notification settings).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resuming: bool,
}

/// The answer to [`SessionStarts`]: the answers to its first `answers.len()` starts, in order,
/// each a [`SessionState`] with [`SessionState::user`] or why there is none. Fewer than asked
/// when more would make the answer too big for one NATS message (never none while one was
/// asked): ask again for the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStartAnswers {
    pub answers: Vec<Reply<SessionState>>,
}

/// The answer to [`StateQuery`], and to each [`SessionStart`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    /// The user's channels, each as they see it (role, member count; a DM's other person).
    pub channels: Vec<Channel>,
    /// Per small group channel, and per DM whose other side opened it: the other members whose
    /// presence the user may see (people who block the user, or whom the user blocks, left out).
    pub watch: Vec<WatchList>,
    /// DMs in which sends are refused: one of the two blocks the other.
    pub closed: Vec<Snowflake>,
    /// The servers the user is in, each with the user's member object (roles, time-out). The
    /// servers' roles and channels come apart, once per edge ([`GuildQuery`]).
    #[serde(default)]
    pub guilds: Vec<GuildMembership>,
    /// The user's own profile, with their real status: in an answer to a [`SessionStart`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// Who is in a call in the user's DMs and group channels: in an answer to a
    /// [`SessionStart`] that is not resuming (READY's `voice_states`).
    #[serde(default)]
    pub voice_states: Vec<crate::api::voice::VoiceState>,
    /// The user's notification settings (READY's `user_guild_settings`): in an answer to a
    /// [`SessionStart`] that is not resuming.
    #[serde(default)]
    pub user_guild_settings: Vec<crate::api::notifications::UserGuildSettings>,
}

/// The user in one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuildMembership {
    pub guild_id: Snowflake,
    pub member: GuildMember,
}

/// `{p}.auth.guild`: everything an edge needs to decide what members of a server may see and do:
/// the server, its roles, and every channel with its overwrites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuildQuery {
    pub guild_id: Snowflake,
}

/// The answer to [`GuildQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuildSnapshot {
    pub guild: Guild,
    pub roles: Vec<Role>,
    /// Every channel, categories included, each with its overwrites.
    pub channels: Vec<Channel>,
    /// Who is in the server's voice channels.
    #[serde(default)]
    pub voice_states: Vec<crate::api::voice::VoiceState>,
}

/// `{p}.auth.voice`: a session's op 4, or (`ended`) the end of a session that had joined voice.
/// Auth decides (CONNECT, SPEAK, STREAM; membership of a call's channel), records the voice state
/// and publishes it; the edge hands the session what auth answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceRequest {
    pub user_id: Snowflake,
    /// The gateway connection asking (its voice states are its own: a leave or an end of another
    /// connection's state changes nothing).
    pub session_id: String,
    pub update: crate::gateway::VoiceStateUpdate,
    /// The connection ended (or lost the channel): leave whatever it joined, and take it out of
    /// the media room.
    #[serde(default)]
    pub ended: bool,
}

/// Auth's answer to a [`VoiceRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VoiceAnswer {
    /// Joined or moved: where to connect.
    Joined(crate::api::voice::VoiceServerUpdate),
    /// Flags changed, or left (or nothing to leave).
    Updated,
    /// Refused: the error code and a message for the user (the missing permission named).
    Refused {
        code: crate::api::error::ErrorCode,
        message: String,
    },
}

/// `{p}.auth.guild_members`: members of a server the user is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuildMembersRequest {
    pub user_id: Snowflake,
    pub guild_id: Snowflake,
    pub query: MembersQuery,
}

/// `{p}.auth.audit`: an edge tells auth a moderator deleted someone else's message in a server's
/// channel, for the audit log (auth checks the moderator may, and records it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDeleted {
    pub guild_id: Snowflake,
    pub channel_id: Snowflake,
    pub message_id: Snowflake,
    /// The moderator.
    pub user_id: Snowflake,
    /// The message's author.
    pub author_id: Snowflake,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchList {
    pub channel_id: Snowflake,
    pub user_ids: Vec<Snowflake>,
}

/// `{p}.auth.visible`: which of `user_ids` the user may see the presence of (themselves; anyone
/// in a group channel with them; anyone who opened a DM with them; never across a block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisibleQuery {
    pub user_id: Snowflake,
    pub user_ids: Vec<Snowflake>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visible {
    pub user_ids: Vec<Snowflake>,
}

/// `{p}.auth.members`: members of a channel the user is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersRequest {
    pub user_id: Snowflake,
    pub channel_id: Snowflake,
    pub query: MembersQuery,
}

/// Every answer auth gives an edge: the value, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply<T> {
    Ok(T),
    /// The channel does not exist or the user is not in it.
    NotFound,
    /// The session the question named is signed out or revoked, or its account is gone.
    SignedOut,
    /// The request was not understood, or auth could not answer (its database failed).
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_the_value_or_a_named_failure() {
        let ok: Reply<Visible> = Reply::Ok(Visible {
            user_ids: vec![Snowflake::from_u64(1)],
        });
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            serde_json::json!({"ok": {"user_ids": ["1"]}})
        );
        let missing: Reply<Visible> = serde_json::from_str(r#""not_found""#).unwrap();
        assert_eq!(missing, Reply::NotFound);
        let gone: Reply<Visible> = serde_json::from_str(r#""signed_out""#).unwrap();
        assert_eq!(gone, Reply::SignedOut);
    }
}

/// `{p}.edge.purge` (auth asks the edges, one answers): delete every message `author_id` sent in
/// `channel_ids` since `since_ms` (Unix milliseconds), as moderators' deletes are made (through
/// the chat stream, so every device sees MESSAGE_DELETE). Sent after a ban with
/// `delete_message_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeRequest {
    pub guild_id: Snowflake,
    pub channel_ids: Vec<Snowflake>,
    pub author_id: Snowflake,
    pub since_ms: u64,
}

/// The answer to [`PurgeRequest`]: how many messages were deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purged {
    pub deleted: u32,
}

/// `{p}.auth.notify` (the notification worker asks): whom each of some new messages concerns,
/// in one question (at most [`MAX_NOTIFY_QUERIES`]; auth reads once what they share, such as a
/// busy channel's settings). Answered with [`NotifyAnswers`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyQueries {
    pub queries: Vec<NotifyQuery>,
}

/// The most messages one [`NotifyQueries`] asks about (auth answers the first this many).
pub const MAX_NOTIFY_QUERIES: usize = 64;

/// The answer to [`NotifyQueries`]: the answers to its first `answers.len()` queries, in order.
/// Fewer than asked when more would make the answer too big for one NATS message (never none
/// while one was asked): ask again for the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyAnswers {
    pub answers: Vec<NotifyAnswer>,
}

/// One message's question in [`NotifyQueries`]: whom it concerns, as each of them set it (the
/// author never; muted servers and channels, mutes not yet over, "nothing", suppressed
/// @everyone and role mentions, and people who cannot view the channel left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyQuery {
    pub channel_id: Snowflake,
    pub author_id: Snowflake,
    #[serde(default)]
    pub mentions: Vec<Snowflake>,
    #[serde(default)]
    pub mention_roles: Vec<Snowflake>,
    #[serde(default)]
    pub mention_everyone: bool,
    /// Only people with a higher user id: the next page of a message's recipients (the
    /// previous answer's [`NotifyAnswer::next`]).
    #[serde(default)]
    pub after: Option<Snowflake>,
    /// The most recipients one answer holds (auth may hold fewer: an answer stays well under
    /// NATS's largest message, whatever the subscriptions). At most [`MAX_RECIPIENTS`].
    #[serde(default = "default_recipients_page")]
    pub page: u32,
}

/// Recipients per answer to [`NotifyQuery`] unless it says.
pub const RECIPIENTS_PAGE: u32 = 1_000;

fn default_recipients_page() -> u32 {
    RECIPIENTS_PAGE
}

/// The answer to [`NotifyQuery`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyAnswer {
    /// The channel's server; `None` for a DM or group channel.
    pub guild_id: Option<Snowflake>,
    /// The author's display name (what a notification shows).
    pub author_name: String,
    /// Who is told, in user-id order: this page of them (of at most `MAX_RECIPIENTS` in all).
    pub recipients: Vec<Recipient>,
    /// More may be told: ask again with `after` = this.
    #[serde(default)]
    pub next: Option<Snowflake>,
}

/// The most people one message notifies (an @everyone in a huge server tells the first this many
/// members by id; the rest see their badges).
pub const MAX_RECIPIENTS: usize = 10_000;

/// One person a message concerns, why, and the browsers they subscribed for pushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub user_id: Snowflake,
    pub reason: crate::api::notifications::NotifyReason,
    #[serde(default)]
    pub subscriptions: Vec<crate::api::notifications::PushSubscription>,
}

/// `{p}.auth.readable`: which of `channel_ids` the user can read now (the inbox shows only
/// those). Answered with [`Readable`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadableQuery {
    pub user_id: Snowflake,
    pub channel_ids: Vec<Snowflake>,
}

/// The answer to [`ReadableQuery`]: the readable channels, each with its server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readable {
    pub channels: Vec<ReadableChannel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadableChannel {
    pub channel_id: Snowflake,
    pub guild_id: Option<Snowflake>,
}

/// `{p}.auth.channel_guilds`: the server each of `channel_ids` belongs to (the search service
/// indexes it with every message; a channel never moves, so the answer may be kept). At most
/// [`MAX_CHANNEL_GUILDS`] ids. Answered with [`ChannelGuilds`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelGuildsQuery {
    pub channel_ids: Vec<Snowflake>,
}

/// The most channels one [`ChannelGuildsQuery`] names.
pub const MAX_CHANNEL_GUILDS: usize = 1_000;

/// The answer to [`ChannelGuildsQuery`]: each channel auth knows, with its server (none for a DM
/// or group channel). A channel auth does not know (deleted) is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelGuilds {
    pub channels: Vec<ReadableChannel>,
}

/// `{p}.auth.push_gone`: a push service answered 404 or 410 for this endpoint; auth deletes the
/// subscription (whoever holds it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushGone {
    pub endpoint: String,
}
