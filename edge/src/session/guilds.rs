//! A session's servers: following each (the edge's shared [`GuildFeed`]), the user's own member
//! object in it, and which of its channels they may view. Every event that may change that (a
//! role, a channel or its overwrites, the user's roles, the owner) is decided again from memory,
//! and the difference goes out at once: CHANNEL_CREATE for a channel the user may now view (its
//! topic joined, so its messages, typing and receipts arrive), CHANNEL_DELETE for one they may no
//! longer (its topic left, so nothing more of it arrives). Delivery is gated by joining and leaving
//! topics, never by looking at each message.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use proto::Snowflake;
use proto::api::channels::Channel;
use proto::api::guilds::GuildMember;
use proto::api::mentions::MentionRights;
use proto::events::{ChannelRef, Event, GuildRef};
use proto::gateway::CloseCode;
use proto::permissions::Permissions;

use super::{Session, Step};
use crate::chat::ChatError;
use crate::fanout::{Delivery, JoinError, Topic};
use crate::guilds::{FollowError, GuildFeed};

/// One server a session follows.
pub(super) struct Joined {
    pub(super) feed: Arc<GuildFeed>,
    pub(super) member: GuildMember,
    /// The channels (categories included) the user may view.
    pub(super) visible: HashSet<Snowflake>,
}

/// What a server's channel allows a session's user to do there now.
pub(super) struct Allowed {
    pub(super) permissions: Permissions,
    /// Until when they are timed out, if they are.
    pub(super) timed_out_until: Option<u64>,
    /// Slowmode seconds that apply to them (0: none, or they are exempt).
    pub(super) slowmode: u32,
}

impl Allowed {
    /// Refuses what `needed` is missing from: `timed_out` while timed out, else `forbidden`.
    pub(super) fn require(&self, needed: Permissions, what: &str) -> Result<(), ChatError> {
        if self.permissions.has(needed) {
            return Ok(());
        }
        if let Some(until) = self.timed_out_until {
            return Err(ChatError::TimedOut(until));
        }
        Err(ChatError::NotAllowed(format!(
            "you may not {what} in this channel"
        )))
    }
}

impl Session {
    /// Starts following a server as `member`: the edge follows it (subscribing and asking auth,
    /// if no other session does already). False when the server is gone.
    pub(super) async fn follow_guild(
        &mut self,
        guild: Snowflake,
        member: GuildMember,
    ) -> Step<bool> {
        self.follow_guilds(vec![(guild, member)]).await?;
        Ok(self.guilds.contains_key(&guild))
    }

