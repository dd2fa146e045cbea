//! A session's start: what it needs from auth, its topics, then READY or a resume's replay.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kit::tokens::AccessClaims;
use proto::Snowflake;
use proto::access::SessionState;
use proto::api::channels::Channel;
use proto::api::guilds::GuildMember;
use proto::api::presence::Presence;
use proto::api::users::User;
use proto::api::voice::VoiceState;
use proto::events::Event;
use proto::gateway::{
    CloseCode, Dispatch, Opcode, ReadSummary, Ready, ReadyChannel, ReadyGuild, Resumed,
};

use super::guilds::talking;
use super::{Session, Step};
use kit::stream::{Missed, ReadError, Resume};
use rustc_hash::FxHashSet;

use crate::directory::DirectoryError;
use crate::fanout::{Delivery, Topic};
use crate::state::EdgeState;

impl Session {
    /// Joins the user's topics, then sends READY (a fresh session) or replays what a resuming
    /// client missed. Joining first means nothing published from then on can slip between the
    /// snapshot or replay and live delivery; the floor drops what arrives twice.
    pub(super) async fn start(&mut self, claims: &AccessClaims, resume_from: Option<u64>) -> Step {
        let mut phases = Phases::new(self.state.metrics.session_start_seconds.clone());
        // The user's inbox before auth is asked for the user's channels: a channel made with the
        // user meanwhile (a DM opened with them, say) comes as CHANNEL_CREATE after READY, where
        // joining after the answer lost it for the life of the session. One that READY already
        // has may come again; applying it twice changes nothing (the client upserts channels).
        self.join(Topic::User(claims.sub)).await?;
        // Where the events stream stands before auth reads: every event at or below it is in
        // auth's answer (auth publishes after it commits). Only READY carries the calls; a
        // resume (a reconnect storm's every session) skips both reads.
        let events_before = match resume_from {
            None => Some(self.state.events.last_sequence().await),
            Some(_) => None,
        };
        let (user, mut session) = load(&self.state, claims, resume_from.is_some()).await?;
        phases.end("auth");
        for channel in &session.channels {
            self.note_role(channel, claims.sub);
        }
        self.add_channels(session.channels.iter().map(|c| c.id).collect())
            .await?;
        // The channels are followed only now, after auth's answer: a call joined or left in one
        // of them meanwhile is read back from the events stream into the answer's voice states.
        match events_before {
            Some(Ok(before)) => Box::pin(calls_meanwhile(&self.state, &mut session, before)).await,
            Some(Err(e)) => tracing::warn!(error = %e, "cannot read the events stream's position"),
            None => {}
        }
        self.closed = session.closed.iter().copied().collect();
        self.start_guilds(claims, &session).await?;
        // Its topics are joined: most sessions keep them as they are for their life.
        self.topics.shrink_to_fit();
        phases.end("servers");
        // Where live delivery begins: a fresh session at the stream's last event; a resume at
        // the last event of its channels, after replaying what it missed through it.
        let missed = match resume_from {
            None => None,
            Some(seq) => match missed(&self.state, &self.channels, seq).await {
                Ok(missed) => Some(missed),
                // The stream cannot be read right now (its leader is being elected, NATS is
                // away): the session can still be resumed, so close with 4000 and the client
                // resumes again. Refusing it would make the client start over and fill the gap
                // from history, for a fault of seconds.
                Err(e @ (ReadError::JetStream(_) | ReadError::Incomplete(..))) => {
                    tracing::warn!(error = %e, seq, "cannot read the stream to resume; try again");
                    return Err(Some(CloseCode::UnknownError));
                }
                Err(e @ (ReadError::TooOld(_) | ReadError::TooMany(_))) => {
                    tracing::info!(error = %e, seq, "cannot resume; asking for a new session");
                    self.send_op(Opcode::InvalidSession, &false).await?;
                    return Err(Some(CloseCode::InvalidSeq));
                }
            },
        };
        let head = match &missed {
            Some(missed) => missed.through,
            None => match self.state.stream.last_sequence().await {
                Ok(head) => head,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the chat stream's position");
                    return Err(Some(CloseCode::UnknownError));
                }
            },
        };
        self.floor = head;
        phases.end("stream");
        let (state, handle) = (&self.state, &self.deliveries.handle());
        let presences = (self.presence)
            .start(
                state,
                self.id,
                handle,
                &user,
                &session,
                resume_from.is_none(),
            )
            .await
            .map_err(Some)?;
        phases.end("presence");
        match missed {
            None => {
                let mut ready = self
                    .ready(claims, user, session.channels, presences, head)
                    .await;
                phases.end("store");
                ready.voice_states = session.voice_states;
                ready.user_guild_settings = session.user_guild_settings;
                let sent = self.dispatch(Dispatch::Ready(Box::new(ready))).await;
                phases.whole("ready");
                sent
            }
            Some(missed) => {
                let guilds = self.ready_guilds(&mut HashMap::new());
                for stored in missed.events {
                    let mut event = stored.event;
                    self.state.chat.attachments().sign_event(&mut event);
                    let delivery = Delivery::new(Some(stored.seq), event);
                    self.send_text(&delivery.frame).await?;
                }
                let sent = self
                    .dispatch(Dispatch::Resumed(Resumed {
                        seq: head,
                        channels: session.channels,
                        guilds,
                    }))
                    .await;
                phases.whole("resumed");
                sent
            }
        }
    }

    /// Follows the user's servers (the edge subscribes to each and reads it from auth, unless it
    /// follows it already), reads the user's member objects again now that every later change
    /// reaches the session as an event, then joins the topics of the channels they may view.
    async fn start_guilds(&mut self, claims: &AccessClaims, session: &SessionState) -> Step {
        if session.guilds.is_empty() {
            return Ok(());
        }
        let members = (session.guilds.iter())
            .map(|membership| (membership.guild_id, membership.member.clone()))
            .collect();
        self.follow_guilds(members).await?;
        match self.state.directory.guild_memberships(claims.sub).await {
            Ok(fresh) => {
                let now: HashMap<Snowflake, GuildMember> =
                    fresh.into_iter().map(|m| (m.guild_id, m.member)).collect();
                let followed: Vec<Snowflake> = self.guilds.keys().copied().collect();
                for guild in followed {
                    match now.get(&guild) {
                        Some(member) => {
                            if let Some(joined) = self.guilds.get_mut(&guild) {
                                joined.member = member.clone();
                            }
                        }
                        // Gone in between: its GUILD_DELETE is on its way.
                        None => {
                            self.leave_guild(guild).await;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the user's servers again"),
        }
        // Nothing is visible yet, so nothing is hidden: the channels shown are joined at once.
        let followed: Vec<Snowflake> = self.guilds.keys().copied().collect();
        let mut shown = Vec::new();
        for guild in followed {
            shown.extend(talking(&self.reconsider_guild(guild).0));
        }
        self.add_channels(shown).await
    }

    /// The user's servers as READY and RESUMED show them, with their channels' summaries.
    fn ready_guilds(&self, summaries: &mut HashMap<Snowflake, ReadSummary>) -> Vec<ReadyGuild> {
        let mut ids: Vec<&Snowflake> = self.guilds.keys().collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|id| {
                let joined = &self.guilds[id];
                joined.feed.read(|state| {
                    state.ready(&joined.member, &joined.visible, |c| summaries.remove(&c))
                })
            })
            .collect()
    }

    /// READY for a fresh session: the user, their channels and servers with where their reading
    /// stands, and the presence they see from the start; live delivery begins after `head`.
    async fn ready(
        &mut self,
        claims: &AccessClaims,
        user: User,
        channels: Vec<Channel>,
        presences: Vec<Presence>,
        head: u64,
    ) -> Ready {
        let state = Arc::clone(&self.state);
        let mut ids: Vec<Snowflake> = channels.iter().map(|c| c.id).collect();
        ids.extend(
            self.channel_guilds
                .keys()
                .filter(|c| self.channels.contains(c)),
        );
        let mut summaries = state
            .archive
            .summaries(claims.sub, &ids, &self.channel_roles(), READY_STORE_BUDGET)
            .await;
        let channels = channels
            .into_iter()
            .map(|channel| ReadyChannel {
                summary: summaries.remove(&channel.id),
                channel,
            })
            .collect();
        Ready {
            v: 1,
            // Unique across the fleet (a Snowflake of this edge's worker), not just here.
            session_id: state.chat.next_id().to_string(),
            seq: head,
            user,
            channels,
            guilds: self.ready_guilds(&mut summaries),
            presences,
            voice_states: Vec::new(),
            user_guild_settings: Vec::new(),
        }
    }
}

/// Times a session's start, phase by phase, into `natter_edge_session_start_seconds`: a start
/// that is slow says where (auth, the servers, the stream, presence or the store).
struct Phases {
    histogram: prometheus::HistogramVec,
    started: Instant,
    last: Instant,
}

impl Phases {
    fn new(histogram: prometheus::HistogramVec) -> Self {
        let now = Instant::now();
        Self {
            histogram,
            started: now,
            last: now,
        }
    }

    /// `phase` ended now: the time since the previous one ended.
    fn end(&mut self, phase: &str) {
        let now = Instant::now();
        self.histogram
            .with_label_values(&[phase])
            .observe(now.duration_since(self.last).as_secs_f64());
        self.last = now;
    }

    /// The start is done (`ready` or `resumed`): the time since IDENTIFY or RESUME.
    fn whole(&self, outcome: &str) {
        let took = self.started.elapsed();
        self.histogram
            .with_label_values(&[outcome])
            .observe(took.as_secs_f64());
        tracing::debug!(outcome, took_ms = took.as_millis(), "session started");
    }
}

/// What a client resuming from `seq` missed in its session's `channels` (joined already, so
/// everything stored later reaches it live), read from the stream; or why it cannot resume (the
/// stream no longer holds it, or it is more than a replay holds). Asked with the other sessions
/// resuming here.
async fn missed(
    state: &EdgeState,
    channels: &FxHashSet<Snowflake>,
    seq: u64,
) -> Result<Missed, ReadError> {
    let channels: Vec<Snowflake> = channels.iter().copied().collect();
    let handed_out = state.hub.handed_out(&channels);
    let resume = Resume {
        channels,
        after: seq,
        handed_out,
    };
    let asked = state.resumes.ask(Arc::new(resume)).await;
    asked.map_err(ReadError::JetStream)?
}

/// Who the user is, that the token's session is still signed in, and what the session needs:
/// one question to auth over NATS.
/// Applies to `session`'s voice states (who is in a call in the user's DMs and group channels)
/// the calls' changes that the events stream holds after `before`: one direct get per thousand
/// such channels finds those with any (usually none), which are read and applied in stream
/// order. A change auth's answer already holds is applied again, which leaves it as it is; one
/// that arrived live as well comes again after READY, in order, and leaves the client right.
async fn calls_meanwhile(state: &EdgeState, session: &mut SessionState, before: u64) {
    let subjects: Vec<String> = session
        .channels
        .iter()
        .filter(|channel| channel.guild_id.is_none())
        .map(|channel| state.events.subjects().channel_events_intake(channel.id))
        .collect();
    let mut changed = Vec::new();
    for chunk in subjects.chunks(kit::stream::CHANNELS_PER_CHECK) {
        let asked: Vec<&str> = chunk.iter().map(String::as_str).collect();
        match state.events.last_sequences(&asked).await {
            Ok(lasts) => changed.extend(lasts.into_iter().filter(|&(_, last)| last > before)),
            Err(e) => tracing::warn!(error = %e, "cannot ask the events stream about calls"),
        }
    }
    let mut events = Vec::new();
    for (subject, last) in changed {
        match state
            .events
            .events(&subject, before, last, CALL_CHANGES)
            .await
        {
            Ok(mut read) => events.append(&mut read),
            Err(e) => tracing::warn!(error = %e, %subject, "cannot read a channel's call changes"),
        }
    }
    events.sort_unstable_by_key(|stored| stored.seq);
    for stored in events {
        if let Event::VoiceStateUpdate(voice) = stored.event {
            apply_call_change(&mut session.voice_states, voice);
        }
    }
}

/// The most events of one channel [`calls_meanwhile`] reads: a few seconds' changes.
const CALL_CHANGES: usize = 256;

/// One change of who is in a DM's or group channel's call: a person is in one call at a time, so
/// their previous state goes; the new one stays unless they left.
fn apply_call_change(states: &mut Vec<VoiceState>, voice: VoiceState) {
    if voice.guild_id.is_some() {
        return;
    }
    states.retain(|state| state.user_id != voice.user_id);
    if voice.channel_id.is_some() {
        states.push(voice);
    }
}

async fn load(
    state: &EdgeState,
    claims: &AccessClaims,
    resuming: bool,
) -> Step<(User, SessionState)> {
    let asked = state.directory.starting(claims.sub, claims.sid, resuming);
    match asked.await {
        Ok(found) => Ok(found),
        // Signed out or revoked: the same answer as a token that does not verify, so the
        // client signs in again instead of retrying the same token forever.
        Err(DirectoryError::Refused) => {
            tracing::debug!("auth refused the session");
            Err(Some(CloseCode::AuthenticationFailed))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot load the user's channels from auth");
            Err(Some(CloseCode::UnknownError))
        }
    }
}

/// How long READY (and a channel joined later, in its CHANNEL_CREATE) waits for the store's unread
/// counts before going without them.
pub(super) const READY_STORE_BUDGET: Duration = Duration::from_millis(1500);

#[cfg(test)]
mod tests {
    use super::*;

    fn state(user: u64, channel: Option<u64>) -> VoiceState {
        let (user, channel) = (Snowflake::from_u64(user), channel.map(Snowflake::from_u64));
        VoiceState::new(None, channel, user, "1".into())
    }

    #[test]
    fn a_call_change_replaces_its_persons_state_and_a_leave_removes_it() {
        let mut states = vec![state(1, Some(10)), state(2, Some(10))];
        // 1 moves to another call, 2 leaves, 3 joins; applied twice, nothing changes further.
        for _ in 0..2 {
            for change in [state(1, Some(11)), state(2, None), state(3, Some(10))] {
                apply_call_change(&mut states, change);
            }
        }
        let mut now: Vec<(u64, Option<u64>)> = states
            .iter()
            .map(|s| (s.user_id.get(), s.channel_id.map(Snowflake::get)))
            .collect();
        now.sort_unstable();
        assert_eq!(now, [(1, Some(11)), (3, Some(10))]);
        // A server's voice channel is not a call: its states come with the server.
        let server = VoiceState {
            guild_id: Some(Snowflake::from_u64(5)),
            ..state(4, Some(12))
        };
        apply_call_change(&mut states, server);
        assert_eq!(states.len(), 2);
    }
}
