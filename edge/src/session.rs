//! One client connection, from HELLO to close.
//!
//! ```text
//! accept ─► HELLO ─► IDENTIFY or RESUME (10 s) ─► join topics ─► READY / replay + RESUMED ─► loop
//!   loop: client frame │ hub delivery │ heartbeat deadline │ kick │ edge draining
//! ```
//!
//! The session lives in one task. It never buffers without bound: deliveries wait in a bounded
//! queue that the hub refuses to overfill (the session is then kicked with a resumable code), and
//! every socket write has a deadline, so a client that stops reading is dropped rather than kept.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use governor::{DefaultDirectRateLimiter, RateLimiter};
use serde::Serialize;
use shared::Snowflake;
use shared::api::channels::{Channel, MAX_MEMBER_IDS, MAX_MEMBERS_PAGE, Member, MembersQuery};
use shared::events::Event;
use shared::gateway::{
    ChannelMembersChunk, ClientFrame, CloseCode, ErrorReply, Frame, Hello, MessageDelete,
    MessageEdit, MessageSend, Opcode, RequestChannelMembers,
};
use shared::tokens::AccessClaims;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::chat::ChatError;
use crate::directory::DirectoryError;
use crate::fanout::{Delivery, Kick, SessionHandle, SessionId, Topic};
use crate::history::ReadSummary;
use crate::metrics::EdgeMetrics;
use crate::state::EdgeState;

/// Why a session ends: the close code to send, or `None` when the socket is already gone.
type Ending = Option<CloseCode>;
/// One step of a session: `Err` ends it, so `?` reads as "or the session is over".
type Step<T = ()> = Result<T, Ending>;

pub async fn serve(socket: WebSocket, state: Arc<EdgeState>) {
    state.metrics.connections.inc();
    let id = state.next_session_id();
    let (queue, deliveries) = mpsc::channel(state.config.session_queue);
    let mut session = Session {
        socket,
        state: Arc::clone(&state),
        id,
        handle: SessionHandle {
            queue,
            kick: Kick::default(),
        },
        deliveries,
        limiter: RateLimiter::direct(state.config.client_quota()),
        topics: Vec::new(),
        channels: HashSet::new(),
        moderated: HashSet::new(),
        closed: HashSet::new(),
        floor: 0,
        presence: crate::presence::Watch::default(),
    };
    let Err(ending) = session.run().await;
    session.finish(ending).await;
    state.metrics.connections.dec();
}

struct Session {
    socket: WebSocket,
    state: Arc<EdgeState>,
    id: SessionId,
    handle: SessionHandle,
    deliveries: mpsc::Receiver<Delivery>,
    limiter: DefaultDirectRateLimiter,
    /// Topics joined in the hub, left again when the session ends.
    topics: Vec<Topic>,
    /// The channels this user may read and send in, kept current by inbox events.
    channels: HashSet<Snowflake>,
    /// The channels this user owns or moderates (may delete anyone's messages), kept current the
    /// same way.
    moderated: HashSet<Snowflake>,
    /// DMs that refuse sends: one of the two blocks the other. Kept current by BLOCK_UPDATE.
    closed: HashSet<Snowflake>,
    /// Stored events at or below this stream sequence were already sent (in READY's snapshot or a
    /// replay); live copies of them are dropped.
    floor: u64,
    /// Whose presence this session watches (co-members it may see in its small channels).
    presence: crate::presence::Watch,
}