    /// [`Session::follow_guild`] for several servers at once; those gone are left out.
    pub(super) async fn follow_guilds(&mut self, members: Vec<(Snowflake, GuildMember)>) -> Step {
        let mut members: HashMap<Snowflake, GuildMember> = members
            .into_iter()
            .filter(|(guild, _)| !self.guilds.contains_key(guild))
            .collect();
        let topics = members.keys().map(|&guild| Topic::Guild(guild)).collect();
        let mut failed = false;
        for (topic, followed) in self.join_all(topics).await {
            let Topic::Guild(guild) = topic else {
                continue;
            };
            match followed {
                Ok(()) => {}
                Err(JoinError::Guild(FollowError::NotFound)) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, %guild, "cannot follow a server");
                    failed = true;
                    continue;
                }
            }
            let (Some(feed), Some(member)) = (self.state.hub.guild(guild), members.remove(&guild))
            else {
                failed = true;
                continue;
            };
            let visible = HashSet::new();
            self.guilds.insert(
                guild,
                Joined {
                    feed,
                    member,
                    visible,
                },
            );
        }
        if failed {
            return Err(Some(CloseCode::UnknownError));
        }
        Ok(())
    }

    /// Decides again which of a server's channels the user may view, joins the topics of those
    /// they now may and leaves those they may no longer. Answers the channels newly shown and the
    /// ids of those hidden.
    pub(super) async fn refresh_guild(
        &mut self,
        guild: Snowflake,
    ) -> Step<(Vec<Channel>, Vec<Snowflake>)> {
        let (shown, hidden) = self.reconsider_guild(guild);
        self.add_channels(talking(&shown)).await?;
        for id in &hidden {
            self.remove_channel(*id).await;
        }
        Ok((shown, hidden))
    }

    /// Decides again which of a server's channels the user may view, and remembers it: the
    /// channels newly shown and the ids of those hidden, whose topics are still to be joined or
    /// left.
    pub(super) fn reconsider_guild(&mut self, guild: Snowflake) -> (Vec<Channel>, Vec<Snowflake>) {
        let Some(joined) = self.guilds.get_mut(&guild) else {
            return (Vec::new(), Vec::new());
        };
        let now = proto::clock::unix_ms();
        let member = &joined.member;
        let old = &joined.visible;
        let Some((visible, shown)) = joined.feed.read(|state| {
            let visible = state.visible(member, now);
            let shown: Vec<Channel> = state
                .channels
                .iter()
                .filter(|c| visible.contains(&c.id) && !old.contains(&c.id))
                .cloned()
                .collect();
            (visible, shown)
        }) else {
            return (Vec::new(), Vec::new());
        };
        let hidden: Vec<Snowflake> = old.difference(&visible).copied().collect();
        joined.visible = visible;
        for channel in &shown {
            self.channel_guilds.insert(channel.id, guild);
        }
        for id in &hidden {
            self.channel_guilds.remove(id);
        }
        (shown, hidden)
    }

    /// [`Session::refresh_guild`], telling the client what appeared and what went (and taking
    /// the user out of a voice channel they may no longer connect to).
    async fn announce_guild(&mut self, me: Snowflake, guild: Snowflake) -> Step {
        let (shown, hidden) = self.refresh_guild(guild).await?;
        self.recheck_voice(me, guild).await?;
        self.introduce(me, shown).await?;
        for id in hidden {
            let gone = Event::ChannelDelete(ChannelRef {
                channel_id: id,
                guild_id: Some(guild),
            });
            self.dispatch(gone.into()).await?;
        }
        Ok(())
    }

    /// Stops following a server: its channels' topics and its own are left. False when the
    /// session did not follow it (any more).
    pub(super) async fn leave_guild(&mut self, guild: Snowflake) -> bool {
        let Some(joined) = self.guilds.remove(&guild) else {
            return false;
        };
        for id in joined.visible {
            self.channel_guilds.remove(&id);
            self.remove_channel(id).await;
        }
        let topic = Topic::Guild(guild);
        self.topics.retain(|t| *t != topic);
        self.state.hub.leave(topic, self.id).await;
        true
    }

    /// What the user may do in `channel`, if it is a server's channel this session may view.
    pub(super) fn allowed(&self, channel: Snowflake) -> Option<Allowed> {
        let guild = self.channel_guilds.get(&channel)?;
        let joined = self.guilds.get(guild)?;
        let now = proto::clock::unix_ms();
        joined.feed.read(|state| {
            let found = state.channel(channel);
            let permissions = state.permissions(&joined.member, found, now);
            let exempt =
                permissions.intersects(Permissions::MANAGE_MESSAGES | Permissions::MANAGE_CHANNELS);
            Allowed {
                permissions,
                timed_out_until: joined
                    .member
                    .communication_disabled_until
                    .filter(|until| *until > now),
                slowmode: if exempt {
                    0
                } else {
                    found.and_then(|c| c.rate_limit_per_user).unwrap_or(0)
                },
            }
        })
    }

    /// The user's roles in the server of each of its channels the session follows (what role
    /// mentions count for them).
    pub(super) fn channel_roles(&self) -> HashMap<Snowflake, Vec<Snowflake>> {
        self.channel_guilds
            .iter()
            .filter_map(|(channel, guild)| {
                let joined = self.guilds.get(guild)?;
                Some((*channel, joined.member.roles.clone()))
            })
            .collect()
    }

    /// What the user may mention in `channel` beyond people: nothing outside servers; in a
    /// server's channel, everyone and every role with MENTION_EVERYONE, else its mentionable roles.
    pub(super) fn mention_rights(&self, channel: Snowflake) -> MentionRights {
        let Some(guild) = self.channel_guilds.get(&channel) else {
            return MentionRights::outside_servers();
        };
        let Some(joined) = self.guilds.get(guild) else {
            return MentionRights::default();
        };
        let now = proto::clock::unix_ms();
        joined
            .feed
            .read(|state| {
                let permissions = state.permissions(&joined.member, state.channel(channel), now);
                MentionRights {
                    everyone: permissions.has(Permissions::MENTION_EVERYONE),
                    roles: state
                        .roles
                        .iter()
                        .filter(|r| r.mentionable && r.id != state.guild.id)
                        .map(|r| r.id)
                        .collect(),
                }
            })
            .unwrap_or_default()
    }

    /// What the user may do in a server as a whole.
    fn guild_permissions(&self, guild: Snowflake) -> Permissions {
        let Some(joined) = self.guilds.get(&guild) else {
            return Permissions::empty();
        };
        let now = proto::clock::unix_ms();
        joined
            .feed
            .read(|state| state.permissions(&joined.member, None, now))
            .unwrap_or_default()
    }

    /// A server's event (or one about one of its channels): what it changes for this session,
    /// and whether its frame goes on.
    pub(super) async fn guild_event(
        &mut self,
        me: Snowflake,
        guild: Snowflake,
        delivery: Delivery,
    ) -> Step {
        match &delivery.event {
            // The user joined a server (or made one): in their inbox only.
            Event::GuildCreate(joined) => {
                if self.guilds.contains_key(&guild)
                    || !self.follow_guild(guild, joined.member.clone()).await?
                {
                    return Ok(());
                }
                // The member object in the event was read before this session followed the
                // server: read it again, so a change made meanwhile (a role given at once) is
                // not lost; every later one arrives as an event.
                match self.state.directory.guild_memberships(me).await {
                    Ok(memberships) => {
                        match memberships.into_iter().find(|m| m.guild_id == guild) {
                            Some(fresh) => {
                                if let Some(joined) = self.guilds.get_mut(&guild) {
                                    joined.member = fresh.member;
                                }
                            }
                            None => {
                                self.leave_guild(guild).await;
                                return Ok(());
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read a new server's member"),
                }
                self.refresh_guild(guild).await?;
                self.send_text(&delivery.frame).await?;
                // Who is in its voice channels, as READY's servers carry them.
                for voice in self.visible_voice(guild) {
                    self.dispatch(Event::VoiceStateUpdate(voice).into()).await?;
                }
                return Ok(());
            }
            // Gone for this user: from their inbox (left, kicked, banned, deleted) or, a moment
            // earlier or later, as their own GUILD_MEMBER_REMOVE on the server's subject.
            Event::GuildDelete(deleted) => {
                if self.leave_guild(guild).await {
                    self.recheck_voice(me, guild).await?;
                    return self.send_text(&delivery.frame).await;
                }
                // Already gone by the user's own GUILD_MEMBER_REMOVE, whose GUILD_DELETE could
                // not say why: this copy from their inbox does, so their client can tell them.
                // (Any other second copy, such as a deleted server's, is dropped.)
                if deleted.removal.is_some() && self.unexplained.remove(&guild) {
                    return self.send_text(&delivery.frame).await;
                }
                return Ok(());
            }
            Event::GuildMemberRemove(removed) if removed.user.id == me => {
                if self.leave_guild(guild).await {
                    self.recheck_voice(me, guild).await?;
                    self.unexplained.insert(guild);
                    let gone = Event::GuildDelete(GuildRef {
                        id: guild,
                        removal: None,
                    });
                    return self.dispatch(gone.into()).await;
                }
                return Ok(());
            }
            _ if !self.guilds.contains_key(&guild) => return Ok(()),
            _ => {}
        }
        let permissions = self.guild_permissions(guild);
        match &delivery.event {
            Event::GuildMemberUpdate(updated) if updated.member.user.id == me => {
                if let Some(joined) = self.guilds.get_mut(&guild) {
                    joined.member = updated.member.clone();
                }
                self.send_text(&delivery.frame).await?;
                self.announce_guild(me, guild).await
            }
            Event::ChannelCreate(_) | Event::ChannelDelete(_) => {
                self.announce_guild(me, guild).await
            }
            Event::ChannelUpdate(channel) => {
                let was = self
                    .guilds
                    .get(&guild)
                    .is_some_and(|j| j.visible.contains(&channel.id));
                self.announce_guild(me, guild).await?;
                let still = self
                    .guilds
                    .get(&guild)
                    .is_some_and(|j| j.visible.contains(&channel.id));
                if was && still {
                    self.send_text(&delivery.frame).await?;
                }
                Ok(())
            }
            Event::GuildUpdate(_)
            | Event::GuildRoleCreate(_)
            | Event::GuildRoleUpdate(_)
            | Event::GuildRoleDelete(_) => {
                self.send_text(&delivery.frame).await?;
                self.announce_guild(me, guild).await
            }
            Event::GuildBanAdd(_) | Event::GuildBanRemove(_) => {
                self.send_if(permissions, Permissions::BAN_MEMBERS, &delivery)
                    .await
            }
            Event::InviteCreate(_) | Event::InviteDelete(_) => {
                self.send_if(permissions, Permissions::MANAGE_GUILD, &delivery)
                    .await
            }
            Event::GuildAuditLogEntryCreate(_) => {
                self.send_if(permissions, Permissions::VIEW_AUDIT_LOG, &delivery)
                    .await
            }
            // Who is in a voice channel, to those who may view it; a leave to everyone (the
            // channel left is not in it).
            Event::VoiceStateUpdate(voice) => {
                let shown = voice.channel_id.is_none_or(|channel| {
                    self.guilds
                        .get(&guild)
                        .is_some_and(|j| j.visible.contains(&channel))
                });
                if shown {
                    self.send_text(&delivery.frame).await?;
                }
                Ok(())
            }
            _ => self.send_text(&delivery.frame).await,
        }
    }

    /// The voice states of a server's channels this session may view.
    pub(super) fn visible_voice(&self, guild: Snowflake) -> Vec<proto::api::voice::VoiceState> {
        let Some(joined) = self.guilds.get(&guild) else {
            return Vec::new();
        };
        joined
            .feed
            .read(|state| {
                state
                    .voice_states
                    .iter()
                    .filter(|v| v.channel_id.is_some_and(|c| joined.visible.contains(&c)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn send_if(
        &mut self,
        granted: Permissions,
        needed: Permissions,
        delivery: &Delivery,
    ) -> Step {
        if granted.has(needed) {
            self.send_text(&delivery.frame).await
        } else {
            Ok(())
        }
    }
}

/// The ids of those of `channels` that carry messages (whose topics a viewer joins).
pub(super) fn talking(channels: &[Channel]) -> Vec<Snowflake> {
    channels
        .iter()
        .filter(|c| c.kind.has_messages())
        .map(|c| c.id)
        .collect()
}
