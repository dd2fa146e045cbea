//! One client connection, from HELLO to close.
//!
//! ```text
//! accept ─► HELLO ─► IDENTIFY or RESUME (10 s) ─► join topics ─► READY / replay + RESUMED ─► loop
//!   loop: client frame │ hub delivery │ heartbeat deadline │ kick (or the edge draining)
//! ```
//!
//! A kick comes through the session's queue, with the hub's runs (`crate::queue`): the hub's (a
//! client too slow), the dispatcher's (events lost), or the edge's draining, which has no code and
//! asks the client to reconnect elsewhere. The hub kicks every session it holds when the edge
//! drains, and every one that joins after; a session still waiting for IDENTIFY watches the
//! edge's draining itself.
//!
//! The session lives in one task. It never buffers without bound: deliveries wait in a bounded
//! queue that the hub refuses to overfill (the session is then kicked with a resumable code), and
//! every socket write has a deadline, so a client that stops reading is dropped rather than kept.
//!
//! A client's sends never hold its deliveries up: each is handed to JetStream at once, in the
//! order they came, and its answer (ACK or ERROR) waits in the session's reply lane while the
//! session goes on. An answer that is ready is written before any queued delivery, so a busy
//! channel never makes the person talking in it wait for their ACKs, nor fall behind on their
//! own echoes and be closed as too slow. A session whose client sends moves, between two steps,
//! to the edge's lane (`crate::lane`), a thread apart from the fan-out, and back once its client
//! has gone quiet: its next part runs there as a task of its own.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use governor::{DefaultDirectRateLimiter, RateLimiter};
use kit::tokens::AccessClaims;
use proto::Snowflake;
use proto::gateway::{ClientFrame, CloseCode, Hello, Opcode};
use rustc_hash::{FxHashMap, FxHashSet};
use tokio::time::{Instant, sleep_until};

use crate::fanout::{SessionId, Topic};
use crate::lane::{Place, Seat};
use crate::queue::{self, Next};
use crate::state::EdgeState;
use crate::wire::Socket;

mod events;
mod guilds;
mod requests;
mod socket;
mod start;
mod voice;

pub(crate) use requests::record_delete;
use socket::read_frame;

/// Why a session ends: the close code to send, or `None` when the socket is already gone.
type Ending = Option<CloseCode>;
/// One step of a session: `Err` ends it, so `?` reads as "or the session is over".
type Step<T = ()> = Result<T, Ending>;

/// A connection's session, as the future its task runs. Made here, before the future, so that the
/// future holds the session once (an `async fn` would also keep its arguments, the socket among
/// them, for as long as it runs); and while it lives it holds only the session, the claims and
/// `live`'s state: the handshake and the closing are boxed, as their awaits would otherwise stay
/// in every idle session (docs/ARCHITECTURE.md, the edge's invariants).
pub(crate) fn serve(
    socket: Socket,
    deliveries: queue::Receiver,
    state: Arc<EdgeState>,
) -> impl Future<Output = ()> + Send {
    state.metrics.connections.inc();
    let id = state.next_session_id();
    let mut session = Session {
        socket,
        state: Arc::clone(&state),
        id,
        deliveries,
        limiter: RateLimiter::direct_with_clock(state.config.client_quota(), state.clock.clone()),
        topics: Vec::new(),
        channels: FxHashSet::default(),
        moderated: FxHashSet::default(),
        closed: FxHashSet::default(),
        guilds: FxHashMap::default(),
        channel_guilds: FxHashMap::default(),
        unexplained: FxHashSet::default(),
        floor: 0,
        presence: crate::watch::Watch::default(),
        replies: Replies::default(),
        voice: None,
        voice_session: None,
    };
    async move {
        // Matched by reference: a match on the handshake's result itself keeps that result
        // beside the claims moved out of it for as long as the session lives (80 bytes more in
        // every session's task, enough to put it in the allocator's next class).
        let started = Box::pin(session.handshake()).await;
        let ending = match &started {
            Ok(claims) => {
                session.state.metrics.sessions.inc();
                match session.live(claims).await {
                    Ok(place) => return session.carry(claims.clone(), place),
                    Err(ending) => {
                        session.state.metrics.sessions.dec();
                        ending
                    }
                }
            }
            Err(ending) => *ending,
        };
        Box::pin(session.finish(ending)).await;
        state.metrics.connections.dec();
    }
}

