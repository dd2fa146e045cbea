//! The edge: a WebSocket gateway server. Many run side by side; each subscribes to NATS on behalf
//! of its local sessions and fans events out to their sockets in process.
//!
//! - [`session`]: one client connection, HELLO to close.
//! - [`lane`]: the thread where talking sessions run, apart from the fan-out.
//! - [`lateness`]: how late the edge's main runtime runs, which moves talkers to the lane and
//!   makes the dispatcher gather deliveries.
//! - [`fanout`]: the per-edge table of NATS subscriptions (one per channel or inbox) and sessions.
//! - [`guilds`]: what the edge keeps of each server it has members' sessions of (roles, channels,
//!   overwrites), to decide from memory what each session may see and send.
//! - [`continuity`]: keeping channels', inboxes' and servers' live delivery gap-free when NATS
//!   drops messages.
//! - [`chat`]: sends, edits and deletes into the chat stream; typing and read markers.
//! - [`attachments`]: a message's files: media takes them, links signed on every read.
//! - [`archive`]: history pages, read markers and unread counts from the message store.
//! - [`directory`]: who a token's user is and where they talk, asked of auth.
//! - [`discovery`]: a NATS service answering auth's "which edge should a client use".
//! - [`reporter`]: reporting this edge's sessions to the presence service, and asking it.
//! - [`purge`]: deleting a banned member's recent messages when auth asks.
//! - [`processed`]: updating a message once media has processed its images.
//! - [`watch`]: per session, watching the presence of the co-members it may see.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

pub mod archive;
pub mod attachments;
pub mod chat;
pub mod continuity;
pub mod directory;
pub mod discovery;
pub mod fanout;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod guilds;
pub mod lane;
pub mod lateness;
pub mod metrics;
pub mod processed;
pub mod purge;
pub mod queue;
pub mod reporter;
pub mod routes;
pub mod search;
pub mod session;
pub mod state;
pub mod watch;
mod wire;

use clap::Parser;
use kit::config::{LogConfig, NatsConfig, RateSpec};
use kit::health::Readiness;
use kit::lifecycle::{Essentials, HttpServer, Service, Shutdown, TaskError};
use kit::stream::{ChatStream, ChatStreamConfig, EventsStream, EventsStreamConfig};
use kit::telemetry::Metrics;
use kit::tokens::Verifier;
use proto::subjects::Subjects;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::archive::Archive;
use crate::chat::Chat;
use crate::directory::Directory;
use crate::fanout::Hub;
use crate::lane::Lane;
use crate::lateness::Lateness;
use crate::metrics::EdgeMetrics;
use crate::reporter::{PresenceSettings, Reporter};
use crate::state::{EdgeState, GatewaySettings};

/// The edge's configuration.
#[derive(Debug, Clone, Parser)]
#[command(name = "edge", version, about = "Natter WebSocket gateway")]
pub struct Config {
    /// Address the gateway (WebSocket and REST) listens on.
    #[arg(
        long = "http-addr",
        env = "NATTER_EDGE_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub http_addr: SocketAddr,