impl Session {
    async fn run(&mut self) -> Step<Infallible> {
        let hello = Hello {
            heartbeat_interval: self.state.config.heartbeat_interval.as_millis() as u64,
        };
        self.send_op(Opcode::Hello, &hello).await?;

        let deadline = Instant::now() + self.state.config.identify_timeout;
        let claims = loop {
            let frame = tokio::select! {
                frame = read_frame(&mut self.socket, &self.limiter, &self.state.metrics) => frame?,
                () = sleep_until(deadline) => return Err(Some(CloseCode::NotAuthenticated)),
                () = self.state.draining.cancelled() => return self.reconnect().await,
            };
            match frame {
                ClientFrame::Heartbeat(_) => self.send_op(Opcode::HeartbeatAck, &()).await?,
                ClientFrame::Identify(identify) => {
                    // Boxed: a future is as large as its largest await, and these (HTTP calls to
                    // auth, the stream replay) would otherwise stay inside every idle session.
                    let claims = Box::pin(self.authenticate(&identify.token)).await?;
                    Box::pin(self.start(&identify.token, &claims, None)).await?;
                    break claims;
                }
                ClientFrame::Resume(resume) => {
                    let claims = Box::pin(self.authenticate(&resume.token)).await?;
                    Box::pin(self.start(&resume.token, &claims, Some(resume.seq))).await?;
                    break claims;
                }
                _ => return Err(Some(CloseCode::NotAuthenticated)),
            }
        };
        self.state.metrics.sessions.inc();
        let ending = self.live(&claims).await;
        self.state.metrics.sessions.dec();
        ending
    }

    async fn authenticate(&mut self, token: &str) -> Step<AccessClaims> {
        self.state
            .verifier
            .verify_fetching(token)
            .await
            .map_err(|e| {
                tracing::debug!(error = %e, "token refused");
                Some(CloseCode::AuthenticationFailed)
            })
    }

