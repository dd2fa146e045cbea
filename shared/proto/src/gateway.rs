//! Frames spoken over the edge's WebSocket, modelled on Discord's gateway.
//!
//! Every frame is `{"op": <int>, "d": <payload>, "s": <seq or null>, "t": <event name or null>}`.
//! `s` and `t` are set on DISPATCH frames only. docs/PROTOCOL.md is the reference for client
//! authors; these types are the source it describes.
//!
//! - [`ClientFrame`]: what a client sends, decoded in one step (payloads in [`client`]).
//! - [`Dispatch`]: every DISPATCH a client receives (READY, RESUMED, CHANNEL_MEMBERS_CHUNK and
//!   every [`Event`](crate::events::Event)), and the other server payloads (in [`server`]).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_repr::{Deserialize_repr, Serialize_repr};

mod client;
mod schema;
mod server;

pub use client::{
    Identify, MessageDelete, MessageEdit, MessageSend, PresenceUpdate, RequestChannelMembers,
    RequestGuildMembers, Resume, TypingStart, VoiceStateUpdate,
};
pub use schema::GatewaySchemas;
pub use server::{
    Ack, ChannelMembersChunk, Dispatch, DispatchKind, ErrorReply, GuildMembersChunk, Hello,
    ReadSummary, Ready, ReadyChannel, ReadyGuild, Resumed,
};

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
    /// Client → server: join, move between or leave voice channels and calls, or change one's own
    /// mute, deafen, camera and screen flags (Discord's VOICE_STATE_UPDATE).
    VoiceStateUpdate = 4,
    /// Client → server: continue a session after a disconnect.
    Resume = 6,
    /// Server → client: please reconnect (and resume) elsewhere.
    Reconnect = 7,
    /// Client → server: send me members of a channel or, with `guild_id`, of a server (Discord's
    /// REQUEST_GUILD_MEMBERS); answered by CHANNEL_MEMBERS_CHUNK or GUILD_MEMBERS_CHUNK dispatches.
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
    /// Op 8 naming a `guild_id`.
    RequestGuildMembers(RequestGuildMembers),
    VoiceStateUpdate(VoiceStateUpdate),
}

impl ClientFrame {
    /// Decodes a text frame. `Err` carries the close code: 4001 for an opcode a client may not
    /// send, 4002 for anything that is not a well-formed frame.
    pub fn decode(text: &str) -> Result<Self, CloseCode> {
        // The payload is kept as the frame's own text and read once, by its opcode's type:
        // no JSON value is built for it in between.
        #[derive(Deserialize)]
        struct Raw<'a> {
            op: serde_json::Value,
            #[serde(default, borrow)]
            d: Option<&'a RawValue>,
        }
        let raw: Raw<'_> = serde_json::from_str(text).map_err(|_| CloseCode::DecodeError)?;
        // A whole number is an opcode, known or not; anything else is not a frame.
        if !(raw.op.is_i64() || raw.op.is_u64()) {
            return Err(CloseCode::DecodeError);
        }
        let op: Opcode = serde_json::from_value(raw.op).map_err(|_| CloseCode::UnknownOpcode)?;
        let d = raw.d.map_or("null", RawValue::get);
        fn payload<'a, T: Deserialize<'a>>(d: &'a str) -> Result<T, CloseCode> {
            serde_json::from_str(d).map_err(|_| CloseCode::DecodeError)
        }
        match op {
            Opcode::Heartbeat => payload(d).map(Self::Heartbeat),
            Opcode::Identify => payload(d).map(Self::Identify),
            Opcode::PresenceUpdate => payload(d).map(Self::PresenceUpdate),
            Opcode::Resume => payload(d).map(Self::Resume),
            // Op 8 asks for a server's members when its payload names a `guild_id` at all.
            Opcode::RequestChannelMembers => {
                let d: serde_json::Value = payload(d)?;
                if d.get("guild_id").is_some() {
                    serde_json::from_value(d).map(Self::RequestGuildMembers)
                } else {
                    serde_json::from_value(d).map(Self::RequestChannelMembers)
                }
                .map_err(|_| CloseCode::DecodeError)
            }
            Opcode::MessageSend => payload(d).map(Self::MessageSend),
            Opcode::MessageEdit => payload(d).map(Self::MessageEdit),
            Opcode::MessageDelete => payload(d).map(Self::MessageDelete),
            Opcode::TypingStart => payload(d).map(Self::TypingStart),
            Opcode::VoiceStateUpdate => payload(d).map(Self::VoiceStateUpdate),
            // Server-only opcodes from a client are as unknown as made-up ones.
            Opcode::Dispatch
            | Opcode::Reconnect
            | Opcode::InvalidSession
            | Opcode::Hello
            | Opcode::HeartbeatAck
            | Opcode::Ack
            | Opcode::Error => Err(CloseCode::UnknownOpcode),
        }
    }

    /// The frame's opcode.
    pub fn opcode(&self) -> Opcode {
        match self {
            Self::Heartbeat(_) => Opcode::Heartbeat,
            Self::Identify(_) => Opcode::Identify,
            Self::Resume(_) => Opcode::Resume,
            Self::MessageSend(_) => Opcode::MessageSend,
            Self::MessageEdit(_) => Opcode::MessageEdit,
            Self::MessageDelete(_) => Opcode::MessageDelete,
            Self::TypingStart(_) => Opcode::TypingStart,
            Self::PresenceUpdate(_) => Opcode::PresenceUpdate,
            Self::RequestChannelMembers(_) | Self::RequestGuildMembers(_) => {
                Opcode::RequestChannelMembers
            }
            Self::VoiceStateUpdate(_) => Opcode::VoiceStateUpdate,
        }
    }

    /// The frame as a client sends it: `{"op": N, "d": {...}}`.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("client frames serialise")
    }
}

