//! Events reaching a session: what each means for its subscriptions (channels joined and left,
//! roles, blocks), and whether it is sent on.

use std::sync::Arc;

use futures::StreamExt;
use kit::tokens::AccessClaims;
use proto::Snowflake;
use proto::api::channels::Channel;
use proto::events::Event;
use proto::gateway::{CloseCode, ReadyChannel};

use super::start::READY_STORE_BUDGET;
use super::{Session, Step};
use crate::fanout::{Delivery, JoinError, Topic};

impl Session {
    /// Forwards one event, after applying what it means for this session's subscriptions.
    ///
    /// Most deliveries are stored events (messages, edits, deletes, reactions) of a channel the
    /// session follows: they change nothing in it and go out as they came. The rest (auth's and
    /// presence's events, never stored) may change what the session follows or watches, and are
    /// boxed: a future is as large as its largest await, and every idle session holds the one
    /// waiting for its next delivery.
    pub(super) async fn deliver(&mut self, claims: &AccessClaims, delivery: &Delivery) -> Step {
        #[cfg(feature = "fault-injection")]
        if self.state.faults.drops(delivery) {
            return Ok(());
        }
        let Some(seq) = delivery.seq else {
            return Box::pin(self.apply(claims, delivery.clone())).await;
        };
        if seq <= self.floor || !self.follows(&delivery.event) {
            return Ok(());
        }
        self.send_text(&delivery.frame).await
    }

    /// Whether the session follows what the event is about: events about a channel it has left
    /// (still queued when it left) stay unsent.
    fn follows(&self, event: &Event) -> bool {
        event.channel().is_none_or(|ch| self.channels.contains(&ch))
    }

    /// An event that is not stored: what it means for the session's subscriptions and whom it
    /// watches, then the event itself, then the presence of those it made the session watch.
    async fn apply(&mut self, claims: &AccessClaims, delivery: Delivery) -> Step {
        let newly_watched = if crate::watch::Watch::concerns(&delivery.event) {
            let (state, handle) = (&self.state, &self.deliveries.handle());
            Box::pin((self.presence).apply(state, self.id, handle, &delivery.event))
                .await
                .map_err(Some)?
        } else {
            Vec::new()
        };
        self.forward(claims, delivery).await?;
        // The people the event made this session watch: their presence now, after the event
        // that introduced them (as READY carries the presence of those known at the start).
        if !newly_watched.is_empty() {
            // The event goes out now: presence may take a moment to answer.
            self.flush().await?;
            let presences = Box::pin(crate::watch::Watch::snapshot(&self.state, newly_watched));
            for presence in presences.await {
                self.dispatch(Event::PresenceUpdate(presence).into())
                    .await?;
            }
        }
        Ok(())
    }

