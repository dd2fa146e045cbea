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
    /// Client → server: continue a session after a disconnect.
    Resume = 6,
    /// Server → client: please reconnect (and resume) elsewhere.
    Reconnect = 7,
    /// Server → client: the session cannot be resumed; identify again.
    InvalidSession = 9,
    /// Server → client: first frame, with the heartbeat interval.
    Hello = 10,
    /// Server → client: heartbeat received.
    HeartbeatAck = 11,
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
            serde_json::from_str::<Frame<serde_json::Value>>(r#"{"op": 3, "d": null}"#).is_err()
        );
    }
}
