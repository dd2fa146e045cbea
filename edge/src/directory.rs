//! What the edge asks auth, so the edge needs no database and auth stays the one place that
//! decides membership and consent:
//!
//! - over auth's REST API with the user's token, where the request carries a fresh one (the
//!   edge's REST routes): one channel as they see it, members by id, and that the token's session
//!   is still signed in;
//! - over NATS (`proto::access`), after the token was checked: what a session needs (its
//!   channels, whose presence it may watch, which DMs refuse sends; at its start also that its
//!   session is still signed in, and the user's profile, in the same question, which the
//!   sessions starting meanwhile share), whose presence a
//!   user may see, and pages of members. A session asks these long after its token expired, and
//!   some answers are not for the user to read (whose presence their block hides).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use kit::gather::Gather;
use proto::Snowflake;
use proto::access::{
    ChannelGuilds, ChannelGuildsQuery, GuildMembersRequest, GuildQuery, GuildSnapshot,
    MAX_SESSION_STARTS, MembersRequest, MessageDeleted, Reply, SessionStart, SessionStartAnswers,
    SessionStarts, SessionState, StateQuery, Visible, VisibleQuery,
};
use proto::api::channels::{Channel, Member, MembersQuery};
use proto::api::guilds::{GuildMember, Role};
use proto::api::users::User;
use proto::subjects::Subjects;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Auth refused the user's token: signed out, revoked, or the account is gone. The token's
    /// signature may still be good, but the session is over: the caller must sign in again.
    #[error("auth refused the token (signed out or revoked)")]
    Refused,
    #[error("auth is unreachable: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("auth answered {0}")]
    Status(reqwest::StatusCode),
    #[error("auth did not answer over NATS: {0}")]
    NoAnswer(String),
    /// The channel does not exist or the user is not in it.
    #[error("no such channel")]
    NotFound,
    #[error("auth could not answer: {0}")]
    Failed(String),
}

/// How long a question to auth over NATS may take.
const NATS_TIMEOUT: Duration = Duration::from_secs(5);

/// Questions about sessions starting in flight at once: a storm's sessions wait for one of these
/// and go together, [`MAX_SESSION_STARTS`] to a question. Two rather than more: each question is
/// a handful of statements whatever it holds, so fewer, fuller questions cost PostgreSQL and
/// auth less in a storm (docs/BENCHMARKS.md, "reconnect storm"); two rather than one, so one
/// slow answer does not hold every start at the edge.
const STARTS_IN_FLIGHT: usize = 2;

#[derive(Clone)]
pub struct Directory {
    http: reqwest::Client,
    base: String,
    nats: async_nats::Client,
    subjects: Subjects,
    /// One permit per request in flight: at most this many connections to auth, reused.
    in_flight: Arc<Semaphore>,
    /// The sessions starting here, asked about together.
    starts: Gather<SessionStart, Reply<SessionState>>,
}

