//! Pins: up to [`MAX_PINS`] messages a channel keeps at hand, as on Discord.
//!
//! Routes (on an edge): `PUT|DELETE /api/v1/channels/{c}/pins/{m}` (MANAGE_MESSAGES in a server's
//! channel; any member of a group channel or DM), `GET /api/v1/channels/{c}/pins` (the pinned
//! messages, the most recently pinned first). A pin or unpin is CHANNEL_PINS_UPDATE through the
//! chat stream; a pin also posts the system message "ann pinned a message"
//! ([`crate::api::messages::MessageType::CHANNEL_PINNED_MESSAGE`]).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Snowflake;

/// The most messages a channel may have pinned at once.
pub const MAX_PINS: usize = 50;

/// CHANNEL_PINS_UPDATE: a message of the channel was pinned or unpinned. Discord's payload
/// (`channel_id`, `guild_id`, `last_pin_timestamp`) with what changed (`message_id`, `pinned`),
/// so the store follows it and a client can update its list without asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PinsUpdate {
    pub channel_id: Snowflake,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guild_id: Option<Snowflake>,
    /// When the most recent pin that remains was made (Unix milliseconds); none when nothing is
    /// pinned.
    pub last_pin_timestamp: Option<u64>,
    pub message_id: Snowflake,
    pub pinned: bool,
}