struct Session {
    socket: Socket,
    state: Arc<EdgeState>,
    id: SessionId,
    /// What the hub hands this session, and its kick.
    deliveries: queue::Receiver,
    limiter: DefaultDirectRateLimiter,
    /// Topics joined in the hub, left again when the session ends.
    topics: Vec<Topic>,
    /// The channels this user may read and send in, kept current by inbox events. (Looked up for
    /// every delivery: hashed with Fx, as its ids are the servers' own.)
    channels: FxHashSet<Snowflake>,
    /// The channels this user owns or moderates (may delete anyone's messages), kept current the
    /// same way.
    moderated: FxHashSet<Snowflake>,
    /// DMs that refuse sends: one of the two blocks the other. Kept current by BLOCK_UPDATE.
    closed: FxHashSet<Snowflake>,
    /// The servers this user is in: the edge's feed of each, their member object, and the
    /// channels they may view (those with messages are in `channels` too).
    guilds: FxHashMap<Snowflake, guilds::Joined>,
    /// Each server channel this session may view, and its server.
    channel_guilds: FxHashMap<Snowflake, Snowflake>,
    /// Servers this session was told were gone without saying why (its user's own
    /// GUILD_MEMBER_REMOVE came first): the GUILD_DELETE from their inbox, which says why, is
    /// forwarded after all. At most the servers the user was in.
    unexplained: FxHashSet<Snowflake>,
    /// Stored events at or below this stream sequence were already sent (in READY's snapshot or a
    /// replay); live copies of them are dropped.
    floor: u64,
    /// Whose presence this session watches (co-members it may see in its small channels).
    presence: crate::watch::Watch,
    /// Answers to the client's sends whose acknowledgement is on its way (the reply lane), and
    /// where the session runs.
    replies: Replies,
    /// The voice channel or call this connection joined (op 4), left when it ends.
    voice: Option<Box<voice::Joined>>,
    /// The id this connection's voice states carry, made at its first op 4.
    voice_session: Option<Box<str>>,
}

/// The reply lane, and what a session that sends needs to move to the edge's lane and back:
/// made at a session's first send (a set of futures allocates as it is made, and most sessions
/// never send).
#[derive(Default)]
struct Replies(Option<Box<Talking>>);

struct Talking {
    replies: FuturesUnordered<BoxFuture<'static, String>>,
    /// The client's last send, and whether one came since the session last looked for a seat
    /// on the lane.
    last_send: Instant,
    sent: bool,
    /// The session's place on the edge's lane, from when it is due to move there.
    seat: Option<Seat>,
    /// Due to move to the lane: it reads nothing from its client until its sends in flight
    /// are answered, then moves.
    boarding: bool,
    /// The heartbeat deadline, over a move.
    heartbeat: Option<Instant>,
}

impl Replies {
    fn push(&mut self, reply: BoxFuture<'static, String>) {
        let talking = self.0.get_or_insert_with(|| {
            Box::new(Talking {
                replies: FuturesUnordered::new(),
                last_send: Instant::now(),
                sent: false,
                seat: None,
                boarding: false,
                heartbeat: None,
            })
        });
        talking.replies.push(reply);
        talking.last_send = Instant::now();
        talking.sent = true;
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |talking| talking.replies.len())
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next answer ready; `None` when none is waiting. (As small as the set's own `next`:
    /// every session's task holds it in its wait, `live`'s `select!`.)
    fn next(&mut self) -> impl Future<Output = Option<String>> + '_ {
        std::future::poll_fn(|cx| match &mut self.0 {
            Some(talking) => talking.replies.poll_next_unpin(cx),
            None => std::task::Poll::Ready(None),
        })
    }

    /// Whether the session waits for its sends in flight to be answered before it moves.
    fn boarding(&self) -> bool {
        self.0.as_ref().is_some_and(|talking| talking.boarding)
    }

