//! Frames spoken over the edge's WebSocket, modelled on Discord's gateway.
//!
//! Every frame is `{"op": <int>, "d": <payload>, "s": <seq or null>, "t": <event name or null>}`.
//! `s` and `t` are set on DISPATCH frames only. docs/PROTOCOL.md is the reference for client
//! authors; these types are the source it describes.

use serde::{Deserialize, Serialize};
use serde_repr::{Deserialize_repr, Serialize_repr};

/// What a frame is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum Opcode {
    /// Server → client: an event, with a sequence number and an event name.
    Dispatch = 0,
    /// Client → server: I am alive; carries the last sequence number seen.
    Heartbeat = 1,
    /// Client → server: start a session with an access token.
    Identify = 2,
    /// Client → server: set this session's status (idle after inactivity, or the user's pick).
    PresenceUpdate = 3,
    /// Client → server: continue a session after a disconnect.
    Resume = 6,
    /// Server → client: please reconnect (and resume) elsewhere.
    Reconnect = 7,
    /// Client → server: send me members of a channel (Discord's REQUEST_GUILD_MEMBERS); answered
    /// by CHANNEL_MEMBERS_CHUNK dispatches.
    RequestChannelMembers = 8,
    /// Server → client: the session cannot be resumed; identify again.
    InvalidSession = 9,
    /// Server → client: first frame, with the heartbeat interval.
    Hello = 10,
    /// Server → client: heartbeat received.
    HeartbeatAck = 11,
    /// Client → server: post a message (Natter's; Discord sends messages over REST).
    MessageSend = 20,
    /// Client → server: edit one's own message.
    MessageEdit = 21,
    /// Client → server: delete a message (the author, or the channel's owner or a moderator).
    MessageDelete = 22,
    /// Client → server: I am typing in a channel.
    TypingStart = 23,
    /// Server → client: a request succeeded (answers a client `nonce`).
    Ack = 24,
    /// Server → client: a request failed; the socket stays open.
    Error = 25,
}

/// One frame on the socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame<D> {
    pub op: Opcode,
    #[serde(default)]
    pub d: D,
    #[serde(default)]
    pub s: Option<u64>,
    #[serde(default)]
    pub t: Option<String>,
}

/// WebSocket close codes, in Discord's 4000 range with Discord's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum CloseCode {
    /// Something went wrong on our side; reconnect and resume.
    UnknownError = 4000,
    /// The client sent an opcode we do not know.
    UnknownOpcode = 4001,
    /// The client sent something that is not a valid frame (bad JSON, too large).
    DecodeError = 4002,
    /// The client sent a payload before identifying.
    NotAuthenticated = 4003,
    /// The access token was not accepted.
    AuthenticationFailed = 4004,
    /// The client identified twice.
    AlreadyAuthenticated = 4005,
    /// A resume named a sequence the server cannot continue from.
    InvalidSeq = 4007,
    /// The client sent too many frames too quickly.
    RateLimited = 4008,
    /// The session timed out (no heartbeat, or a client that stopped reading); resume.
    SessionTimedOut = 4009,
}

impl CloseCode {
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// Whether a client may resume its session after this close, or must identify anew.
    pub const fn resumable(self) -> bool {
        !matches!(self, Self::AuthenticationFailed)
    }
}

/// The payloads a client sends, decoded from a frame in one step so that every kind of bad input
/// maps to exactly one close code.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    Heartbeat(Option<u64>),
    Identify(Identify),
    Resume(Resume),
    MessageSend(MessageSend),
    MessageEdit(MessageEdit),
    MessageDelete(MessageDelete),
    TypingStart(TypingStart),
    PresenceUpdate(PresenceUpdate),
    RequestChannelMembers(RequestChannelMembers),
}

