//! What a page shows beside each message's own row: the preview of what a reply answers,
//! reactions (counts, and whether the reader is among them), the store's with the stream's
//! unwritten events applied on top, as [`super::overlay`] does for messages; and what the side
//! tables hold (mentions, files, link previews and flags, calls), for the messages that do not
//! carry their own.

use std::collections::{BTreeMap, HashMap, HashSet};

use proto::Snowflake;
use proto::api::messages::{Message, MessageReference};
use proto::api::reactions::{Emoji, Reaction};
use proto::events::Event;

use crate::messages::{Attachments, Calls, Embeds, Mentions, MessageStore, Side, StoreError};

/// Gives each stored reply (and system message) its reference, preview and type; with
/// `check_deleted`, drops the preview of a reply whose original is gone (the client shows "original
/// message was deleted").
pub(super) async fn replies(
    store: &MessageStore,
    channel: Snowflake,
    messages: &mut [Message],
    unwritten: &[Event],
    check_deleted: bool,
) -> Result<(), StoreError> {
    let ids: Vec<Snowflake> = messages
        .iter()
        .filter(|m| m.message_reference.is_none())
        .map(|m| m.id)
        .collect();
    if !ids.is_empty() {
        let mut previews = store.replies(channel, &ids).await?;
        for message in messages.iter_mut() {
            if let Some((preview, kind)) = previews.remove(&message.id) {
                message.message_reference = Some(MessageReference {
                    message_id: preview.id,
                    channel_id: Some(channel),
                });
                message.referenced_message = Some(preview);
                message.kind = kind;
            }
        }
    }
    if !check_deleted {
        return Ok(());
    }
    let on_page: HashSet<Snowflake> = messages.iter().map(|m| m.id).collect();
    let mut created = HashSet::new();
    let mut deleted = HashSet::new();
    for event in unwritten {
        match event {
            Event::MessageCreate(m) => {
                created.insert(m.id);
            }
            Event::MessageDelete(r) => {
                deleted.insert(r.id);
            }
            _ => {}
        }
    }
    let elsewhere: HashSet<Snowflake> = messages
        .iter()
        .filter_map(|m| m.message_reference.map(|r| r.message_id))
        .filter(|id| !on_page.contains(id) && !deleted.contains(id) && !created.contains(id))
        .collect();
    let looked_up = elsewhere.iter().map(|&id| async move {
        store
            .get(channel, id)
            .await
            .map(|found| (id, found.is_some()))
    });
    let exists: HashMap<Snowflake, bool> = futures::future::try_join_all(looked_up)
        .await?
        .into_iter()
        .collect();
    for message in messages.iter_mut() {
        let Some(original) = message.message_reference.map(|r| r.message_id) else {
            continue;
        };
        let there = !deleted.contains(&original)
            && (on_page.contains(&original)
                || created.contains(&original)
                || exists.get(&original).copied().unwrap_or(false));
        if !there {
            message.referenced_message = None;
        }
    }
    Ok(())
}

/// The messages the stream's unwritten events created or updated: they carry their own mentions,
/// previews and flags, which may be newer than the store's.
fn fresh(unwritten: &[Event]) -> HashSet<Snowflake> {
    unwritten
        .iter()
        .filter_map(|event| match event {
            Event::MessageCreate(m) | Event::MessageUpdate(m) => Some(m.id),
            _ => None,
        })
        .collect()
}

/// Gives each message what side table `S` holds for it, but for those that carry their own
/// ([`Side::carried`]).
pub(super) async fn side<S: Side>(
    store: &MessageStore,
    channel: Snowflake,
    messages: &mut [Message],
    unwritten: &[Event],
) -> Result<(), StoreError> {
    let fresh = fresh(unwritten);
    let ids: Vec<Snowflake> = messages
        .iter()
        .filter(|m| !S::carried(m, &fresh))
        .map(|m| m.id)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut found = store.side::<S>(channel, &ids).await?;
    for message in messages.iter_mut() {
        if let Some(stored) = found.remove(&message.id) {
            S::dress(message, stored);
        }
    }
    Ok(())
}

/// Gives each message what every side table holds for it, one table after another: mentions,
/// files, link previews and flags, calls.
pub(super) async fn sides(
    store: &MessageStore,
    channel: Snowflake,
    messages: &mut [Message],
    unwritten: &[Event],
) -> Result<(), StoreError> {
    side::<Mentions>(store, channel, messages, unwritten).await?;
    side::<Attachments>(store, channel, messages, unwritten).await?;
    side::<Embeds>(store, channel, messages, unwritten).await?;
    side::<Calls>(store, channel, messages, unwritten).await
}

/// The reaction events of the page's messages that the store may not hold yet, replayed in
/// stream order: each (message, emoji, user)'s final state, and the messages whose reactions
/// were all removed (what came before the removal no longer counts).
#[derive(Default)]
struct Pending {
    states: BTreeMap<(Snowflake, String, Snowflake), bool>,
    cleared: HashSet<Snowflake>,
}

