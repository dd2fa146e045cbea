//! What a client sends: the payloads of [`ClientFrame`](super::ClientFrame)'s opcodes.

use serde::{Deserialize, Serialize};

use crate::Snowflake;
use crate::tracker::SessionStatus;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Identify {
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resume {
    pub token: String,
    pub session_id: String,
    /// The highest `s` the client has seen.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageSend {
    pub channel_id: Snowflake,
    /// 1 to 4,000 characters, kept as sent; see [`crate::api::messages::MessageContent`].
    pub content: String,
    /// Chosen by the client, at most 64 characters; a retried send with the same nonce is stored
    /// once. Echoed in the ACK or ERROR.
    #[serde(default)]
    pub nonce: Option<String>,
    /// A reply: the message of the same channel it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_reference: Option<crate::api::messages::MessageReference>,
    /// Files uploaded to media for this message (at most 10); `content` may then be empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::api::attachments::AttachmentRef>,
    /// `SUPPRESS_EMBEDS` (1 << 2) to send it without link previews; other bits are ignored.
    #[serde(default, skip_serializing_if = "crate::api::messages::is_zero")]
    pub flags: u64,
}

/// Op 21: replace the content of one's own message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageEdit {
    pub channel_id: Snowflake,
    pub message_id: Snowflake,
    pub content: String,
    /// Echoed in the ACK or ERROR, to match the answer to the request.
    #[serde(default)]
    pub nonce: Option<String>,
}

/// Op 22: delete a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageDelete {
    pub channel_id: Snowflake,
    pub message_id: Snowflake,
    /// Echoed in the ACK or ERROR.
    #[serde(default)]
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TypingStart {
    pub channel_id: Snowflake,
}

/// Op 8: members of one channel the client is in, as Discord's REQUEST_GUILD_MEMBERS: the first
/// `limit` (1 to 1,000, default 100) in user-id order, or those among `user_ids` (at most 100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestChannelMembers {
    pub channel_id: Snowflake,
    #[serde(default)]
    pub user_ids: Option<Vec<Snowflake>>,
    #[serde(default)]
    pub limit: Option<u32>,
    /// Also send the presence of the other members whose presence the client may see.
    #[serde(default)]
    pub presences: bool,
    /// Echoed in every chunk (and in an ERROR), at most 64 characters.
    #[serde(default)]
    pub nonce: Option<String>,
}

/// Op 3: `{"status": "online" | "idle" | "dnd" | "invisible"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PresenceUpdate {
    pub status: SessionStatus,
}

/// Op 8 with `guild_id` (Discord's REQUEST_GUILD_MEMBERS): members of one of the client's
/// servers, the first `limit` (1 to 1,000, default 100) in user-id order after `after`, or those
/// among `user_ids` (at most 100). Answered by GUILD_MEMBERS_CHUNK dispatches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestGuildMembers {
    pub guild_id: Snowflake,
    #[serde(default)]
    pub user_ids: Option<Vec<Snowflake>>,
    #[serde(default)]
    pub limit: Option<u32>,
    /// Page on: members with a higher user id than this.
    #[serde(default)]
    pub after: Option<Snowflake>,
    #[serde(default)]
    pub presences: bool,
    #[serde(default)]
    pub nonce: Option<String>,
}

/// Op 4, Discord's VOICE_STATE_UPDATE: join a server's voice channel (`guild_id` and
/// `channel_id`) or a call in a DM or group channel (`channel_id` alone), move to another
/// (joining one leaves the other: one at a time), leave (`channel_id` null), or change one's own
/// flags in the channel one is in. Answered by VOICE_SERVER_UPDATE when it joined or moved, and by
/// everyone's VOICE_STATE_UPDATE; ERROR (`forbidden` naming the permission, `not_found`,
/// `service_unavailable`) when it cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VoiceStateUpdate {
    #[serde(default)]
    pub guild_id: Option<Snowflake>,
    pub channel_id: Option<Snowflake>,
    #[serde(default)]
    pub self_mute: bool,
    #[serde(default)]
    pub self_deaf: bool,
    #[serde(default)]
    pub self_video: bool,
    #[serde(default)]
    pub self_stream: bool,
}