    /// Address `/metrics` is served on, apart from the public port (so only whoever can reach
    /// this address reads the service's internals).
    #[arg(
        long = "metrics-addr",
        env = "NATTER_EDGE_METRICS_ADDR",
        default_value = "127.0.0.1:9080"
    )]
    pub metrics_addr: SocketAddr,

    /// Header-read timeout and per-address connection cap of both listeners.
    #[command(flatten)]
    pub listener: kit::listener::ListenerLimits,

    /// The WebSocket URL clients are given to reach this edge (defaults to
    /// `ws://<http-addr>/gateway`).
    #[arg(long = "public-url", env = "NATTER_EDGE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Snowflake worker id of this process (0-1023); every id-making process needs its own.
    #[arg(long = "worker-id", env = "NATTER_WORKER_ID", default_value = "1",
          value_parser = kit::config::worker_id)]
    pub worker_id: u16,

    /// Where auth's REST API is: the edge fetches token keys, profiles and channel lists there.
    #[arg(
        long = "auth-url",
        env = "NATTER_AUTH_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub auth_url: url::Url,

    /// Requests to auth in flight at once (each a kept-alive connection); more wait their turn.
    /// Bounds the edge's connections to auth when thousands of sessions start at once.
    #[arg(
        long = "auth-connections",
        env = "NATTER_AUTH_CONNECTIONS",
        default_value_t = 64
    )]
    pub auth_connections: usize,

    #[command(flatten)]
    pub tokens: kit::tokens::TokenClaimsConfig,

    /// Media: where it is, and the secret its file links are signed with.
    #[command(flatten)]
    pub media: attachments::MediaConfig,

    /// Browser origins allowed to open a socket (comma separated). Clients that send no Origin
    /// (bots, scripts) are not browsers and are let through.
    #[arg(
        long = "allowed-origins",
        env = "NATTER_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8081,http://localhost:8081,http://127.0.0.1:5173,http://localhost:5173"
    )]
    pub allowed_origins: Vec<String>,

    /// How often clients must heartbeat.
    #[arg(long = "heartbeat-interval", env = "NATTER_HEARTBEAT_INTERVAL", default_value = "41250ms",
          value_parser = kit::config::duration)]
    pub heartbeat_interval: Duration,

    /// How long a new socket may take to identify.
    #[arg(long = "identify-timeout", env = "NATTER_IDENTIFY_TIMEOUT", default_value = "10s",
          value_parser = kit::config::duration)]
    pub identify_timeout: Duration,

    /// How long one write to a client may take before the client counts as not reading.
    #[arg(long = "write-timeout", env = "NATTER_WRITE_TIMEOUT", default_value = "10s",
          value_parser = kit::config::duration)]
    pub write_timeout: Duration,

    /// Events a session may have waiting before it is closed as too slow (resumable).
    #[arg(
        long = "session-queue",
        env = "NATTER_SESSION_QUEUE",
        default_value_t = 1024
    )]
    pub session_queue: usize,

    /// Sessions the edge's lane holds at most: a session whose client sends moves there, to a
    /// thread of its own apart from the fan-out, so its answers do not wait behind deliveries
    /// (`edge/src/lane.rs`). At the edge's ceiling the lane halves a sender's ACK, and costs
    /// receivers' deliveries a little of their p99 in some hours (docs/BENCHMARKS.md, "The lane
    /// by default"). 0: no lane, every session on the main runtime.
    #[arg(
        long = "lane-sessions",
        env = "NATTER_LANE_SESSIONS",
        default_value_t = 256
    )]
    pub lane_sessions: usize,

    /// How late the main runtime may run a timer for the edge to count as behind
    /// (`edge/src/lateness.rs`): a talking session moves to the lane while the last sample
    /// was, and the dispatcher gathers deliveries for `--delivery-linger` while a quarter of
    /// each of the last two seconds' were. An edge with time to spare keeps every session where
    /// its deliveries are handed out and hands each event out as it comes. 0: always behind.
    #[arg(long = "behind-after", env = "NATTER_BEHIND_AFTER", default_value = "2ms",
          value_parser = kit::config::duration)]
    pub behind_after: Duration,

    /// How long a session on the lane may go without a send before it moves back.
    #[arg(long = "lane-quiet", env = "NATTER_LANE_QUIET", default_value = "2m",
          value_parser = kit::config::duration)]
    pub lane_quiet: Duration,

    /// While the edge is behind (`--behind-after`, and for 5 s after), the dispatcher hands
    /// out at most once per this long, what came meanwhile together, so each session writes
    /// several events with one system call where it wrote each alone: on a machine whose cores
    /// are full, the writes it saves are what the deliveries were waiting for
    /// (docs/BENCHMARKS.md, "The dispatcher gathers while the edge is behind"). 0: every event
    /// is handed out as it comes.
    #[arg(long = "delivery-linger", env = "NATTER_DELIVERY_LINGER", default_value = "20ms",
          value_parser = kit::config::duration)]
    pub delivery_linger: Duration,

    /// Client frames allowed per connection per minute.
    #[arg(
        long = "frames-per-minute",
        env = "NATTER_FRAMES_PER_MINUTE",
        default_value_t = 120
    )]
    pub frames_per_minute: u32,

    /// Messages one user may send to one channel, as COUNT/PERIOD.
    #[arg(long = "send-rate", env = "NATTER_SEND_RATE", default_value = "5/5s",
          value_parser = RateSpec::parse)]
    pub send_rate: RateSpec,

    /// Largest client message in bytes (one frame, or all the fragments of one).
    #[arg(long = "max-frame-bytes", env = "NATTER_MAX_FRAME_BYTES", default_value_t = 16 * 1024)]
    pub max_frame_bytes: usize,

    /// Bytes asked of a socket per read, at least (a frame whose header says it is longer is
    /// read whole). Held only while a frame is not yet whole: an idle socket has no read buffer.
    #[arg(
        long = "read-buffer-bytes",
        env = "NATTER_READ_BUFFER_BYTES",
        default_value_t = 1024
    )]
    pub read_buffer_bytes: usize,

    /// The largest frame the edge sends, in bytes (a larger one closes the socket with 4000,
    /// logged). READY carries channels, not their members (about 43 KB for the most channels,
    /// each full), but long topics can take it to about 1 MiB. A socket holds at most a step's
    /// worth of unsent frames (16 KiB) and one more; a client that stops reading is closed by
    /// the write deadline.
    #[arg(
        long = "max-write-buffer-bytes",
        env = "NATTER_MAX_WRITE_BUFFER_BYTES",
        default_value_t = 4 * 1024 * 1024
    )]
    pub max_write_buffer_bytes: usize,

    /// Largest REST request body accepted, in bytes (larger: 413 `payload_too_large`).
    #[arg(
        long = "max-body-bytes",
        env = "NATTER_MAX_BODY_BYTES",
        default_value_t = 64 * 1024
    )]
    pub max_body_bytes: usize,

    /// Channels with more members than this get no pushed presence (clients ask
    /// `GET /api/v1/presences` when they open one); DMs always do.
    #[arg(
        long = "presence-max-members",
        env = "NATTER_PRESENCE_MAX_MEMBERS",
        default_value_t = 100
    )]
    pub presence_max_members: usize,

    /// How often the edge tells presence it is alive (well under presence's `--expiry`).
    #[arg(long = "presence-heartbeat", env = "NATTER_PRESENCE_HEARTBEAT", default_value = "10s",
          value_parser = kit::config::duration)]
    pub presence_heartbeat: Duration,

    /// How long READY and `GET /api/v1/presences` wait for presence before saying `unknown`.
    #[arg(long = "presence-timeout", env = "NATTER_PRESENCE_TIMEOUT", default_value = "500ms",
          value_parser = kit::config::duration)]
    pub presence_timeout: Duration,

    /// Connections this edge is sized for: discovery's load figure is connections per thousand
    /// of it.
    #[arg(
        long = "capacity",
        env = "NATTER_EDGE_CAPACITY",
        default_value_t = 15_000
    )]
    pub capacity: u64,

    /// On SIGTERM, how long to wait for clients to move before exiting anyway.
    #[arg(long = "drain-timeout", env = "NATTER_DRAIN_TIMEOUT", default_value = "30s",
          value_parser = kit::config::duration)]
    pub drain_timeout: Duration,

    /// How many partitions the search index is split into: the search processes'
    /// `--partitions` (searches go to the partitions holding the channels searched).
    #[arg(
        long = "search-partitions",
        env = "NATTER_SEARCH_PARTITIONS",
        default_value_t = 1
    )]
    pub search_partitions: u32,

    /// Channels of up to this many members show read receipts to every member.
    #[arg(
        long = "receipts-max-members",
        env = "NATTER_RECEIPTS_MAX_MEMBERS",
        default_value_t = 25
    )]
    pub receipts_max_members: usize,

    /// How often the edge checks every channel it follows against the chat stream, for events
    /// live delivery lost without anything saying so (reconnects, dropped messages and stream
    /// leader changes are checked at once). A lost event waits at most this plus a second.
    #[arg(long = "delivery-check-interval", env = "NATTER_DELIVERY_CHECK_INTERVAL",
          default_value = "5s", value_parser = kit::config::duration)]
    pub delivery_check_interval: Duration,

    /// How long one read of the message store may take.
    #[arg(long = "cql-request-timeout", env = "NATTER_CQL_REQUEST_TIMEOUT", default_value = "2s",
          value_parser = kit::config::duration)]
    pub cql_request_timeout: Duration,

    /// Test builds only: drop the Nth message this edge delivers, to prove loss is noticed.
    #[cfg(feature = "fault-injection")]
    #[arg(long = "fault-drop-message", hide = true)]
    pub fault_drop_message: Option<u64>,

    #[command(flatten)]
    pub cql: store::cql::CqlConfig,

    #[command(flatten)]
    pub nats: NatsConfig,

    #[command(flatten)]
    pub stream: ChatStreamConfig,

    #[command(flatten)]
    pub events_stream: EventsStreamConfig,

    #[command(flatten)]
    pub log: LogConfig,
}

