//! What an edge keeps of each server (guild) it has sessions of members of: the server, its roles
//! and every channel with its overwrites ([`GuildState`]), in one [`GuildFeed`] per server per
//! edge, shared by those sessions. It is kept current from the server's events, never by asking
//! PostgreSQL per message, so a session decides what it may see and send from memory
//! (`proto::permissions::effective`, the same function auth decides with).
//!
//! The feed follows `{p}.guild.{guild}` (the hub's `Topic::Guild`, delivered gap-free by
//! `crate::continuity`): it subscribes, then asks auth for the server as it is (`{p}.auth.guild`,
//! after the subscription is in place), applies what arrived meanwhile on top of that answer
//! (every event sets whole objects, so applying one the answer already reflects changes nothing),
//! and from then on applies each event before handing it to the sessions. When a lost event
//! cannot be read back, the server is read from auth anew ([`GuildFeed::refresh`]). Each
//! member's own roles and time-out live in their sessions.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};

use proto::Snowflake;
use proto::access::{GuildQuery, GuildSnapshot, Reply};
use proto::api::channels::Channel;
use proto::api::guilds::{Guild, GuildMember, Role};
use proto::api::voice::VoiceState;
use proto::events::Event;
use proto::gateway::{ReadSummary, ReadyChannel, ReadyGuild};
use proto::permissions::{Permissions, effective};
use proto::subjects::Subjects;

/// A server as an edge keeps it.
#[derive(Debug, Clone)]
pub struct GuildState {
    pub guild: Guild,
    pub roles: Vec<Role>,
    /// Every channel, categories included, in list order, each with its overwrites.
    pub channels: Vec<Channel>,
    /// Who is in its voice channels (one state per user).
    pub voice_states: Vec<VoiceState>,
}

impl GuildState {
    fn from_snapshot(snapshot: GuildSnapshot) -> Self {
        Self {
            guild: snapshot.guild,
            roles: snapshot.roles,
            channels: snapshot.channels,
            voice_states: snapshot.voice_states,
        }
    }