    /// Joins the user's topics, then sends READY (a fresh session) or replays what a resuming
    /// client missed. Joining first means nothing published from then on can slip between the
    /// snapshot or replay and live delivery; the floor drops what arrives twice.
    async fn start(
        &mut self,
        token: &str,
        claims: &AccessClaims,
        resume_from: Option<u64>,
    ) -> Step {
        // The user's inbox before auth is asked for the user's channels: a channel made with the
        // user meanwhile (a DM opened with them, say) comes as CHANNEL_CREATE after READY, where
        // joining after the answer lost it for the life of the session. One that READY already
        // has may come again; applying it twice changes nothing (the client upserts channels).
        self.join(Topic::User(claims.sub)).await?;
        // Who the user is (and that the token's session is still signed in), over REST with the
        // fresh token; what the session needs, over NATS (it asks again later, tokenless).
        let directory = &self.state.directory;
        let max = self.state.presence.settings.max_members;
        let (user, session) = match tokio::try_join!(
            directory.me(token),
            directory.session_state(claims.sub, None, max)
        ) {
            Ok(found) => found,
            // Signed out or revoked: the same answer as a token that does not verify, so the
            // client signs in again instead of retrying the same token forever.
            Err(DirectoryError::Refused) => {
                tracing::debug!("auth refused the token");
                return Err(Some(CloseCode::AuthenticationFailed));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot load the user's channels from auth");
                return Err(Some(CloseCode::UnknownError));
            }
        };
        for channel in &session.channels {
            self.channels.insert(channel.id);
            self.note_role(channel, claims.sub);
            self.join(Topic::Channel(channel.id)).await?;
        }
        self.closed = session.closed.iter().copied().collect();
        let head = match self.state.backlog.last_sequence().await {
            Ok(head) => head,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the chat stream's position");
                return Err(Some(CloseCode::UnknownError));
            }
        };
        self.floor = head;
        let (state, handle) = (&self.state, &self.handle);
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
        let channels = session.channels;
        match resume_from {
            None => {
                let ids: Vec<Snowflake> = channels.iter().map(|c| c.id).collect();
                let mut summaries = self
                    .state
                    .history
                    .summaries(claims.sub, &ids, READY_STORE_BUDGET)
                    .await;
                let channels = channels
                    .into_iter()
                    .map(|channel| ReadyChannel {
                        summary: summaries.remove(&channel.id),
                        channel,
                    })
                    .collect();
                let ready = Ready {
                    v: 1,
                    // Unique across the fleet (a Snowflake of this edge's worker), not just here.
                    session_id: self.state.chat.next_id().to_string(),
                    seq: head,
                    user,
                    channels,
                    presences,
                };
                self.dispatch("READY", None, &ready).await
            }
            Some(seq) => {
                let ids: Vec<Snowflake> = self.channels.iter().copied().collect();
                let replay = match self.state.backlog.replay(&ids, seq, head).await {
                    Ok(replay) => replay,
                    Err(e) => {
                        tracing::info!(error = %e, seq, "cannot resume; asking for a new session");
                        self.send_op(Opcode::InvalidSession, &false).await?;
                        return Err(Some(CloseCode::InvalidSeq));
                    }
                };
                for delivery in replay {
                    self.send_text(delivery.frame.clone()).await?;
                }
                self.dispatch(
                    "RESUMED",
                    None,
                    &Resumed {
                        seq: head,
                        channels,
                    },
                )
                .await
            }
        }
    }

    async fn live(&mut self, claims: &AccessClaims) -> Step<Infallible> {
        let interval = self.state.config.heartbeat_interval;
        // A client heartbeats every interval; we allow half an interval more for a slow network.
        let mut heartbeat_deadline = Instant::now() + interval + interval / 2;
        loop {
            tokio::select! {
                frame = read_frame(&mut self.socket, &self.limiter, &self.state.metrics) => {
                    match frame? {
                        ClientFrame::Heartbeat(_) => {
                            heartbeat_deadline = Instant::now() + interval + interval / 2;
                            self.send_op(Opcode::HeartbeatAck, &()).await?;
                        }
                        ClientFrame::Identify(_) | ClientFrame::Resume(_) => {
                            return Err(Some(CloseCode::AlreadyAuthenticated));
                        }
                        ClientFrame::MessageSend(send) => Box::pin(self.send_message(claims, send)).await?,
                        ClientFrame::MessageEdit(edit) => Box::pin(self.edit_message(claims, edit)).await?,
                        ClientFrame::MessageDelete(delete) => {
                            Box::pin(self.delete_message(claims, delete)).await?;
                        }
                        ClientFrame::PresenceUpdate(update) => {
                            self.state.presence.set_status(self.id, update.status).await;
                        }
                        ClientFrame::RequestChannelMembers(request) => {
                            Box::pin(self.request_members(claims, request)).await?;
                        }
                        ClientFrame::TypingStart(typing) => {
                            let channel = typing.channel_id;
                            if self.channels.contains(&channel) && !self.closed.contains(&channel) {
                                self.state.chat.typing(claims.sub, typing.channel_id).await;
                            }
                        }
                    }
                }
                delivery = self.deliveries.recv() => {
                    let Some(delivery) = delivery else { return Err(Some(CloseCode::UnknownError)) };
                    self.deliver(claims, delivery).await?;
                }
                () = sleep_until(heartbeat_deadline) => return Err(Some(CloseCode::SessionTimedOut)),
                code = self.handle.kick.kicked() => return Err(Some(code)),
                () = self.state.draining.cancelled() => return self.reconnect().await,
            }
        }
    }

    async fn send_message(&mut self, claims: &AccessClaims, send: MessageSend) -> Step {
        let nonce = send.nonce.clone();
        if !self.channels.contains(&send.channel_id) {
            return self.reply_error(nonce, &ChatError::UnknownChannel).await;
        }
        if self.closed.contains(&send.channel_id) {
            return self.reply_error(nonce, &ChatError::Closed).await;
        }
        match self.state.chat.send(claims.sub, send).await {
            Ok(message) => {
                let message = Some(message);
                self.send_op(Opcode::Ack, &Acked { nonce, message }).await
            }
            Err(e) => self.reply_error(nonce, &e).await,
        }
    }

    async fn edit_message(&mut self, claims: &AccessClaims, edit: MessageEdit) -> Step {
        let nonce = edit.nonce.clone();
        if !self.channels.contains(&edit.channel_id) {
            return self.reply_error(nonce, &ChatError::UnknownChannel).await;
        }
        if self.closed.contains(&edit.channel_id) {
            return self.reply_error(nonce, &ChatError::Closed).await;
        }
        let state = &self.state;
        match state.chat.edit(claims.sub, edit, &state.history).await {
            Ok(message) => {
                let message = Some(message);
                self.send_op(Opcode::Ack, &Acked { nonce, message }).await
            }
            Err(e) => self.reply_error(nonce, &e).await,
        }
    }

    async fn delete_message(&mut self, claims: &AccessClaims, delete: MessageDelete) -> Step {
        let MessageDelete {
            channel_id,
            message_id,
            nonce,
        } = delete;
        if !self.channels.contains(&channel_id) {
            return self.reply_error(nonce, &ChatError::UnknownChannel).await;
        }
        let moderates = self.moderated.contains(&channel_id);
        let state = &self.state;
        let deleted = state
            .chat
            .delete(
                claims.sub,
                channel_id,
                message_id,
                moderates,
                &state.history,
            )
            .await;
        match deleted {
            Ok(()) => {
                let message = None;
                self.send_op(Opcode::Ack, &Acked { nonce, message }).await
            }
            Err(e) => self.reply_error(nonce, &e).await,
        }
    }

    /// Op 8: members of one of this session's channels, as CHANNEL_MEMBERS_CHUNK dispatches of at
    /// most [`CHUNK`] members, with their presence when asked (as far as the user may see it).
    async fn request_members(
        &mut self,
        claims: &AccessClaims,
        request: RequestChannelMembers,
    ) -> Step {
        let RequestChannelMembers {
            channel_id,
            user_ids,
            limit,
            presences,
            nonce,
        } = request;
        if nonce.as_ref().is_some_and(|n| n.chars().count() > 64) {
            return self.reply_error(None, &ChatError::InvalidNonce).await;
        }
        if !self.channels.contains(&channel_id) {
            return self.reply_error(nonce, &ChatError::UnknownChannel).await;
        }
        let query = match (user_ids, limit) {
            (Some(mut ids), None) if ids.len() <= MAX_MEMBER_IDS => {
                ids.sort_unstable();
                ids.dedup();
                MembersQuery::Ids(ids)
            }
            (None, limit) if (1..=MAX_MEMBERS_PAGE).contains(&limit.unwrap_or(100)) => {
                MembersQuery::Page {
                    after: None,
                    limit: limit.unwrap_or(100),
                }
            }
            _ => {
                let why = format!(
                    "give `limit` (1 to {MAX_MEMBERS_PAGE}) or `user_ids` (at most {MAX_MEMBER_IDS}), not both"
                );
                return self
                    .reply_error(nonce, &ChatError::InvalidRequest(why))
                    .await;
            }
        };
        let me = claims.sub;
        let state = Arc::clone(&self.state);
        let members = match state.directory.members(me, channel_id, query.clone()).await {
            Ok(members) => members,
            Err(DirectoryError::NotFound) => {
                return self.reply_error(nonce, &ChatError::UnknownChannel).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot list a channel's members");
                return self.reply_error(nonce, &ChatError::Unavailable).await;
            }
        };
        let not_found: Vec<Snowflake> = match &query {
            MembersQuery::Ids(ids) => ids
                .iter()
                .filter(|id| !members.iter().any(|m| m.user.id == **id))
                .copied()
                .collect(),
            MembersQuery::Page { .. } => Vec::new(),
        };
        let mut seen = HashMap::new();
        if presences {
            // Others' presence, as in READY: a client knows its own.
            let ids: Vec<Snowflake> = members
                .iter()
                .map(|m| m.user.id)
                .filter(|id| *id != me)
                .collect();
            match state.directory.visible(me, ids).await {
                Ok(visible) => {
                    for p in state.presence.query(visible).await {
                        seen.insert(p.user_id, p.seen_by_others());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot learn whose presence to send"),
            }
        }
        let chunks: Vec<&[Member]> = if members.is_empty() {
            vec![&[]]
        } else {
            members.chunks(CHUNK).collect()
        };
        let count = chunks.len() as u32;
        for (index, chunk) in chunks.into_iter().enumerate() {
            let chunk = ChannelMembersChunk {
                channel_id,
                members: chunk.to_vec(),
                chunk_index: index as u32,
                chunk_count: count,
                not_found: if index == 0 {
                    not_found.clone()
                } else {
                    Vec::new()
                },
                presences: presences.then(|| {
                    chunk
                        .iter()
                        .filter_map(|m| seen.get(&m.user.id).cloned())
                        .collect()
                }),
                nonce: nonce.clone(),
            };
            self.dispatch("CHANNEL_MEMBERS_CHUNK", None, &chunk).await?;
        }
        Ok(())
    }

    async fn reply_error(&mut self, nonce: Option<String>, error: &ChatError) -> Step {
        let reply = ErrorReply {
            nonce,
            code: error.code().to_owned(),
            message: error.to_string(),
        };
        self.send_op(Opcode::Error, &reply).await
    }

    /// Forwards one event, after applying what it means for this session's subscriptions.
    async fn deliver(&mut self, claims: &AccessClaims, delivery: Delivery) -> Step {
        if delivery.seq.is_some_and(|seq| seq <= self.floor) {
            return Ok(());
        }
        #[cfg(feature = "fault-injection")]
        if self.state.faults.drops(&delivery) {
            return Ok(());
        }
        let (state, handle) = (&self.state, &self.handle);
        let newly_watched = (self.presence)
            .apply(state, self.id, handle, &delivery.event)
            .await
            .map_err(Some)?;
        self.forward(claims, delivery).await?;
        // The people the event made this session watch: their presence now, after the event
        // that introduced them (as READY carries the presence of those known at the start).
        if !newly_watched.is_empty() {
            for presence in crate::presence::Watch::snapshot(&self.state, newly_watched).await {
                self.dispatch("PRESENCE_UPDATE", None, &presence).await?;
            }
        }
        Ok(())
    }

    /// Applies what an event means for this session's subscriptions, then sends it on unless it
    /// concerns a channel the session is not (or no longer) in.
    async fn forward(&mut self, claims: &AccessClaims, delivery: Delivery) -> Step {
        let me = claims.sub;
        match &delivery.event {
            // Only my own inbox carries CHANNEL_CREATE: a channel made with me in it, one I was
            // added to, or a DM opened with me or by me.
            Event::ChannelCreate(channel) => {
                self.note_role(channel, me);
                self.add_channel(channel.id).await?;
            }
            Event::ChannelUpdate(channel) => self.note_role(channel, me),
            Event::ChannelModeratorAdd(promoted) if promoted.user_id == me => {
                self.moderated.insert(promoted.channel_id);
            }
            Event::ChannelModeratorRemove(demoted) if demoted.user_id == me => {
                self.moderated.remove(&demoted.channel_id);
            }
            // Both arrive twice, from the user's inbox and from the channel's subject: the first
            // copy removes the channel, and a channel the session no longer has is not news.
            Event::ChannelMemberRemove(removed) if removed.user_id == me => {
                if !self.remove_channel(removed.channel_id).await {
                    return Ok(());
                }
                // The removed member is told, then hears nothing more of the channel.
                return self.send_text(delivery.frame.clone()).await;
            }
            Event::ChannelDelete(deleted) => {
                if !self.remove_channel(deleted.channel_id).await {
                    return Ok(());
                }
                return self.send_text(delivery.frame.clone()).await;
            }
            Event::SessionRevoked(revoked) if revoked.session_id == claims.sid => {
                self.send_text(delivery.frame.clone()).await?;
                return Err(Some(CloseCode::AuthenticationFailed));
            }
            Event::BlockUpdate(block) => {
                if let Some(dm) = block.dm {
                    if block.blocked {
                        self.closed.insert(dm);
                    } else {
                        self.closed.remove(&dm);
                    }
                }
                return Ok(());
            }
            _ if delivery.event.is_internal() => return Ok(()),
            _ => {}
        }
        // Events about a channel this session has left (still queued when it left) stay unsent.
        if delivery
            .event
            .channel()
            .is_some_and(|ch| !self.channels.contains(&ch))
        {
            return Ok(());
        }
        self.send_text(delivery.frame.clone()).await
    }

    async fn add_channel(&mut self, channel: Snowflake) -> Step {
        if self.channels.insert(channel) {
            self.join(Topic::Channel(channel)).await?;
        }
        Ok(())
    }

    /// Remembers whether this user owns or moderates `channel`, from a current copy of it: their
    /// own view says their role; the view every member shares says only who owns it.
    fn note_role(&mut self, channel: &Channel, me: Snowflake) {
        let moderates = match channel.moderated() {
            Some(moderates) => moderates,
            None if channel.owner_id == Some(me) => true,
            None => return,
        };
        if moderates {
            self.moderated.insert(channel.id);
        } else {
            self.moderated.remove(&channel.id);
        }
    }

    /// Leaves a channel; `false` when the session was not in it (any more).
    async fn remove_channel(&mut self, channel: Snowflake) -> bool {
        self.moderated.remove(&channel);
        if !self.channels.remove(&channel) {
            return false;
        }
        let topic = Topic::Channel(channel);
        self.topics.retain(|t| *t != topic);
        self.state.hub.leave(topic, self.id).await;
        true
    }

    async fn join(&mut self, topic: Topic) -> Step {
        if let Err(e) = self
            .state
            .hub
            .join(topic, self.id, self.handle.clone())
            .await
        {
            tracing::warn!(error = %e, ?topic, "cannot subscribe");
            return Err(Some(CloseCode::UnknownError));
        }
        self.topics.push(topic);
        Ok(())
    }

    async fn dispatch<T: Serialize>(&mut self, name: &str, seq: Option<u64>, d: &T) -> Step {
        let frame = Frame {
            op: Opcode::Dispatch,
            d,
            s: seq,
            t: Some(name.to_owned()),
        };
        self.send_text(encode(&frame)).await
    }

    async fn send_op<T: Serialize>(&mut self, op: Opcode, d: &T) -> Step {
        let frame = Frame {
            op,
            d,
            s: None,
            t: None,
        };
        self.send_text(encode(&frame)).await
    }

    /// Writes one frame, giving up on a client that does not take it within the write deadline.
    ///
    /// No failure is silent: a client that went away ends the session quietly (there is nobody to
    /// tell), and a frame that cannot be written for any other reason (larger than the socket's
    /// write buffer may hold) closes the socket with 4000 and a log line, so neither the client nor
    /// the operator is left guessing.
    async fn send_text(&mut self, text: Utf8Bytes) -> Step {
        let bytes = text.len();
        let write = self.socket.send(Message::Text(text));
        match tokio::time::timeout(self.state.config.write_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if gone(&e) => {
                tracing::debug!(session = self.id, error = %e, "the client went away mid-write");
                Err(None)
            }
            Ok(Err(e)) => {
                tracing::error!(
                    session = self.id,
                    bytes,
                    error = %e,
                    "cannot write a frame to a client; closing its socket"
                );
                self.state.metrics.unwritable_frames.inc();
                Err(Some(CloseCode::UnknownError))
            }
            Err(_) => {
                self.state.metrics.slow_client_closes.inc();
                Err(Some(CloseCode::SessionTimedOut))
            }
        }
    }

    /// The edge is draining: ask the client to reconnect elsewhere and resume there.
    async fn reconnect<T>(&mut self) -> Step<T> {
        self.send_op(Opcode::Reconnect, &()).await?;
        Err(Some(CloseCode::UnknownError))
    }

    /// Leaves every topic and closes the socket with the ending's code.
    async fn finish(mut self, ending: Ending) {
        for topic in std::mem::take(&mut self.topics) {
            self.state.hub.leave(topic, self.id).await;
        }
        self.presence.finish(&self.state, self.id).await;
        if let Some(code) = ending {
            self.state
                .metrics
                .closes
                .with_label_values(&[&format!("{code:?}")])
                .inc();
            let close = Message::Close(Some(CloseFrame {
                code: code.code(),
                reason: Utf8Bytes::from_static(""),
            }));
            match tokio::time::timeout(Duration::from_secs(1), self.socket.send(close)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, ?code, "cannot send the close frame"),
                Err(_) => tracing::debug!(?code, "the close frame was not taken in time"),
            }
            // The closing handshake: read (and drop) what the client still sends until its Close
            // answers ours. Dropping the socket with unread bytes in the kernel's buffer would
            // make it send a reset, and a reset can reach the client before our Close frame, so
            // a client that flooded would never learn why it was closed.
            let drained = async { while let Some(Ok(_)) = self.socket.recv().await {} };
            let _ = tokio::time::timeout(CLOSING_HANDSHAKE, drained).await;
        }
    }
}