/// Why the edge could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to NATS: {0}")]
    Nats(#[from] async_nats::ConnectError),
    #[error("cannot follow the streams' leader changes: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
    #[error("cannot register for discovery: {0}")]
    Discovery(async_nats::Error),
    #[error("cannot create the chat or the events stream: {0}")]
    Stream(#[from] async_nats::jetstream::context::CreateStreamError),
    #[error("cannot load auth's token keys: {0}")]
    Keys(#[from] kit::tokens::KeySetError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Task(#[from] TaskError),
}

/// An edge, built and bound, ready to run.
pub struct Edge {
    http: HttpServer,
    state: Arc<EdgeState>,
    sessions: TaskTracker,
    discovery: discovery::Registration,
    drain_timeout: Duration,
    /// What live delivery checks listen to: the NATS client's connection events and the chat
    /// and events streams' leader changes.
    nats_events: tokio::sync::mpsc::Receiver<async_nats::Event>,
    dispatcher: continuity::Dispatcher,
    leader_changes: Vec<async_nats::Subscriber>,
    delivery_check_interval: Duration,
    /// Auth's requests to delete a banned member's recent messages.
    purges: async_nats::Subscriber,
    /// Media's requests to update messages whose images it processed.
    processed: async_nats::Subscriber,
    nats: async_nats::Client,
}

impl Edge {
    pub async fn build(config: Config) -> Result<Self, Error> {
        // Boxed: the build holds every client and reader across its awaits, a future too large
        // for a caller's stack.
        Box::pin(Self::assemble(config)).await
    }

    async fn assemble(config: Config) -> Result<Self, Error> {
        let (nats, nats_events) = config.nats.connect_with_events("edge").await?;
        let subjects = Subjects::new(config.nats.prefix.clone());
        let js = async_nats::jetstream::new(nats.clone());
        config.stream.ensure(&js, &subjects).await?;
        let events_info = config.events_stream.ensure(&js, &subjects).await?;
        let leader_changes = vec![
            nats.subscribe(subjects.chat_leader_elected()).await?,
            nats.subscribe(subjects.events_leader_elected()).await?,
        ];
        let purges = purge::subscribe(&nats, &subjects).await?;
        let processed = processed::subscribe(&nats, &subjects).await?;

        let stream = ChatStream::new(nats.clone(), subjects.clone());
        let directory = Directory::new(
            &config.auth_url,
            config.auth_connections,
            nats.clone(),
            subjects.clone(),
            config.presence_max_members,
        );
        // Keys load on the first token: an edge starts (and serves what it can) with auth away.
        let verifier = Verifier::fetching_lazily(
            &directory.jwks_url(),
            &config.tokens.audience,
            &config.tokens.issuer,
            Duration::from_secs(10),
        )?;
        let metrics = Metrics::new("edge");
        let edge_metrics = EdgeMetrics::new(&metrics);
        // A repair reads back at most a session's queue: more could never be handed out whole.
        let attachments = Arc::new(attachments::Attachments::new(
            &config.media,
            nats.clone(),
            subjects.clone(),
        ));
        let events = EventsStream::new(nats.clone(), subjects.clone());
        let streams = continuity::Streams::new(
            stream.clone(),
            events.clone(),
            events_info.state.last_sequence,
        );
        let lateness = Lateness::start(config.behind_after, edge_metrics.main_late_seconds.clone());
        let (continuity, dispatcher) = continuity::Continuity::new(
            nats.clone(),
            streams,
            config.session_queue.max(1),
            edge_metrics.clone(),
            Arc::clone(&attachments),
            continuity::Pace::new(lateness.clone(), config.delivery_linger),
        );
        let sessions = TaskTracker::new();
        let lane = Lane::start(
            &config.nats,
            config.lane_sessions,
            lateness,
            config.lane_quiet,
            sessions.clone(),
            edge_metrics.clone(),
        )
        .await?;
        let ids = proto::SnowflakeGenerator::new(config.worker_id)
            .expect("the config parser bounds the worker id");
        let presence = Arc::new(Reporter::new(
            nats.clone(),
            subjects.clone(),
            // Names this edge process to presence: unique across the fleet and its restarts.
            ids.next_id(),
            config.presence_settings(),
        ));
        let state = Arc::new(EdgeState {
            config: config.gateway_settings(),
            hub: Hub::new(
                nats.clone(),
                subjects.clone(),
                edge_metrics.clone(),
                continuity,
            ),
            chat: Chat::new(
                nats.clone(),
                subjects.clone(),
                ids,
                edge_metrics.clone(),
                config.send_rate.quota(),
                attachments,
                directory.clone(),
            )
            .with_lane(lane.as_ref().map(|lane| lane.js.clone())),
            lane,
            resumes: state::resumes(stream.clone()),
            stream: stream.clone(),
            events,
            archive: Archive::connect(
                config.cql.clone(),
                config.cql_request_timeout,
                stream,
                edge_metrics.store_connected.clone(),
            ),
            verifier,
            directory,
            search: search::Searcher::new(nats.clone(), subjects.clone(), config.search_partitions),
            metrics: edge_metrics,
            presence,
            draining: CancellationToken::new(),
            next_session: AtomicU64::new(1),
            clock: governor::clock::DefaultClock::default(),
            #[cfg(feature = "fault-injection")]
            faults: fault::Faults::new(config.fault_drop_message),
        });
        let http = serve(&config, &state, &sessions, &nats, &metrics).await?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("ws://{}:{}/gateway", config.http_addr.ip(), http.port()));
        let discovery = discovery::register(
            &nats,
            &subjects,
            public_url,
            config.capacity,
            Arc::clone(&state),
        )
        .await
        .map_err(Error::Discovery)?;
        Ok(Self {
            http,
            state,
            sessions,
            discovery,
            drain_timeout: config.drain_timeout,
            nats_events,
            dispatcher,
            leader_changes,
            delivery_check_interval: config.delivery_check_interval,
            purges,
            processed,
            nats,
        })
    }
}

/// Binds the edge's listeners: the gateway and message routes, `/livez` and `/readyz` on the
/// public port, `/metrics` on its own.
async fn serve(
    config: &Config,
    state: &Arc<EdgeState>,
    sessions: &TaskTracker,
    nats: &async_nats::Client,
    metrics: &Metrics,
) -> Result<HttpServer, Error> {
    let readiness = Readiness::new().with_nats(nats.clone());
    let router =
        routes::router(Arc::clone(state), sessions.clone()).merge(kit::health::router(readiness));
    let listen = kit::listener::Listen {
        http: config.http_addr,
        metrics: config.metrics_addr,
        limits: config.listener,
    };
    Ok(HttpServer::bind(listen, router, metrics).await?)
}

impl Config {
    fn presence_settings(&self) -> PresenceSettings {
        PresenceSettings {
            max_members: self.presence_max_members,
            heartbeat: self.presence_heartbeat,
            query_timeout: self.presence_timeout,
        }
    }

    fn gateway_settings(&self) -> GatewaySettings {
        GatewaySettings {
            heartbeat_interval: self.heartbeat_interval,
            identify_timeout: self.identify_timeout,
            write_timeout: self.write_timeout,
            session_queue: self.session_queue.max(1),
            frames_per_minute: self.frames_per_minute,
            max_frame_bytes: self.max_frame_bytes,
            read_buffer_bytes: self.read_buffer_bytes.max(256),
            // Every larger frame is refused: never so small that HELLO is.
            max_write_buffer_bytes: self.max_write_buffer_bytes.max(256),
            max_body_bytes: self.max_body_bytes,
            allowed_origins: self.allowed_origins.clone(),
            receipts_max_members: self.receipts_max_members,
        }
    }
}

impl Service for Edge {
    type Error = Error;

    fn port(&self) -> u16 {
        self.http.port()
    }

    fn metrics_port(&self) -> u16 {
        self.http.metrics_port()
    }

    /// Serves until `shutdown`, then drains: discovery stops offering this edge, every session is
    /// told RECONNECT and closed, and the edge exits once they are gone (or the drain times out).
    /// When an essential task (the HTTP server, discovery, the presence heartbeat, ...) ends
    /// first, the edge drains the same way and stops with an error naming it, so its process
    /// exits non-zero and its supervisor starts it again.
    async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), Error> {
        let mut tasks = Essentials::new();
        let stop_discovery = shutdown.child_token();
        tasks.spawn("discovery", self.discovery.run(stop_discovery.clone()));
        // Heartbeats and the rest continue through the drain: the sessions still open are
        // still online, and still need their events.
        let stopped = Shutdown::new();
        tasks.spawn(
            "the presence heartbeat",
            reporter::heartbeat(Arc::clone(&self.state), stopped.clone()),
        );
        tasks.spawn("the dispatcher", self.dispatcher.run(stopped.clone()));
        tasks.spawn(
            "the live delivery checks",
            continuity::check(
                Arc::clone(&self.state),
                self.nats_events,
                self.leader_changes,
                self.delivery_check_interval,
                stopped.clone(),
            ),
        );
        tasks.spawn(
            "the purge answerer",
            purge::answer(
                Arc::clone(&self.state),
                self.nats.clone(),
                self.purges,
                stopped.clone(),
            ),
        );
        tasks.spawn(
            "the processed-files answerer",
            processed::answer(
                Arc::clone(&self.state),
                self.nats.clone(),
                self.processed,
                stopped.clone(),
            ),
        );
        let state = Arc::clone(&self.state);
        let stop = stopped.clone();
        tasks.spawn("the rate limit trimmer", async move {
            state.chat.trim_limits(stop).await;
        });
        let stop_listening = Shutdown::new();
        tasks.spawn_fallible("the HTTP server", self.http.serve(stop_listening.clone()));
        let outcome = tasks.until(&shutdown).await;
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "an essential task ended; draining and stopping");
        }
        tracing::info!("draining: asking clients to reconnect elsewhere");
        stop_discovery.cancel();
        self.state.draining.cancel();
        self.state.hub.drain();
        stop_listening.cancel();
        self.sessions.close();
        if tokio::time::timeout(self.drain_timeout, self.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!("drain timed out; exiting with sessions still open");
        }
        stopped.cancel();
        Ok(outcome.and(tasks.finish().await)?)
    }
}