impl Directory {
    /// A client of auth at `base` (and over `nats`) with at most `connections` requests in flight;
    /// sessions starting get watch lists for group channels of at most `watch_max_members`.
    pub fn new(
        base: &url::Url,
        connections: usize,
        nats: async_nats::Client,
        subjects: Subjects,
        watch_max_members: usize,
    ) -> Self {
        let in_flight = Arc::new(Semaphore::new(connections.max(1)));
        let starts = {
            let (nats, subject, in_flight) =
                (nats.clone(), subjects.auth_starts(), in_flight.clone());
            let watch_max_members = u32::try_from(watch_max_members).unwrap_or(u32::MAX);
            Gather::start(MAX_SESSION_STARTS, STARTS_IN_FLIGHT, move |starts| {
                let (nats, subject, in_flight) = (nats.clone(), subject.clone(), in_flight.clone());
                let starts = SessionStarts {
                    starts,
                    watch_max_members,
                };
                async move { ask_starts(&nats, subject, &in_flight, starts).await }
            })
        };
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                // Auth closes a kept-alive connection that sends nothing for its
                // --header-read-timeout (10 s by default): let go of idle ones well before, so a
                // request never goes out on a connection auth is closing at that moment.
                .pool_idle_timeout(Duration::from_secs(4))
                .build()
                .expect("a TLS-free HTTP client builds"),
            base: base.as_str().trim_end_matches('/').to_owned(),
            nats,
            subjects,
            in_flight,
            starts,
        }
    }

    /// The JWKS URL auth publishes its token keys at.
    pub fn jwks_url(&self) -> String {
        format!("{}/api/v1/auth/jwks", self.base)
    }

    pub async fn me(&self, token: &str) -> Result<User, DirectoryError> {
        self.get(token, "/api/v1/users/@me").await
    }

    /// One channel as the token's user sees it (their role, its member count); 404 when they
    /// are not in it.
    pub async fn channel(&self, token: &str, id: Snowflake) -> Result<Channel, DirectoryError> {
        self.get(token, &format!("/api/v1/channels/{id}")).await
    }

    /// The members of a channel among `ids` (at most 100), as the token's user may read them.
    pub async fn members_by_id(
        &self,
        token: &str,
        channel: Snowflake,
        ids: &[Snowflake],
    ) -> Result<Vec<Member>, DirectoryError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let path = format!(
            "/api/v1/channels/{channel}/members?user_ids={}",
            ids.join(",")
        );
        self.get(token, &path).await
    }

    /// What a session of `user` needs (just `channel`, when given): channels, whose presence to
    /// watch in groups of at most `watch_max_members`, DMs that refuse sends.
    pub async fn session_state(
        &self,
        user: Snowflake,
        channel: Option<Snowflake>,
        watch_max_members: usize,
    ) -> Result<SessionState, DirectoryError> {
        let query = StateQuery {
            user_id: user,
            channel_id: channel,
            watch_max_members: u32::try_from(watch_max_members).unwrap_or(u32::MAX),
            guilds_only: false,
        };
        self.ask(self.subjects.auth_state(), &query).await
    }

    /// The servers `user` is in, each with their member object, as they are now.
    pub async fn guild_memberships(
        &self,
        user: Snowflake,
    ) -> Result<Vec<proto::access::GuildMembership>, DirectoryError> {
        let query = StateQuery {
            user_id: user,
            channel_id: None,
            watch_max_members: 0,
            guilds_only: true,
        };
        let state: SessionState = self.ask(self.subjects.auth_state(), &query).await?;
        Ok(state.guilds)
    }

    /// Members of a server `user` is in.
    pub async fn guild_members(
        &self,
        user: Snowflake,
        guild: Snowflake,
        query: MembersQuery,
    ) -> Result<Vec<GuildMember>, DirectoryError> {
        let request = GuildMembersRequest {
            user_id: user,
            guild_id: guild,
            query,
        };
        self.ask(self.subjects.auth_guild_members(), &request).await
    }

    /// The token's user in one server (their roles and time-out); 404 when they are not in it.
    pub async fn guild_member(
        &self,
        token: &str,
        guild: Snowflake,
    ) -> Result<GuildMember, DirectoryError> {
        self.get(token, &format!("/api/v1/guilds/{guild}/members/@me"))
            .await
    }

    /// Hands auth a session's op 4 (or the end of a session that joined voice).
    pub async fn voice(
        &self,
        request: &proto::access::VoiceRequest,
    ) -> Result<proto::access::VoiceAnswer, DirectoryError> {
        self.ask(self.subjects.auth_voice(), request).await
    }

    /// A server's roles (its whole snapshot, as an edge following it starts from).
    pub async fn guild_roles(&self, guild: Snowflake) -> Result<Vec<Role>, DirectoryError> {
        let query = GuildQuery { guild_id: guild };
        let snapshot: GuildSnapshot = self.ask(self.subjects.auth_guild(), &query).await?;
        Ok(snapshot.roles)
    }

    /// A server's roles and channels with their overwrites, as it is now (what a search
    /// decides the readable channels from).
    pub async fn guild_snapshot(&self, guild: Snowflake) -> Result<GuildSnapshot, DirectoryError> {
        let query = GuildQuery { guild_id: guild };
        self.ask(self.subjects.auth_guild(), &query).await
    }

    /// The server `channel` belongs to (none for a DM or group channel, or a channel auth no
    /// longer knows).
    pub async fn channel_guild(
        &self,
        channel: Snowflake,
    ) -> Result<Option<Snowflake>, DirectoryError> {
        let query = ChannelGuildsQuery {
            channel_ids: vec![channel],
        };
        let found: ChannelGuilds = self
            .ask(self.subjects.auth_channel_guilds(), &query)
            .await?;
        Ok(found
            .channels
            .into_iter()
            .find(|c| c.channel_id == channel)
            .and_then(|c| c.guild_id))
    }

    /// Tells auth a moderator deleted someone else's message, for the audit log.
    pub async fn message_deleted(&self, deleted: &MessageDeleted) -> Result<(), DirectoryError> {
        self.ask(self.subjects.auth_audit(), deleted).await
    }

    /// Everything a session starting needs, in one question: that its session (`session`, from
    /// the token) is still signed in ([`DirectoryError::Refused`] if not), the user's own
    /// profile, and their channels as [`Directory::session_state`] gives them. The sessions
    /// starting meanwhile at this edge are asked about together (`kit::gather`).
    pub async fn starting(
        &self,
        user: Snowflake,
        session: Snowflake,
        resuming: bool,
    ) -> Result<(User, SessionState), DirectoryError> {
        let start = SessionStart {
            user_id: user,
            session_id: session,
            resuming,
        };
        let mut state = match self.starts.ask(start).await {
            Ok(answer) => answered(answer)?,
            Err(why) => return Err(DirectoryError::NoAnswer(why)),
        };
        match state.user.take() {
            Some(me) => Ok((me, state)),
            None => Err(DirectoryError::Failed(
                "auth answered a session's start without the user".to_owned(),
            )),
        }
    }

    /// Which of `users` `viewer` may see the presence of.
    pub async fn visible(
        &self,
        viewer: Snowflake,
        users: Vec<Snowflake>,
    ) -> Result<Vec<Snowflake>, DirectoryError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let query = VisibleQuery {
            user_id: viewer,
            user_ids: users,
        };
        let visible: Visible = self.ask(self.subjects.auth_visible(), &query).await?;
        Ok(visible.user_ids)
    }

    /// Members of a channel `user` is in.
    pub async fn members(
        &self,
        user: Snowflake,
        channel: Snowflake,
        query: MembersQuery,
    ) -> Result<Vec<Member>, DirectoryError> {
        let request = MembersRequest {
            user_id: user,
            channel_id: channel,
            query,
        };
        self.ask(self.subjects.auth_members(), &request).await
    }

    /// A request to auth over NATS, within the same bound on requests in flight as REST.
    async fn ask<Q: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        subject: String,
        query: &Q,
    ) -> Result<T, DirectoryError> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let body = serde_json::to_vec(query).expect("questions serialise");
        let asked = self.nats.request(subject, body.into());
        let reply = match tokio::time::timeout(NATS_TIMEOUT, asked).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => return Err(DirectoryError::NoAnswer(e.to_string())),
            Err(_) => return Err(DirectoryError::NoAnswer("timed out".to_owned())),
        };
        match serde_json::from_slice::<Reply<T>>(&reply.payload) {
            Ok(reply) => answered(reply),
            Err(e) => Err(DirectoryError::Failed(format!(
                "an answer auth never gives: {e}"
            ))),
        }
    }

    /// Anyone's public profile, by id.
    pub async fn user(&self, token: &str, id: Snowflake) -> Result<User, DirectoryError> {
        self.get(token, &format!("/api/v1/users/{id}")).await
    }

    /// A GET to auth, once one of the `connections` permits is free: in a reconnect storm the
    /// sessions queue here, in order, instead of each opening a connection (thousands of them
    /// overflowed auth's listen queue and both processes' 20,000 open files). A request that
    /// could not be sent at all (a restart) is tried again, up to three times, after a short
    /// random pause.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
    ) -> Result<T, DirectoryError> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            match self.http.get(&url).bearer_auth(token).send().await {
                Ok(response) => break response,
                Err(e) if attempt < 3 && (e.is_connect() || e.is_request()) => {
                    let pause = 50 * attempt + u64::from(rand_millis());
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        match response.status() {
            status if status.is_success() => {}
            reqwest::StatusCode::UNAUTHORIZED => return Err(DirectoryError::Refused),
            status => return Err(DirectoryError::Status(status)),
        }
        Ok(response.json().await?)
    }
}

