//! Watching presence for one session ([`Watch`]): keeps it subscribed, through the hub and so
//! reference-counted per edge, to `{p}.presence.{user}` of each co-member it may see (auth's
//! answer: consent, blocks) in its channels of at most `--presence-max-members` members (DMs
//! included). Bigger channels are not pushed: clients ask `GET /api/v1/presences` (or op 8 with
//! `presences`) when they open one.

use std::collections::{HashMap, HashSet};

use proto::Snowflake;
use proto::access::SessionState;
use proto::api::channels::{Channel, ChannelKind};
use proto::api::presence::{Presence, PresenceStatus};
use proto::api::users::User;
use proto::events::Event;
use proto::gateway::{CloseCode, ReadyChannel};
use proto::tracker::SessionStatus;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::fanout::{SessionId, Topic};
use crate::queue::SessionHandle;
use crate::state::EdgeState;

/// What one session watches: the people whose presence it may see in its small channels (group
/// channels of at most `--presence-max-members`, and DMs), each counted once per channel shared,
/// so leaving one of two shared channels keeps watching. Whom it may see is auth's answer
/// (`proto::access`): group co-members, a DM's other side once they opened it, never across a
/// block; this follows the events that change it.
#[derive(Debug, Default)]
pub struct Watch {
    me: Option<Snowflake>,
    /// The channels whose members' presence is pushed to this session.
    channels: FxHashMap<Snowflake, Watched>,
    /// Watched users and in how many of those channels each is.
    watched: FxHashMap<Snowflake, u32>,
    /// People across a block from this user (learnt during the session): never watched.
    hidden: FxHashSet<Snowflake>,
}

#[derive(Debug)]
struct Watched {
    dm: bool,
    /// How many members the channel has, me included (it stops being watched past the limit).
    members: u32,
    /// The other members this session may see the presence of.
    visible: HashSet<Snowflake>,
}

type Step<T = ()> = Result<T, CloseCode>;

impl Watch {
    /// Registers the session with presence and subscribes to the presence it may see, from what
    /// auth said the session needs. For a fresh session (`with_snapshot`), answers READY's
    /// `presences`: the other side of each DM that shows presence, asked after subscribing, so no
    /// change falls between the snapshot and live delivery. (Group co-members' presence comes
    /// with their members, op 8, when a client lists them: READY stays small however many
    /// channels the user is in.)
    pub async fn start(
        &mut self,
        state: &EdgeState,
        id: SessionId,
        handle: &SessionHandle,
        user: &User,
        session: &SessionState,
        with_snapshot: bool,
    ) -> Step<Vec<Presence>> {
        self.me = Some(user.id);
        state
            .presence
            .started(id, user.id, SessionStatus::from(user.status))
            .await;
        let mut lists: HashMap<Snowflake, &[Snowflake]> = session
            .watch
            .iter()
            .map(|w| (w.channel_id, w.user_ids.as_slice()))
            .collect();
        for channel in &session.channels {
            let visible = lists.remove(&channel.id).unwrap_or_default();
            self.add_channel(state, id, handle, channel, visible, &mut Vec::new())
                .await?;
        }
        if !with_snapshot {
            return Ok(Vec::new());
        }
        let mut users: Vec<Snowflake> = self
            .channels
            .values()
            .filter(|c| c.dm)
            .flat_map(|c| c.visible.iter().copied())
            .collect();
        users.sort_unstable();
        users.dedup();
        Ok(state
            .presence
            .query(users)
            .await
            .into_iter()
            .map(Presence::seen_by_others)
            .collect())
    }

    /// Whether [`Watch::apply`] may change anything for this event: the sessions of an edge see
    /// mostly messages, which never do, and skip it.
    pub fn concerns(event: &Event) -> bool {
        matches!(
            event,
            Event::ChannelCreate(_)
                | Event::ChannelMemberAdd(_)
                | Event::ChannelMemberRemove(_)
                | Event::ChannelDelete(_)
                | Event::DmOpen(_)
                | Event::BlockUpdate(_)
                | Event::UserUpdate(_)
        )
    }

