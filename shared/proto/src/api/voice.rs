//! Voice and video, as clients see it: a person's voice state (Discord's VOICE_STATE_UPDATE) and
//! where to connect for media (VOICE_SERVER_UPDATE). Media itself never crosses Natter: clients
//! connect to the media server (LiveKit) with the token the server update carries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Snowflake;

/// Someone in a voice channel or call, or (`channel_id` null) someone who left one: the
/// VOICE_STATE_UPDATE dispatch, and the entries of READY's and GUILD_CREATE's `voice_states`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VoiceState {
    /// The server, for a server's voice channel; null for a call in a DM or group channel.
    #[serde(default)]
    pub guild_id: Option<Snowflake>,
    /// The channel they are in; null when they left.
    #[serde(default)]
    pub channel_id: Option<Snowflake>,
    pub user_id: Snowflake,
    /// The gateway connection that joined (a Snowflake as a string): the state lasts as long as
    /// that connection does.
    pub session_id: String,
    /// They muted their own microphone.
    #[serde(default)]
    pub self_mute: bool,
    /// They turned their own sound off.
    #[serde(default)]
    pub self_deaf: bool,
    /// Their camera is on.
    #[serde(default)]
    pub self_video: bool,
    /// They are sharing their screen ("Go Live").
    #[serde(default)]
    pub self_stream: bool,
    /// A moderator muted them (MUTE_MEMBERS): they cannot publish audio.
    #[serde(default)]
    pub mute: bool,
    /// A moderator deafened them (DEAFEN_MEMBERS): they receive nothing.
    #[serde(default)]
    pub deaf: bool,
}

impl VoiceState {
    /// `user`'s state in `channel` (`None`: they left it) through gateway connection `session`,
    /// with no flag set.
    pub fn new(
        guild_id: Option<Snowflake>,
        channel_id: Option<Snowflake>,
        user_id: Snowflake,
        session_id: String,
    ) -> Self {
        Self {
            guild_id,
            channel_id,
            user_id,
            session_id,
            self_mute: false,
            self_deaf: false,
            self_video: false,
            self_stream: false,
            mute: false,
            deaf: false,
        }
    }
}

/// VOICE_SERVER_UPDATE: the answer to a gateway op 4 that joined a channel (or moved to
/// another): connect to `endpoint` with `token` (a LiveKit access token, valid for a few minutes
/// to connect, whose grants follow the member's permissions: no SPEAK, no microphone; no STREAM,
/// no camera nor screen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VoiceServerUpdate {
    pub token: String,
    /// The media server's public URL (`wss://…` in production).
    pub endpoint: String,
    #[serde(default)]
    pub guild_id: Option<Snowflake>,
    pub channel_id: Snowflake,
}

/// What a token lets its holder publish in the room (LiveKit's track sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublishGrants {
    /// The microphone (SPEAK, and not server-muted).
    pub audio: bool,
    /// The camera and the screen, with its sound (STREAM).
    pub video: bool,
}

impl PublishGrants {
    /// LiveKit's names of the sources granted (`canPublishSources`).
    pub fn sources(self) -> Vec<&'static str> {
        let mut sources = Vec::new();
        if self.audio {
            sources.push("microphone");
        }
        if self.video {
            sources.extend(["camera", "screen_share", "screen_share_audio"]);
        }
        sources
    }
}

/// The media room of a channel: its id, so each voice channel and call is its own room.
pub fn room_name(channel: Snowflake) -> String {
    channel.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leave_is_a_state_without_a_channel() {
        let state: VoiceState = serde_json::from_value(serde_json::json!({
            "guild_id": "1", "channel_id": null, "user_id": "2", "session_id": "3"
        }))
        .unwrap();
        assert_eq!(state.channel_id, None);
        assert!(!state.self_mute && !state.mute && !state.deaf);
    }

    #[test]
    fn grants_name_livekits_sources() {
        assert!(PublishGrants::default().sources().is_empty());
        assert_eq!(
            PublishGrants {
                audio: true,
                video: false
            }
            .sources(),
            ["microphone"]
        );
        assert_eq!(
            PublishGrants {
                audio: false,
                video: true
            }
            .sources(),
            ["camera", "screen_share", "screen_share_audio"]
        );
    }
}

/// `POST /api/v1/channels/{id}/call/stop-ringing` (Discord's): stop a DM's or group's call
/// ringing `recipients`, or the caller when none are named (declining). Naming others takes
/// being in the call. At most 100.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StopRingingRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<Snowflake>>,
}