    pub fn channel(&self, id: Snowflake) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id == id)
    }

    /// What `member` may do in the server (`channel: None`) or in one of its channels, at
    /// `now_ms`.
    pub fn permissions(
        &self,
        member: &GuildMember,
        channel: Option<&Channel>,
        now_ms: u64,
    ) -> Permissions {
        let subject = member.subject(self.guild.id, self.guild.owner_id, &self.roles, now_ms);
        effective(
            &subject,
            channel.map(|c| c.permission_overwrites.as_slice()),
        )
    }

    /// The ids of the channels `member` may view.
    pub fn visible(&self, member: &GuildMember, now_ms: u64) -> HashSet<Snowflake> {
        let subject = member.subject(self.guild.id, self.guild.owner_id, &self.roles, now_ms);
        self.channels
            .iter()
            .filter(|c| {
                effective(&subject, Some(&c.permission_overwrites)).has(Permissions::VIEW_CHANNEL)
            })
            .map(|c| c.id)
            .collect()
    }

    /// The server as `member` sees it in READY and RESUMED: the channels they may view, each
    /// with its summary when `summary` has one, and without what the server says for all of
    /// them (`guild_id`, `member_count`).
    pub fn ready(
        &self,
        member: &GuildMember,
        visible: &HashSet<Snowflake>,
        mut summary: impl FnMut(Snowflake) -> Option<ReadSummary>,
    ) -> ReadyGuild {
        ReadyGuild {
            id: self.guild.id,
            name: self.guild.name.clone(),
            icon: self.guild.icon.clone(),
            owner_id: self.guild.owner_id,
            member_count: self.guild.member_count,
            roles: self.roles.clone(),
            channels: self
                .channels
                .iter()
                .filter(|c| visible.contains(&c.id))
                .map(|c| ReadyChannel {
                    summary: summary(c.id),
                    channel: Channel {
                        guild_id: None,
                        member_count: 0,
                        ..c.clone()
                    },
                })
                .collect(),
            member: member.clone(),
            voice_states: self
                .voice_states
                .iter()
                .filter(|v| v.channel_id.is_some_and(|c| visible.contains(&c)))
                .cloned()
                .collect(),
        }
    }

    /// Applies one of the server's events.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::GuildUpdate(guild) => {
                self.guild = guild.clone();
            }
            Event::GuildRoleCreate(e) | Event::GuildRoleUpdate(e) => {
                match self.roles.iter_mut().find(|r| r.id == e.role.id) {
                    Some(role) => *role = e.role.clone(),
                    None => self.roles.push(e.role.clone()),
                }
                self.roles.sort_by_key(|r| (r.position, r.id));
            }
            Event::GuildRoleDelete(r) => self.roles.retain(|role| role.id != r.role_id),
            Event::ChannelCreate(ReadyChannel { channel, .. }) | Event::ChannelUpdate(channel) => {
                let channel = channel.clone().shared_view();
                match self.channels.iter_mut().find(|c| c.id == channel.id) {
                    Some(old) => *old = channel,
                    None => self.channels.push(channel),
                }
                self.channels
                    .sort_by_key(|c| (c.position.unwrap_or(0), c.id));
            }
            Event::ChannelDelete(r) => {
                self.channels.retain(|c| c.id != r.channel_id);
                self.voice_states
                    .retain(|v| v.channel_id != Some(r.channel_id));
            }
            Event::VoiceStateUpdate(voice) => {
                self.voice_states.retain(|v| v.user_id != voice.user_id);
                if voice.channel_id.is_some() {
                    self.voice_states.push(voice.clone());
                }
            }
            Event::GuildMemberAdd(_) => self.count(1),
            Event::GuildMemberRemove(removed) => {
                self.count(-1);
                self.voice_states.retain(|v| v.user_id != removed.user.id);
            }
            _ => {}
        }
    }

    fn count(&mut self, by: i64) {
        let count = i64::from(self.guild.member_count) + by;
        self.guild.member_count = u32::try_from(count.max(0)).unwrap_or(u32::MAX);
        for channel in &mut self.channels {
            channel.member_count = self.guild.member_count;
        }
    }
}

/// One server this edge follows.
pub struct GuildFeed {
    pub id: Snowflake,
    state: RwLock<Following>,
    /// While auth is asked for the server anew (a lost event could not be read back): the
    /// events applied meanwhile, to apply again on top of its answer.
    refreshing: Mutex<Option<Vec<Event>>>,
}

enum Following {
    /// Subscribed; auth's answer not in yet. What arrives is kept to apply on top of it.
    Waiting(Vec<Event>),
    Following(GuildState),
}

/// Why a server could not be followed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("the server does not exist (any more)")]
    NotFound,
    #[error("auth did not answer for the server: {0}")]
    NoAnswer(String),
}