    /// Follows membership, consent and the user's own profile status. Answers whom the event
    /// made this session start watching (a channel it joined, a member added to one of its
    /// channels, a DM the other side opened, a block lifted): the session sends their
    /// [`Watch::snapshot`] after the event.
    pub async fn apply(
        &mut self,
        state: &EdgeState,
        id: SessionId,
        handle: &SessionHandle,
        event: &Event,
    ) -> Step<Vec<Snowflake>> {
        let Some(me) = self.me else {
            return Ok(Vec::new());
        };
        let mut newly = Vec::new();
        match event {
            // Only a member's own inbox gets CHANNEL_CREATE: a channel I was added to or opened.
            Event::ChannelCreate(ReadyChannel { channel, .. })
                if !self.channels.contains_key(&channel.id) && self.small(state, channel) =>
            {
                let max = state.presence.settings.max_members;
                match state
                    .directory
                    .session_state(me, Some(channel.id), max)
                    .await
                {
                    Ok(found) => {
                        let visible = found
                            .watch
                            .iter()
                            .find(|w| w.channel_id == channel.id)
                            .map_or(&[][..], |w| w.user_ids.as_slice());
                        self.add_channel(state, id, handle, channel, visible, &mut newly)
                            .await?;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot learn whom to watch in a new channel");
                    }
                }
            }
            Event::ChannelMemberAdd(added) if added.member.user.id != me => {
                let user = added.member.user.id;
                let Some(channel) = self.channels.get_mut(&added.channel_id) else {
                    return Ok(newly);
                };
                channel.members += 1;
                if channel.members as usize > state.presence.settings.max_members {
                    // Grown past the size presence is pushed for.
                    self.remove_channel(state, id, added.channel_id).await;
                } else if !self.hidden.contains(&user) && !channel.visible.contains(&user) {
                    match state.directory.visible(me, vec![user]).await {
                        Ok(visible) if visible.contains(&user) => {
                            self.show(state, id, handle, added.channel_id, user, &mut newly)
                                .await?;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot learn whether to watch a new member")
                        }
                    }
                }
            }
            Event::ChannelMemberRemove(removed) if removed.user_id == me => {
                self.remove_channel(state, id, removed.channel_id).await;
            }
            Event::ChannelMemberRemove(removed) => {
                if let Some(channel) = self.channels.get_mut(&removed.channel_id) {
                    channel.members = channel.members.saturating_sub(1);
                    if channel.visible.remove(&removed.user_id) {
                        self.unwatch(state, id, removed.user_id).await;
                    }
                }
            }
            Event::ChannelDelete(deleted) => {
                self.remove_channel(state, id, deleted.channel_id).await;
            }
            Event::DmOpen(opened) if opened.user_id != me => {
                let shows = self
                    .channels
                    .get(&opened.channel_id)
                    .is_some_and(|c| c.dm && !c.visible.contains(&opened.user_id));
                if shows && !self.hidden.contains(&opened.user_id) {
                    self.show(
                        state,
                        id,
                        handle,
                        opened.channel_id,
                        opened.user_id,
                        &mut newly,
                    )
                    .await?;
                }
            }
            Event::BlockUpdate(block) if block.user_id == me || block.target_id == me => {
                let other = block.other(me);
                if block.blocked {
                    self.hidden.insert(other);
                    for channel in self.channels.values_mut() {
                        if channel.visible.remove(&other) {
                            let count = self.watched.get_mut(&other).expect("counted when shown");
                            *count -= 1;
                        }
                    }
                    if self.watched.get(&other) == Some(&0) {
                        self.watched.remove(&other);
                        state.hub.leave(Topic::Presence(other), id).await;
                    }
                } else {
                    self.hidden.remove(&other);
                    self.reload(state, id, handle, me, &mut newly).await?;
                }
            }
            // The inbox copy of my own profile carries my real status; the channel copies show
            // `invisible` as `offline`, which no profile can be set to, so they are skipped.
            Event::UserUpdate(user)
                if user.id == me && user.status != proto::api::users::Status::Offline =>
            {
                state.presence.set_status(id, user.status.into()).await;
            }
            _ => {}
        }
        Ok(newly)
    }

    /// Whether presence is pushed for `channel`'s members: DMs, and groups small enough (never a
    /// server's channels: their members' presence comes with their member lists).
    fn small(&self, state: &EdgeState, channel: &Channel) -> bool {
        channel.kind == ChannelKind::Dm
            || (channel.kind == ChannelKind::Group
                && channel.member_count as usize <= state.presence.settings.max_members)
    }