/// How long a closing session waits for the client to answer its Close.
const CLOSING_HANDSHAKE: Duration = Duration::from_secs(2);

/// Whether a socket error means the client went away (a reset, no closing handshake, a broken
/// pipe), rather than that it sent something that is not valid WebSocket or that a frame cannot
/// be written: nothing to answer, no decode error, nothing to log above debug.
fn gone(error: &axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    let source: &(dyn std::error::Error + 'static) = error;
    let Some(inner) = std::error::Error::source(source).and_then(|e| e.downcast_ref::<Error>())
    else {
        return false;
    };
    matches!(
        inner,
        Error::Io(_)
            | Error::ConnectionClosed
            | Error::AlreadyClosed
            | Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)
    )
}

/// Reads the next client frame, enforcing the frame rate limit. A free function over the fields it
/// needs, so the session's select loop can wait on it beside its delivery queue.
async fn read_frame(
    socket: &mut WebSocket,
    limiter: &DefaultDirectRateLimiter,
    metrics: &EdgeMetrics,
) -> Step<ClientFrame> {
    loop {
        let message = match socket.recv().await {
            Some(Ok(message)) => message,
            Some(Err(e)) if gone(&e) => return Err(None),
            // Over the size limit, or not WebSocket at all.
            Some(Err(e)) => {
                tracing::debug!(error = %e, "socket error");
                return Err(Some(CloseCode::DecodeError));
            }
            None => return Err(None),
        };
        if let Message::Close(_) = message {
            return Err(None);
        }
        metrics.events_in.inc();
        // Every frame counts, control frames too: tungstenite answers each ping with a pong, so an
        // uncounted ping flood would cost a write per frame for free.
        if limiter.check().is_err() {
            return Err(Some(CloseCode::RateLimited));
        }
        let text = match message {
            Message::Text(text) => text,
            Message::Ping(_) | Message::Pong(_) => continue,
            // (A Close was answered above.)
            Message::Binary(_) | Message::Close(_) => return Err(Some(CloseCode::DecodeError)),
        };
        return ClientFrame::decode(&text).map_err(Some);
    }
}