/// How long asking auth for a server may take.
const SNAPSHOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The most events kept while auth is asked for a server (a server that busy is read again on
/// the next failed repair rather than held in memory without bound).
const MAX_HELD: usize = 10_000;

impl GuildFeed {
    /// A server about to be followed: its events are applied ([`GuildFeed::apply`]) from the
    /// moment its subscription is delivered, and [`GuildFeed::load`] asks auth for it.
    pub fn new(guild: Snowflake) -> Arc<Self> {
        Arc::new(Self {
            id: guild,
            state: RwLock::new(Following::Waiting(Vec::new())),
            refreshing: Mutex::new(None),
        })
    }

    /// Asks auth for the server (once its events are being applied) and applies what arrived
    /// meanwhile on top of the answer.
    pub async fn load(
        &self,
        nats: &async_nats::Client,
        subjects: &Subjects,
    ) -> Result<(), FollowError> {
        let snapshot = snapshot(nats, subjects, self.id).await?;
        let mut state = self.state.write().expect("never poisoned");
        let arrived = match &mut *state {
            Following::Waiting(arrived) => std::mem::take(arrived),
            Following::Following(_) => Vec::new(),
        };
        let mut following = GuildState::from_snapshot(snapshot);
        for event in &arrived {
            following.apply(event);
        }
        *state = Following::Following(following);
        Ok(())
    }

    /// Reads the server anew from auth, in the background: an event of it was lost and could
    /// not be read back, so the edge's copy (its permissions) may be wrong. Events applied
    /// meanwhile are applied again on top of the answer.
    pub fn refresh(self: &Arc<Self>, nats: async_nats::Client, subjects: Subjects) {
        {
            let mut refreshing = self.refreshing.lock().expect("never poisoned");
            if refreshing.is_some() {
                return;
            }
            *refreshing = Some(Vec::new());
        }
        let feed = Arc::clone(self);
        tokio::spawn(async move {
            let answer = snapshot(&nats, &subjects, feed.id).await;
            let mut state = feed.state.write().expect("never poisoned");
            let held = feed.refreshing.lock().expect("never poisoned").take();
            match (answer, held) {
                (Ok(snapshot), Some(held)) => {
                    let mut following = GuildState::from_snapshot(snapshot);
                    for event in &held {
                        following.apply(event);
                    }
                    *state = Following::Following(following);
                    tracing::info!(guild = %feed.id, "server read anew after a lost event");
                }
                (Ok(_), None) => {
                    tracing::warn!(guild = %feed.id, "server busier than a refresh can hold");
                }
                (Err(e), _) => {
                    tracing::warn!(guild = %feed.id, error = %e, "cannot read the server anew");
                }
            }
        });
    }

    /// Reads the server as it is now (once followed; `None` before).
    pub fn read<T>(&self, read: impl FnOnce(&GuildState) -> T) -> Option<T> {
        match &*self.state.read().expect("never poisoned") {
            Following::Following(state) => Some(read(state)),
            Following::Waiting(_) => None,
        }
    }

    /// Applies one of the server's events (before its sessions get it).
    pub fn apply(&self, event: &Event) {
        let mut state = self.state.write().expect("never poisoned");
        {
            let mut refreshing = self.refreshing.lock().expect("never poisoned");
            if let Some(held) = refreshing.as_mut() {
                if held.len() < MAX_HELD {
                    held.push(event.clone());
                } else {
                    *refreshing = None;
                }
            }
        }
        match &mut *state {
            Following::Following(state) => state.apply(event),
            Following::Waiting(arrived) => arrived.push(event.clone()),
        }
    }
}

async fn snapshot(
    nats: &async_nats::Client,
    subjects: &Subjects,
    guild: Snowflake,
) -> Result<GuildSnapshot, FollowError> {
    let query = serde_json::to_vec(&GuildQuery { guild_id: guild }).expect("queries serialise");
    let asked = nats.request(subjects.auth_guild(), query.into());
    let reply = match tokio::time::timeout(SNAPSHOT_TIMEOUT, asked).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => return Err(FollowError::NoAnswer(e.to_string())),
        Err(_) => return Err(FollowError::NoAnswer("timed out".to_owned())),
    };
    match serde_json::from_slice::<Reply<GuildSnapshot>>(&reply.payload) {
        Ok(Reply::Ok(snapshot)) => Ok(snapshot),
        Ok(Reply::NotFound) => Err(FollowError::NotFound),
        Ok(Reply::Failed(why)) => Err(FollowError::NoAnswer(why)),
        Ok(Reply::SignedOut) => Err(FollowError::NoAnswer("signed out".to_owned())),
        Err(e) => Err(FollowError::NoAnswer(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use proto::api::channels::ChannelKind;
    use proto::api::users::{Status, User};
    use proto::events::{GuildRoleEvent, GuildRoleRef};
    use proto::permissions::{Overwrite, OverwriteType};

    use super::*;

    const GUILD: Snowflake = Snowflake::from_u64(10);
    const CREW: Snowflake = Snowflake::from_u64(11);

    fn member(id: u64, roles: &[Snowflake]) -> GuildMember {
        GuildMember {
            user: User {
                id: Snowflake::from_u64(id),
                username: format!("u{id}"),
                display_name: None,
                avatar_url: None,
                bio: None,
                status: Status::Online,
            },
            nick: None,
            roles: roles.to_vec(),
            joined_at: 0,
            communication_disabled_until: None,
        }
    }

    fn role(id: Snowflake, position: i32, permissions: Permissions) -> Role {
        Role {
            id,
            name: "r".into(),
            color: 0,
            hoist: false,
            position,
            permissions,
            mentionable: false,
        }
    }

    fn channel(id: u64, overwrites: Vec<Overwrite>) -> Channel {
        Channel {
            guild_id: Some(GUILD),
            name: Some(format!("c{id}")),
            position: Some(id as i32),
            permission_overwrites: overwrites,
            ..Channel::new(Snowflake::from_u64(id), ChannelKind::Text)
        }
    }

    fn state() -> GuildState {
        let private = vec![
            Overwrite {
                id: GUILD,
                kind: OverwriteType::Role,
                allow: Permissions::empty(),
                deny: Permissions::VIEW_CHANNEL,
            },
            Overwrite {
                id: CREW,
                kind: OverwriteType::Role,
                allow: Permissions::VIEW_CHANNEL,
                deny: Permissions::empty(),
            },
        ];
        GuildState {
            guild: Guild {
                id: GUILD,
                name: "g".into(),
                icon: None,
                owner_id: Snowflake::from_u64(1),
                member_count: 2,
            },
            roles: vec![
                role(GUILD, 0, Permissions::DEFAULT_EVERYONE),
                role(CREW, 1, Permissions::empty()),
            ],
            channels: vec![channel(100, Vec::new()), channel(101, private)],
            voice_states: Vec::new(),
        }
    }

    #[test]
    fn a_private_channel_shows_to_its_role_and_the_owner_only() {
        let state = state();
        let bob = member(2, &[]);
        let crew = member(3, &[CREW]);
        let owner = member(1, &[]);
        let ids = |set: HashSet<Snowflake>| {
            let mut v: Vec<u64> = set.into_iter().map(Snowflake::get).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(ids(state.visible(&bob, 0)), [100]);
        assert_eq!(ids(state.visible(&crew, 0)), [100, 101]);
        assert_eq!(ids(state.visible(&owner, 0)), [100, 101]);
    }

    #[test]
    fn events_keep_the_state_as_auth_has_it() {
        let mut state = state();
        let bob = member(2, &[CREW]);
        state.apply(&Event::GuildRoleDelete(GuildRoleRef {
            guild_id: GUILD,
            role_id: CREW,
        }));
        assert_eq!(
            state.visible(&bob, 0).len(),
            1,
            "the role that let him in is gone"
        );
        let mut everyone = role(GUILD, 0, Permissions::empty());
        state.apply(&Event::GuildRoleUpdate(GuildRoleEvent {
            guild_id: GUILD,
            role: everyone.clone(),
        }));
        assert!(
            state.visible(&bob, 0).is_empty(),
            "@everyone lost VIEW_CHANNEL"
        );
        everyone.permissions = Permissions::DEFAULT_EVERYONE;
        state.apply(&Event::GuildRoleUpdate(GuildRoleEvent {
            guild_id: GUILD,
            role: everyone,
        }));
        let open = channel(101, Vec::new());
        state.apply(&Event::ChannelUpdate(open));
        assert_eq!(
            state.visible(&bob, 0).len(),
            2,
            "the channel's overwrites are gone"
        );
        assert_eq!(state.roles.len(), 1);
    }

    #[test]
    fn a_time_out_leaves_a_member_seeing_what_they_saw_but_not_sending() {
        let state = state();
        let mut bob = member(2, &[]);
        bob.communication_disabled_until = Some(5_000);
        assert_eq!(state.visible(&bob, 1_000).len(), 1);
        let general = state.channel(Snowflake::from_u64(100));
        assert!(
            !state
                .permissions(&bob, general, 1_000)
                .has(Permissions::SEND_MESSAGES)
        );
        assert!(
            state
                .permissions(&bob, general, 6_000)
                .has(Permissions::SEND_MESSAGES)
        );
    }
}