    /// Where the session should run from now on, if not where it is: on the lane after a send,
    /// when it has room; back on the main runtime once the client has not sent for `quiet`.
    /// Never while a send waits for JetStream: each runtime publishes over its own connection,
    /// and a send published on the next one must not overtake those before it. So a session due
    /// on the lane boards first: it stops reading its client (whose frames wait in its socket)
    /// until its sends in flight are answered, which takes one acknowledgement's time where a
    /// client sending without pause would otherwise never leave a gap to move in.
    fn move_due(&mut self, lane: &crate::lane::Lane) -> Option<Place> {
        let talking = self.0.as_mut()?;
        match &talking.seat {
            None if std::mem::take(&mut talking.sent) => {
                talking.seat = Some(lane.seat()?);
                talking.boarding = true;
            }
            Some(_)
                if !talking.boarding
                    && talking.replies.is_empty()
                    && talking.last_send.elapsed() >= lane.quiet =>
            {
                talking.seat = None;
                talking.sent = false;
                return Some(Place::Main);
            }
            _ => {}
        }
        (talking.boarding && talking.replies.is_empty()).then(|| {
            talking.boarding = false;
            Place::Lane
        })
    }
}

/// Sends a session may have waiting for JetStream at once; past that it stops reading the
/// client until one is answered (the client's socket then holds the rest).
const SENDS_IN_FLIGHT: usize = 256;

/// Events written at most per step (whole runs: up to `MAX_RUN` more), so a session fed without
/// pause still reads its client.
const DELIVERIES_PER_STEP: usize = 256;