    /// Applies what an event means for this session's subscriptions, then sends it on unless it
    /// concerns a channel the session is not (or no longer) in.
    pub(super) async fn forward(&mut self, claims: &AccessClaims, delivery: Delivery) -> Step {
        let me = claims.sub;
        // A server's events, its channels' included, follow its permissions. (Boxed, as the rarer
        // paths below: see `deliver`.)
        if let Some(guild) = delivery.event.guild() {
            return Box::pin(self.guild_event(me, guild, delivery)).await;
        }
        match &delivery.event {
            // Only my own inbox carries CHANNEL_CREATE: a channel made with me in it, one I was
            // added to, or a DM opened with me or by me.
            Event::ChannelCreate(created) => {
                self.note_role(&created.channel, me);
                if Box::pin(self.add_channel(created.channel.id)).await? {
                    return Box::pin(self.introduce(me, vec![created.channel.clone()])).await;
                }
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
                if !Box::pin(self.remove_channel(removed.channel_id)).await {
                    return Ok(());
                }
                // The removed member is told, then hears nothing more of the channel.
                return self.send_text(&delivery.frame).await;
            }
            Event::ChannelDelete(deleted) => {
                if !Box::pin(self.remove_channel(deleted.channel_id)).await {
                    return Ok(());
                }
                return self.send_text(&delivery.frame).await;
            }
            Event::SessionRevoked(revoked) if revoked.session_id == claims.sid => {
                self.send_text(&delivery.frame).await?;
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
            // A moderator moved the user: only the connection in voice takes the new room.
            Event::VoiceServerUpdate(server) => {
                let Some(joined) = self.voice.as_mut() else {
                    return Ok(());
                };
                joined.guild = server.guild_id;
                joined.channel = server.channel_id;
                return self.send_text(&delivery.frame).await;
            }
            _ if delivery.event.is_internal() => return Ok(()),
            _ => {}
        }
        if !self.follows(&delivery.event) {
            return Ok(());
        }
        self.send_text(&delivery.frame).await
    }

    /// Joins a channel; `true` when the session was not in it before.
    pub(super) async fn add_channel(&mut self, channel: Snowflake) -> Step<bool> {
        if !self.channels.insert(channel) {
            return Ok(false);
        }
        self.join(Topic::Channel(channel)).await?;
        Ok(true)
    }

    /// CHANNEL_CREATE for channels the session has just joined (one, or those of a server that a
    /// change of permissions showed), with where their messages and the user's reading stand, read
    /// after the subscription is in place (as READY's are): a message sent before the session
    /// followed a channel (the first one in a DM just opened with the user, say) is counted there
    /// and in the history, one sent after arrives live, and the client, which counts a live
    /// message only when it is newer than the channel's last, counts one that is both once.
    pub(super) async fn introduce(&mut self, me: Snowflake, channels: Vec<Channel>) -> Step {
        if channels.is_empty() {
            return Ok(());
        }
        let ids: Vec<Snowflake> = channels.iter().map(|c| c.id).collect();
        let mut summaries = self
            .state
            .archive
            .summaries(me, &ids, &self.channel_roles(), READY_STORE_BUDGET)
            .await;
        for channel in channels {
            let summary = summaries.remove(&channel.id);
            let created = ReadyChannel { channel, summary };
            self.dispatch(Event::ChannelCreate(created).into()).await?;
        }
        Ok(())
    }

    /// Remembers whether this user owns or moderates `channel`, from a current copy of it: their
    /// own view says their role; the view every member shares says only who owns it.
    pub(super) fn note_role(&mut self, channel: &Channel, me: Snowflake) {
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
    pub(super) async fn remove_channel(&mut self, channel: Snowflake) -> bool {
        self.moderated.remove(&channel);
        if !self.channels.remove(&channel) {
            return false;
        }
        let topic = Topic::Channel(channel);
        self.topics.retain(|t| *t != topic);
        self.state.hub.leave(topic, self.id).await;
        true
    }

    /// Joins the topics of `channels` the session is not in yet, all at once.
    pub(super) async fn add_channels(&mut self, channels: Vec<Snowflake>) -> Step {
        let new: Vec<Topic> = channels
            .into_iter()
            .filter(|&channel| self.channels.insert(channel))
            .map(Topic::Channel)
            .collect();
        let mut failed = false;
        for (topic, joined) in self.join_all(new).await {
            if let Err(e) = joined {
                tracing::warn!(error = %e, ?topic, "cannot subscribe");
                failed = true;
            }
        }
        if failed {
            return Err(Some(CloseCode::UnknownError));
        }
        Ok(())
    }

    /// Joins several topics, [`JOINS_AT_ONCE`] at a time: a topic the edge does not follow yet
    /// costs round trips (the subscription, the streams' positions, a server's snapshot from
    /// auth), and a session in fifty servers would otherwise wait for hundreds of them one after
    /// another. Each topic's outcome; those joined are the session's (left when it ends).
    pub(super) async fn join_all(
        &mut self,
        topics: Vec<Topic>,
    ) -> Vec<(Topic, Result<(), JoinError>)> {
        let (state, id, handle) = (Arc::clone(&self.state), self.id, self.deliveries.handle());
        let joined: Vec<(Topic, Result<(), JoinError>)> = futures::stream::iter(topics)
            .map(|topic| {
                let (state, handle) = (&state, handle.clone());
                async move { (topic, state.hub.join(topic, id, handle).await) }
            })
            .buffer_unordered(JOINS_AT_ONCE)
            .collect()
            .await;
        self.topics.extend(
            joined
                .iter()
                .filter(|(_, result)| result.is_ok())
                .map(|(topic, _)| *topic),
        );
        joined
    }

    pub(super) async fn join(&mut self, topic: Topic) -> Step {
        if let Err(e) = self
            .state
            .hub
            .join(topic, self.id, self.deliveries.handle())
            .await
        {
            tracing::warn!(error = %e, ?topic, "cannot subscribe");
            return Err(Some(CloseCode::UnknownError));
        }
        self.topics.push(topic);
        Ok(())
    }
}

/// How many topics one session joins at once ([`Session::join_all`]).
const JOINS_AT_ONCE: usize = 32;