/// A client frame is `{"op", "d"}` (and `s` and `t` null, as on every non-dispatch frame).
impl Serialize for ClientFrame {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn frame<S: serde::Serializer, T: Serialize>(
            serializer: S,
            op: Opcode,
            d: &T,
        ) -> Result<S::Ok, S::Error> {
            Frame {
                op,
                d,
                s: None,
                t: None,
            }
            .serialize(serializer)
        }
        let op = self.opcode();
        match self {
            Self::Heartbeat(seq) => frame(serializer, op, seq),
            Self::Identify(d) => frame(serializer, op, d),
            Self::Resume(d) => frame(serializer, op, d),
            Self::MessageSend(d) => frame(serializer, op, d),
            Self::MessageEdit(d) => frame(serializer, op, d),
            Self::MessageDelete(d) => frame(serializer, op, d),
            Self::TypingStart(d) => frame(serializer, op, d),
            Self::PresenceUpdate(d) => frame(serializer, op, d),
            Self::RequestChannelMembers(d) => frame(serializer, op, d),
            Self::RequestGuildMembers(d) => frame(serializer, op, d),
            Self::VoiceStateUpdate(d) => frame(serializer, op, d),
        }
    }
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
            serde_json::from_str::<Frame<serde_json::Value>>(r#"{"op": 5, "d": null}"#).is_err()
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
                status: crate::tracker::SessionStatus::Idle
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
            ClientFrame::decode(r#"{"op": 8, "d": {"guild_id": "6", "after": "2", "limit": 5}}"#),
            Ok(ClientFrame::RequestGuildMembers(RequestGuildMembers {
                guild_id: crate::Snowflake::from_u64(6),
                user_ids: None,
                limit: Some(5),
                after: Some(crate::Snowflake::from_u64(2)),
                presences: false,
                nonce: None,
            }))
        );
        assert_eq!(
            ClientFrame::decode(r#"{"op": 99, "d": {}}"#),
            Err(CloseCode::UnknownOpcode)
        );
        // Discord's op 4: leaving is a null channel.
        assert_eq!(
            ClientFrame::decode(r#"{"op": 4, "d": {"guild_id": "6", "channel_id": null}}"#),
            Ok(ClientFrame::VoiceStateUpdate(VoiceStateUpdate {
                guild_id: Some(crate::Snowflake::from_u64(6)),
                channel_id: None,
                self_mute: false,
                self_deaf: false,
                self_video: false,
                self_stream: false,
            }))
        );
        // A server-only opcode from a client is as unknown as a made-up one.
        assert_eq!(
            ClientFrame::decode(r#"{"op": 0, "d": {}}"#),
            Err(CloseCode::UnknownOpcode)
        );
        // A field given twice is ambiguous: refused rather than one of them taken.
        assert_eq!(
            ClientFrame::decode(
                r#"{"op": 20, "d": {"channel_id": "5", "content": "a", "content": "b"}}"#
            ),
            Err(CloseCode::DecodeError)
        );
        assert_eq!(
            ClientFrame::decode(r#"{"op": 20, "d": {"channel_id": "5", "content": "a\u00e9"}}"#),
            Ok(ClientFrame::MessageSend(MessageSend {
                channel_id: crate::Snowflake::from_u64(5),
                content: "a\u{e9}".into(),
                nonce: None,
                message_reference: None,
                attachments: Vec::new(),
                flags: 0,
            }))
        );
    }

    #[test]
    fn client_frames_encode_as_they_decode() {
        let frames = [
            ClientFrame::Heartbeat(Some(7)),
            ClientFrame::Identify(Identify { token: "t".into() }),
            ClientFrame::Resume(Resume {
                token: "t".into(),
                session_id: "s".into(),
                seq: 9,
            }),
            ClientFrame::MessageSend(MessageSend {
                channel_id: crate::Snowflake::from_u64(1),
                content: "hi".into(),
                nonce: Some("n".into()),
                message_reference: None,
                attachments: Vec::new(),
                flags: 4,
            }),
            ClientFrame::VoiceStateUpdate(VoiceStateUpdate {
                guild_id: Some(crate::Snowflake::from_u64(2)),
                channel_id: None,
                self_mute: true,
                self_deaf: false,
                self_video: false,
                self_stream: false,
            }),
        ];
        for frame in frames {
            assert_eq!(ClientFrame::decode(&frame.encode()), Ok(frame.clone()));
        }
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&ClientFrame::Heartbeat(None).encode())
                .unwrap(),
            serde_json::json!({"op": 1, "d": null, "s": null, "t": null})
        );
    }

    #[test]
    fn a_dispatch_is_named_as_serde_tags_it_and_events_pass_through() {
        let resumed = Dispatch::Resumed(Resumed {
            seq: 5,
            channels: Vec::new(),
            guilds: Vec::new(),
        });
        assert_eq!(resumed.name(), "RESUMED");
        assert_eq!(
            serde_json::to_value(&resumed).unwrap(),
            serde_json::json!({"t": "RESUMED", "d": {"seq": 5, "channels": [], "guilds": []}})
        );
        let deleted: Dispatch = crate::events::Event::ChannelDelete(crate::events::ChannelRef {
            channel_id: crate::Snowflake::from_u64(3),
            guild_id: None,
        })
        .into();
        assert_eq!(deleted.name(), "CHANNEL_DELETE");
        let json = serde_json::to_value(&deleted).unwrap();
        assert_eq!(json["t"], "CHANNEL_DELETE");
        assert_eq!(serde_json::from_value::<Dispatch>(json).unwrap(), deleted);
    }
}