    /// Asks auth again whom this session may see, and watches whoever it may now (a block was
    /// lifted).
    async fn reload(
        &mut self,
        state: &EdgeState,
        id: SessionId,
        handle: &SessionHandle,
        me: Snowflake,
        newly: &mut Vec<Snowflake>,
    ) -> Step {
        let max = state.presence.settings.max_members;
        let found = match state.directory.session_state(me, None, max).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot learn whom to watch after a block ended");
                return Ok(());
            }
        };
        for list in found.watch {
            for user in list.user_ids {
                let shows = self
                    .channels
                    .get(&list.channel_id)
                    .is_some_and(|c| !c.visible.contains(&user));
                if shows && !self.hidden.contains(&user) {
                    self.show(state, id, handle, list.channel_id, user, newly)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The presence of users this session has just started watching, as others see it; asked
    /// after subscribing, so no change falls between it and live delivery. Nothing when presence
    /// cannot say (the recovery refresh delivers it later).
    pub async fn snapshot(state: &EdgeState, users: Vec<Snowflake>) -> Vec<Presence> {
        state
            .presence
            .query(users)
            .await
            .into_iter()
            .filter(|p| p.status != PresenceStatus::Unknown)
            .map(Presence::seen_by_others)
            .collect()
    }

    /// Unsubscribes from everything and tells presence the session ended.
    pub async fn finish(&mut self, state: &EdgeState, id: SessionId) {
        for user in std::mem::take(&mut self.watched).into_keys() {
            state.hub.leave(Topic::Presence(user), id).await;
        }
        self.channels.clear();
        state.presence.ended(id).await;
    }

    /// Watches a small channel's members that this session may see (`visible`), adding to
    /// `newly` those not watched before.
    async fn add_channel(
        &mut self,
        state: &EdgeState,
        id: SessionId,
        handle: &SessionHandle,
        channel: &Channel,
        visible: &[Snowflake],
        newly: &mut Vec<Snowflake>,
    ) -> Step {
        if !self.small(state, channel) || self.channels.contains_key(&channel.id) {
            return Ok(());
        }
        self.channels.insert(
            channel.id,
            Watched {
                dm: channel.kind == ChannelKind::Dm,
                members: channel.member_count,
                visible: HashSet::new(),
            },
        );
        for user in visible {
            if Some(*user) != self.me && !self.hidden.contains(user) {
                self.show(state, id, handle, channel.id, *user, newly)
                    .await?;
            }
        }
        Ok(())
    }

    /// `user` may be seen through `channel`: counts it, and watches them if not yet watched.
    async fn show(
        &mut self,
        state: &EdgeState,
        id: SessionId,
        handle: &SessionHandle,
        channel: Snowflake,
        user: Snowflake,
        newly: &mut Vec<Snowflake>,
    ) -> Step {
        let Some(watched) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        if watched.visible.insert(user) && self.watch(state, id, handle, user).await? {
            newly.push(user);
        }
        Ok(())
    }

    async fn remove_channel(&mut self, state: &EdgeState, id: SessionId, channel: Snowflake) {
        let Some(watched) = self.channels.remove(&channel) else {
            return;
        };
        for user in watched.visible {
            self.unwatch(state, id, user).await;
        }
    }

    /// Counts one more shared channel with `user`; true when this starts watching them.
    async fn watch(
        &mut self,
        state: &EdgeState,
        id: SessionId,
        handle: &SessionHandle,
        user: Snowflake,
    ) -> Step<bool> {
        let count = self.watched.entry(user).or_default();
        *count += 1;
        if *count > 1 {
            return Ok(false);
        }
        state
            .hub
            .join(Topic::Presence(user), id, handle.clone())
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot subscribe to presence");
                CloseCode::UnknownError
            })?;
        Ok(true)
    }

    async fn unwatch(&mut self, state: &EdgeState, id: SessionId, user: Snowflake) {
        let Some(count) = self.watched.get_mut(&user) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.watched.remove(&user);
            state.hub.leave(Topic::Presence(user), id).await;
        }
    }
}