impl Session {
    /// HELLO, then IDENTIFY or RESUME within the timeout, and the session's start (READY, or the
    /// replay and RESUMED): the claims it was opened with.
    async fn handshake(&mut self) -> Step<AccessClaims> {
        let hello = Hello {
            heartbeat_interval: self.state.config.heartbeat_interval.as_millis() as u64,
        };
        self.send_op(Opcode::Hello, &hello).await?;
        self.flush().await?;

        let deadline = Instant::now() + self.state.config.identify_timeout;
        let claims = loop {
            let frame = tokio::select! {
                frame = read_frame(&mut self.socket, &self.limiter, &self.state.metrics) => frame?,
                () = sleep_until(deadline) => return Err(Some(CloseCode::NotAuthenticated)),
                // (Not in the hub yet: nothing else kicks it.)
                () = self.state.draining.cancelled() => return self.reconnect().await,
            };
            match frame {
                ClientFrame::Heartbeat(_) => self.send_op(Opcode::HeartbeatAck, &()).await?,
                ClientFrame::Identify(identify) => {
                    // Boxed: a future is as large as its largest await, and these (HTTP calls to
                    // auth, the stream replay) would otherwise stay inside every idle session.
                    let claims = Box::pin(self.authenticate(&identify.token)).await?;
                    Box::pin(self.start(&claims, None)).await?;
                    break claims;
                }
                ClientFrame::Resume(resume) => {
                    let claims = Box::pin(self.authenticate(&resume.token)).await?;
                    Box::pin(self.start(&claims, Some(resume.seq))).await?;
                    break claims;
                }
                _ => return Err(Some(CloseCode::NotAuthenticated)),
            }
            self.flush().await?;
        };
        self.flush().await?;
        Ok(claims)
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

    /// The session's life after its start, until it ends (`Err`) or moves (`Ok`: where to).
    async fn live(&mut self, claims: &AccessClaims) -> Step<Place> {
        let interval = self.state.config.heartbeat_interval;
        // A client heartbeats every interval; we allow half an interval more for a slow network.
        let heartbeat = self
            .replies
            .0
            .as_mut()
            .and_then(|talking| talking.heartbeat.take());
        let heartbeat = heartbeat.unwrap_or_else(|| Instant::now() + interval + interval / 2);
        let heartbeat_deadline = sleep_until(heartbeat);
        let mut heartbeat_deadline = std::pin::pin!(heartbeat_deadline);
        loop {
            // The reply lane first: an answer that is ready never waits behind fan-out. (Polled
            // only when it holds any: polling an empty set registers its waker every step.)
            while !self.replies.is_empty() {
                let Some(Some(reply)) = self.replies.next().now_or_never() else {
                    break;
                };
                self.send_text(&reply).await?;
            }
            self.flush().await?;
            // Between two steps, with every answer out: the moment to move, if it is due.
            if let Some(lane) = &self.state.lane
                && let Some(place) = self.replies.move_due(lane)
                && let Some(talking) = &mut self.replies.0
            {
                talking.heartbeat = Some(heartbeat_deadline.deadline());
                return Ok(place);
            }
            // Then whatever is ready, the client's frames and deliveries taking turns: a session
            // fed without pause still hears its client, and one talking fast still reads.
            tokio::select! {
                Some(reply) = self.replies.next(), if !self.replies.is_empty() => {
                    self.send_text(&reply).await?;
                }
                frame = read_frame(&mut self.socket, &self.limiter, &self.state.metrics),
                    if self.replies.len() < SENDS_IN_FLIGHT && !self.replies.boarding() => {
                    match frame? {
                        ClientFrame::Heartbeat(_) => {
                            heartbeat_deadline
                                .as_mut()
                                .reset(Instant::now() + interval + interval / 2);
                            self.send_op(Opcode::HeartbeatAck, &()).await?;
                        }
                        ClientFrame::Identify(_) | ClientFrame::Resume(_) => {
                            return Err(Some(CloseCode::AlreadyAuthenticated));
                        }
                        ClientFrame::MessageSend(send) => {
                            // Boxed, as every request below: a future is as large as its
                            // largest await, and every idle session holds this one.
                            Box::pin(self.send_message(claims, send)).await?;
                        }
                        ClientFrame::MessageEdit(edit) => Box::pin(self.edit_message(claims, edit)).await?,
                        ClientFrame::MessageDelete(delete) => {
                            Box::pin(self.delete_message(claims, delete)).await?;
                        }
                        ClientFrame::PresenceUpdate(update) => {
                            Box::pin(self.state.presence.set_status(self.id, update.status)).await;
                        }
                        ClientFrame::RequestChannelMembers(request) => {
                            Box::pin(self.request_members(claims, request)).await?;
                        }
                        ClientFrame::RequestGuildMembers(request) => {
                            Box::pin(self.request_guild_members(claims, request)).await?;
                        }
                        ClientFrame::VoiceStateUpdate(update) => {
                            Box::pin(self.voice_state_update(claims, update)).await?;
                        }
                        ClientFrame::TypingStart(typing) => {
                            let channel = typing.channel_id;
                            let may = self.allowed(channel).is_none_or(|allowed| {
                                allowed.permissions.has(proto::permissions::Permissions::SEND_MESSAGES)
                            });
                            if may && self.channels.contains(&channel) && !self.closed.contains(&channel) {
                                Box::pin(self.state.chat.typing(claims.sub, typing.channel_id)).await;
                            }
                        }
                    }
                }
                next = self.deliveries.next() => {
                    let mut run = match next {
                        Next::Run(run) => run,
                        Next::Kicked(code) => return self.kicked(code).await,
                    };
                    // Everything else already waiting goes out with it, in one write.
                    let mut written = 0;
                    loop {
                        self.deliveries.taken(run.len());
                        written += run.len();
                        for delivery in run.iter() {
                            self.deliver(claims, delivery).await?;
                        }
                        if written >= DELIVERIES_PER_STEP {
                            break;
                        }
                        let Some(next) = self.deliveries.try_recv() else { break };
                        run = next;
                    }
                }
                () = &mut heartbeat_deadline => return Err(Some(CloseCode::SessionTimedOut)),
            }
            self.flush().await?;
        }
    }

    /// Runs the rest of the session on `place` (a task of its own there, its socket watched
    /// by that runtime's reactor), until it ends or moves again.
    fn carry(self, claims: AccessClaims, place: Place) {
        let state = Arc::clone(&self.state);
        let Some(lane) = &state.lane else {
            unreachable!("a session moves only on an edge with a lane");
        };
        let mut session = self;
        let state_at_end = Arc::clone(&state);
        lane.spawn(place, async move {
            session.socket.rebind();
            let ending = match session.live(&claims).await {
                Ok(place) => return session.carry(claims, place),
                Err(ending) => ending,
            };
            session.state.metrics.sessions.dec();
            Box::pin(session.finish(ending)).await;
            state_at_end.metrics.connections.dec();
        });
    }
}