/// One of auth's answers as the edge takes it.
fn answered<T>(reply: Reply<T>) -> Result<T, DirectoryError> {
    match reply {
        Reply::Ok(value) => Ok(value),
        Reply::NotFound => Err(DirectoryError::NotFound),
        Reply::SignedOut => Err(DirectoryError::Refused),
        Reply::Failed(why) => Err(DirectoryError::Failed(why)),
    }
}

/// One question to auth about sessions starting: the answers to the first of `starts`.
async fn ask_starts(
    nats: &async_nats::Client,
    subject: String,
    in_flight: &Semaphore,
    starts: SessionStarts,
) -> Result<Vec<Reply<SessionState>>, String> {
    let _permit = in_flight
        .acquire()
        .await
        .expect("the semaphore is never closed");
    let body = serde_json::to_vec(&starts).expect("questions serialise");
    let reply = tokio::time::timeout(NATS_TIMEOUT, nats.request(subject, body.into()))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    match serde_json::from_slice::<Reply<SessionStartAnswers>>(&reply.payload) {
        Ok(Reply::Ok(answers)) => Ok(answers.answers),
        Ok(Reply::Failed(why)) => Err(why),
        Ok(_) => Err("auth answered the sessions' starts with no answers".to_owned()),
        Err(e) => Err(format!("an answer auth never gives: {e}")),
    }
}

/// 0-199 ms of jitter, so retries spread out instead of arriving together again.
fn rand_millis() -> u16 {
    (getrandom::u32().unwrap_or(0) % 200) as u16
}