fn encode<T: Serialize>(frame: &Frame<T>) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(frame).expect("frames serialise"))
}

/// Most members in one CHANNEL_MEMBERS_CHUNK.
const CHUNK: usize = 100;

/// How long READY waits for the store's unread counts before going without them.
const READY_STORE_BUDGET: Duration = Duration::from_millis(1500);

/// READY: who the user is, where they talk, and the stream position the session starts from.
#[derive(Serialize)]
struct Ready {
    v: u8,
    session_id: String,
    /// Resume from here: the chat stream's position when the session started.
    seq: u64,
    user: shared::api::users::User,
    channels: Vec<ReadyChannel>,
    /// The presence of the other side of each DM that shows it (they opened it; no block).
    presences: Vec<shared::api::presence::Presence>,
}

/// A channel in READY: the channel as the user sees it (its member count, not its members: those
/// come on request, so READY stays small however many channels the user is in), and where its
/// messages and the user's reading stand (left out when the store could not say in time).
#[derive(Serialize)]
struct ReadyChannel {
    #[serde(flatten)]
    channel: Channel,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    summary: Option<ReadSummary>,
}

#[derive(Serialize)]
struct Resumed {
    seq: u64,
    channels: Vec<Channel>,
}

#[derive(Serialize)]
struct Acked {
    nonce: Option<String>,
    /// The message as stored (sends and edits; not deletes).
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<shared::api::messages::Message>,
}