impl ClientFrame {
    /// Decodes a text frame. `Err` carries the close code: 4001 for an opcode a client may not
    /// send, 4002 for anything that is not a well-formed frame.
    pub fn decode(text: &str) -> Result<Self, CloseCode> {
        #[derive(Deserialize)]
        struct Raw {
            op: i64,
            #[serde(default)]
            d: serde_json::Value,
        }
        let raw: Raw = serde_json::from_str(text).map_err(|_| CloseCode::DecodeError)?;
        fn payload<T: serde::de::DeserializeOwned>(d: serde_json::Value) -> Result<T, CloseCode> {
            serde_json::from_value(d).map_err(|_| CloseCode::DecodeError)
        }
        match raw.op {
            1 => payload(raw.d).map(Self::Heartbeat),
            2 => payload(raw.d).map(Self::Identify),
            3 => payload(raw.d).map(Self::PresenceUpdate),
            6 => payload(raw.d).map(Self::Resume),
            8 => payload(raw.d).map(Self::RequestChannelMembers),
            20 => payload(raw.d).map(Self::MessageSend),
            21 => payload(raw.d).map(Self::MessageEdit),
            22 => payload(raw.d).map(Self::MessageDelete),
            23 => payload(raw.d).map(Self::TypingStart),
            _ => Err(CloseCode::UnknownOpcode),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identify {
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    pub token: String,
    pub session_id: String,
    /// The highest `s` the client has seen.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSend {
    pub channel_id: crate::Snowflake,
    /// 1 to 4,000 characters, kept as sent; see [`crate::api::messages::MessageContent`].
    pub content: String,
    /// Chosen by the client, at most 64 characters; a retried send with the same nonce is stored
    /// once. Echoed in the ACK or ERROR.
    #[serde(default)]
    pub nonce: Option<String>,
}

/// Op 21: replace the content of one's own message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEdit {
    pub channel_id: crate::Snowflake,
    pub message_id: crate::Snowflake,
    pub content: String,
    /// Echoed in the ACK or ERROR, to match the answer to the request.
    #[serde(default)]
    pub nonce: Option<String>,
}

/// Op 22: delete a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDelete {
    pub channel_id: crate::Snowflake,
    pub message_id: crate::Snowflake,
    /// Echoed in the ACK or ERROR.
    #[serde(default)]
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingStart {
    pub channel_id: crate::Snowflake,
}

/// Op 8: members of one channel the client is in, as Discord's REQUEST_GUILD_MEMBERS: the first
/// `limit` (1 to 1,000, default 100) in user-id order, or those among `user_ids` (at most 100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestChannelMembers {
    pub channel_id: crate::Snowflake,
    #[serde(default)]
    pub user_ids: Option<Vec<crate::Snowflake>>,
    #[serde(default)]
    pub limit: Option<u32>,
    /// Also send the presence of the other members whose presence the client may see.
    #[serde(default)]
    pub presences: bool,
    /// Echoed in every chunk (and in an ERROR), at most 64 characters.
    #[serde(default)]
    pub nonce: Option<String>,
}

/// CHANNEL_MEMBERS_CHUNK: one part of the answer to op 8, shaped as Discord's
/// GUILD_MEMBERS_CHUNK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelMembersChunk {
    pub channel_id: crate::Snowflake,
    pub members: Vec<crate::api::channels::Member>,
    pub chunk_index: u32,
    pub chunk_count: u32,
    /// Ids asked for in `user_ids` that are not members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<crate::Snowflake>,
    /// When asked for: the presence of this chunk's members the client may see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presences: Option<Vec<crate::api::presence::Presence>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// Op 3: `{"status": "online" | "idle" | "dnd" | "invisible"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceUpdate {
    pub status: crate::presence::SessionStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub heartbeat_interval: u64,
}

/// The answer to a request that failed, keyed by the request's nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    #[serde(default)]
    pub nonce: Option<String>,
    /// A stable machine code (`unknown_channel`, `invalid_content`, `rate_limited`, ...).
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_serialise_in_discords_shape() {
        let hello = Frame {
            op: Opcode::Hello,
            d: serde_json::json!({"heartbeat_interval": 41250}),
            s: None,
            t: None,
        };
        assert_eq!(
            serde_json::to_value(&hello).unwrap(),
            serde_json::json!({"op": 10, "d": {"heartbeat_interval": 41250}, "s": null, "t": null})
        );
    }

    #[test]
    fn an_unknown_opcode_does_not_decode() {
        assert!(
            serde_json::from_str::<Frame<serde_json::Value>>(r#"{"op": 4, "d": null}"#).is_err()
        );
    }

    #[test]
    fn client_frames_decode_to_their_payload_or_name_the_close_code() {
        assert_eq!(
            ClientFrame::decode(r#"{"op": 2, "d": {"token": "t"}}"#),
            Ok(ClientFrame::Identify(Identify { token: "t".into() }))
        );
        assert_eq!(
            ClientFrame::decode(r#"{"op": 1, "d": 42}"#),
            Ok(ClientFrame::Heartbeat(Some(42)))
        );
        assert_eq!(
            ClientFrame::decode(r#"{"op": 1}"#),
            Ok(ClientFrame::Heartbeat(None))
        );
        assert_eq!(
            ClientFrame::decode("{not json"),
            Err(CloseCode::DecodeError)
        );
        assert_eq!(
            ClientFrame::decode(r#"{"op": 2, "d": {}}"#),
            Err(CloseCode::DecodeError)
        );
        assert_eq!(
            ClientFrame::decode(r#"{"op": 3, "d": {"status": "idle"}}"#),
            Ok(ClientFrame::PresenceUpdate(PresenceUpdate {
                status: crate::presence::SessionStatus::Idle
            }))
        );
        // Offline is having no session, not a status a client can set.
        assert_eq!(
            ClientFrame::decode(r#"{"op": 3, "d": {"status": "offline"}}"#),
            Err(CloseCode::DecodeError)
        );
        assert_eq!(
            ClientFrame::decode(
                r#"{"op": 8, "d": {"channel_id": "5", "limit": 10, "nonce": "n"}}"#
            ),
            Ok(ClientFrame::RequestChannelMembers(RequestChannelMembers {
                channel_id: crate::Snowflake::from_u64(5),
                user_ids: None,
                limit: Some(10),
                presences: false,
                nonce: Some("n".into()),
            }))
        );
        assert_eq!(
            ClientFrame::decode(r#"{"op": 99, "d": {}}"#),
            Err(CloseCode::UnknownOpcode)
        );
        // A server-only opcode from a client is as unknown as a made-up one.
        assert_eq!(
            ClientFrame::decode(r#"{"op": 0, "d": {}}"#),
            Err(CloseCode::UnknownOpcode)
        );
    }
}
