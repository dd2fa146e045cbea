//! A session's voice: op 4 handed to auth (which decides, records the voice state and tells
//! everyone who can see the channel), VOICE_SERVER_UPDATE or ERROR back to the client, and the
//! voice state left when the session ends or its user loses CONNECT where they are.

use kit::tokens::AccessClaims;
use proto::Snowflake;
use proto::access::{VoiceAnswer, VoiceRequest};
use proto::api::error::ErrorCode;
use proto::api::voice::VoiceState;
use proto::events::Event;
use proto::gateway::{ErrorReply, Opcode, VoiceStateUpdate};
use proto::permissions::Permissions;

use super::{Session, Step};

/// Where a session's user is in voice, as this session joined it.
#[derive(Debug, Clone)]
pub(super) struct Joined {
    pub(super) user: Snowflake,
    pub(super) guild: Option<Snowflake>,
    pub(super) channel: Snowflake,
    /// The id this connection joined with (the voice state's `session_id`).
    pub(super) session: String,
}

impl Session {
    /// Op 4: join, move, leave or change one's flags.
    pub(super) async fn voice_state_update(
        &mut self,
        claims: &AccessClaims,
        update: VoiceStateUpdate,
    ) -> Step {
        let session = self.voice_session();
        let leaving = update.channel_id.is_none();
        let target = update.channel_id.map(|channel| Joined {
            user: claims.sub,
            guild: update.guild_id,
            channel,
            session: session.clone(),
        });
        let request = VoiceRequest {
            user_id: claims.sub,
            session_id: session,
            update,
            ended: false,
        };
        match self.state.directory.voice(&request).await {
            Ok(VoiceAnswer::Joined(server)) => {
                self.voice = target.map(Box::new);
                self.dispatch(Event::VoiceServerUpdate(server).into()).await
            }
            Ok(VoiceAnswer::Updated) => {
                if leaving {
                    self.voice = None;
                }
                Ok(())
            }
            Ok(VoiceAnswer::Refused { code, message }) => self.voice_error(code, message).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand auth a voice state");
                self.voice_error(
                    ErrorCode::ServiceUnavailable,
                    "voice is unavailable right now; try again".to_owned(),
                )
                .await
            }
        }
    }

    async fn voice_error(&mut self, code: ErrorCode, message: String) -> Step {
        let reply = ErrorReply {
            nonce: None,
            code: code.as_str().to_owned(),
            message,
        };
        self.send_op(Opcode::Error, &reply).await
    }

    /// This connection's voice session id: a Snowflake made at its first op 4, unique across
    /// edges, so a state is only ever cleared by the connection that made it.
    fn voice_session(&mut self) -> String {
        self.voice_session
            .get_or_insert_with(|| self.state.chat.next_id().to_string().into())
            .to_string()
    }

    /// Leaves voice for good (the session ended, or its user may no longer connect where they
    /// are): auth deletes the state, tells the others, and takes the person out of the room.
    pub(super) async fn end_voice(&mut self) -> Option<Joined> {
        let joined = *self.voice.take()?;
        let request = VoiceRequest {
            user_id: joined.user,
            session_id: joined.session.clone(),
            update: VoiceStateUpdate {
                guild_id: joined.guild,
                channel_id: None,
                self_mute: false,
                self_deaf: false,
                self_video: false,
                self_stream: false,
            },
            ended: true,
        };
        if let Err(e) = self.state.directory.voice(&request).await {
            tracing::warn!(error = %e, "cannot end a voice state");
        }
        Some(joined)
    }

    /// After a server's permissions or this user's place in it changed: a user in one of its
    /// voice channels who may no longer connect there leaves it at once, and is told.
    pub(super) async fn recheck_voice(&mut self, user: Snowflake, guild: Snowflake) -> Step {
        let Some(joined) = &self.voice else {
            return Ok(());
        };
        if joined.guild != Some(guild) {
            return Ok(());
        }
        let may = self
            .allowed(joined.channel)
            .is_some_and(|allowed| allowed.permissions.has(Permissions::CONNECT));
        if may {
            return Ok(());
        }
        let Some(joined) = self.end_voice().await else {
            return Ok(());
        };
        let left = VoiceState::new(joined.guild, None, user, joined.session);
        self.dispatch(Event::VoiceStateUpdate(left).into()).await
    }
}