impl Pending {
    fn of(unwritten: &[Event], page: &HashSet<Snowflake>) -> Self {
        let mut pending = Self::default();
        for event in unwritten {
            match event {
                Event::MessageReactionAdd(r) | Event::MessageReactionRemove(r)
                    if page.contains(&r.message_id) =>
                {
                    let added = matches!(event, Event::MessageReactionAdd(_));
                    let key = (r.message_id, r.emoji.name.clone(), r.user_id);
                    pending.states.insert(key, added);
                }
                Event::MessageReactionRemoveAll(r) if page.contains(&r.id) => {
                    pending.states.retain(|(message, _, _), _| *message != r.id);
                    pending.cleared.insert(r.id);
                }
                _ => {}
            }
        }
        pending
    }
}

/// The last state the unwritten events give `user`'s `emoji` reaction on `message`, if they say.
pub(super) fn last_state(
    unwritten: &[Event],
    message: Snowflake,
    emoji: &str,
    user: Snowflake,
) -> Option<bool> {
    let page = HashSet::from([message]);
    let pending = Pending::of(unwritten, &page);
    let key = (message, emoji.to_owned(), user);
    match pending.states.get(&key) {
        Some(state) => Some(*state),
        None => pending.cleared.contains(&message).then_some(false),
    }
}

/// Gives each message its reactions as `reader` sees them.
pub(super) async fn reactions(
    store: &MessageStore,
    reader: Snowflake,
    channel: Snowflake,
    messages: &mut [Message],
    unwritten: &[Event],
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let ids: Vec<Snowflake> = messages.iter().map(|m| m.id).collect();
    let page: HashSet<Snowflake> = ids.iter().copied().collect();
    let (mut counts, mut mine) = tokio::try_join!(
        store.reaction_counts(channel, &ids),
        store.my_reactions(reader, channel, &ids),
    )?;
    let pending = Pending::of(unwritten, &page);
    for cleared in &pending.cleared {
        counts.remove(cleared);
        mine.retain(|(message, _)| message != cleared);
    }
    // A pending state changes a count only if it differs from what the store holds for that
    // person, which only the store can say.
    let stored = pending
        .states
        .keys()
        .filter(|(message, _, _)| !pending.cleared.contains(message))
        .map(|(message, emoji, user)| async move {
            let held = store.reacted(channel, *message, emoji, *user).await?;
            Ok::<_, StoreError>(((*message, emoji.clone(), *user), held))
        });
    let stored: HashMap<_, _> = futures::future::try_join_all(stored)
        .await?
        .into_iter()
        .collect();
    for ((message, emoji, user), &now) in &pending.states {
        let before = stored
            .get(&(*message, emoji.clone(), *user))
            .copied()
            .unwrap_or(false);
        if now != before {
            let list = counts.entry(*message).or_default();
            match list.iter_mut().find(|(e, _)| e == emoji) {
                Some((_, count)) if now => *count += 1,
                Some((_, count)) => *count = count.saturating_sub(1),
                None if now => list.push((emoji.clone(), 1)),
                None => {}
            }
        }
        if *user == reader {
            if now {
                mine.insert((*message, emoji.clone()));
            } else {
                mine.remove(&(*message, emoji.clone()));
            }
        }
    }
    for message in messages.iter_mut() {
        let Some(list) = counts.remove(&message.id) else {
            continue;
        };
        message.reactions = list
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(emoji, count)| Reaction {
                me: mine.contains(&(message.id, emoji.clone())),
                emoji: Emoji::unicode(&emoji),
                count,
            })
            .collect();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::events::{MessageRef, ReactionEvent};

    fn id(n: u64) -> Snowflake {
        Snowflake::from_u64(n)
    }

    fn reaction(add: bool, user: u64, emoji: &str) -> Event {
        let r = ReactionEvent {
            user_id: id(user),
            channel_id: id(1),
            message_id: id(10),
            emoji: Emoji::unicode(emoji),
        };
        if add {
            Event::MessageReactionAdd(r)
        } else {
            Event::MessageReactionRemove(r)
        }
    }

    #[test]
    fn the_last_unwritten_event_of_a_reaction_decides_its_state() {
        let events = [
            reaction(true, 2, "👍"),
            reaction(false, 2, "👍"),
            reaction(true, 2, "👍"),
        ];
        assert_eq!(last_state(&events, id(10), "👍", id(2)), Some(true));
        assert_eq!(last_state(&events[..2], id(10), "👍", id(2)), Some(false));
        assert_eq!(last_state(&events, id(10), "🔥", id(2)), None);
        assert_eq!(last_state(&events, id(11), "👍", id(2)), None);
    }

    #[test]
    fn removing_all_reactions_forgets_what_came_before_it() {
        let clear = Event::MessageReactionRemoveAll(MessageRef {
            id: id(10),
            channel_id: id(1),
        });
        let events = [reaction(true, 2, "👍"), clear, reaction(true, 3, "👍")];
        assert_eq!(last_state(&events, id(10), "👍", id(2)), Some(false));
        assert_eq!(last_state(&events, id(10), "👍", id(3)), Some(true));
    }
}
