//! History as clients read it: the store's answer with the chat stream's events that the store
//! does not yet hold applied on top, so a client that reads history right after READY sees every
//! message up to READY's sequence, and the seam between stream and store loses nothing
//! (docs/ARCHITECTURE.md, invariant 2).
//!
//! The store holds what the persister has written; the stream holds what it has not yet (usually
//! nothing, or a few milliseconds' worth; more while the store is down). Which is which is the
//! store's watermark ([`MessageStore::stored_through`]): every event at or below it is in the
//! store, so a read takes the stream's events of the channel above it and [`overlay`]s them.
//! The watermark is read before the store, so whatever the persister writes meanwhile is in one
//! of the two answers, or both (an event in both shows once).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kit::stream::{ChatStream, MAX_REPLAY, ReadError};
use proto::Snowflake;
use proto::api::messages::Message;
use proto::events::Event;

use crate::messages::{MessageStore, Page, StoreError, StoredMessage};

mod dress;
mod summaries;
mod tail;

/// A channel's history: the store and the chat stream it is written from.
#[derive(Clone)]
pub struct History {
    store: MessageStore,
    stream: ChatStream,
    tails: Arc<tail::Tails>,
}

impl History {
    pub fn new(store: MessageStore, stream: ChatStream) -> Self {
        Self {
            store,
            stream,
            tails: Arc::default(),
        }
    }

    /// The store alone (read markers and unread counts, which the stream does not change).
    pub fn store(&self) -> &MessageStore {
        &self.store
    }

    /// A page of `channel`'s history, newest first.
    pub async fn page(
        &self,
        channel: Snowflake,
        page: Page,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        Ok(self.read_page(channel, page, limit).await?.0)
    }

    /// A page of `channel`'s history as `reader` sees it, newest first: each reply with the
    /// preview of what it answers (none once that is deleted), each message with its mentions,
    /// its reactions and whether `reader` is among them, and its files (without URLs: the edge
    /// signs them).
    pub async fn page_for(
        &self,
        reader: Snowflake,
        channel: Snowflake,
        page: Page,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let (mut messages, unwritten) = self.read_page(channel, page, limit).await?;
        dress::replies(&self.store, channel, &mut messages, &unwritten, true).await?;
        dress::reactions(&self.store, reader, channel, &mut messages, &unwritten).await?;
        dress::sides(&self.store, channel, &mut messages, &unwritten).await?;
        Ok(messages)
    }

    /// A page of `limit` messages around each of `anchors` (channel, message), as `reader` sees
    /// them (as [`History::page_for`] with [`Page::Around`]), in the order of `anchors`: what
    /// search shows around its hits. The watermark and the stream are read once for them all,
    /// and each channel's messages are dressed together, so twenty-five hits cost twenty-five
    /// page reads and a few side reads per channel, not twenty-five of everything.
    pub async fn pages_around(
        &self,
        reader: Snowflake,
        anchors: &[(Snowflake, Snowflake)],
        limit: usize,
    ) -> Result<Vec<Vec<Message>>, StoreError> {
        let mut channels: Vec<Snowflake> = anchors.iter().map(|&(channel, _)| channel).collect();
        channels.sort_unstable();
        channels.dedup();
        let unwritten = self.unwritten_of(&channels, self.watermark().await).await;
        let none = Vec::new();
        let of = |channel: &Snowflake| unwritten.get(channel).unwrap_or(&none);
        let reads = anchors.iter().map(|&(channel, id)| async move {
            let unwritten = of(&channel);
            let stored = (self.store)
                .page(channel, Page::Around(id), limit + deletes(unwritten))
                .await?;
            Ok::<_, StoreError>(overlay(channel, Page::Around(id), limit, stored, unwritten))
        });
        let mut pages = futures::future::try_join_all(reads).await?;
        // Each channel's pages dressed as one: its messages once each (two hits' pages may
        // share some), then handed back to every page that shows them.
        let dressing = channels.iter().map(|&channel| {
            let mut messages: BTreeMap<Snowflake, Message> = BTreeMap::new();
            for (i, page) in pages.iter().enumerate() {
                if anchors[i].0 == channel {
                    messages.extend(page.iter().map(|m| (m.id, m.clone())));
                }
            }
            let mut messages: Vec<Message> = messages.into_values().collect();
            async move {
                let unwritten = of(&channel);
                dress::replies(&self.store, channel, &mut messages, unwritten, true).await?;
                dress::reactions(&self.store, reader, channel, &mut messages, unwritten).await?;
                dress::sides(&self.store, channel, &mut messages, unwritten).await?;
                Ok::<_, StoreError>(messages)
            }
        });
        let dressed: HashMap<(Snowflake, Snowflake), Message> =
            futures::future::try_join_all(dressing)
                .await?
                .into_iter()
                .flatten()
                .map(|m| ((m.channel_id, m.id), m))
                .collect();
        for page in &mut pages {
            for message in page.iter_mut() {
                if let Some(whole) = dressed.get(&(message.channel_id, message.id)) {
                    message.clone_from(whole);
                }
            }
        }
        Ok(pages)
    }

    /// Whether `user` has reacted to a message with `emoji`, the stream's unwritten events
    /// included; `None` when the message does not exist (never sent, or deleted). One watermark
    /// and one stream read, the message's row and the reaction's read side by side: what a
    /// reaction costs before it is published, on a message that may be the hottest of the day.
    pub async fn reacted(
        &self,
        channel: Snowflake,
        message: Snowflake,
        emoji: &str,
        user: Snowflake,
    ) -> Result<Option<bool>, StoreError> {
        let watermark = self.watermark().await;
        let (stored, held, unwritten) = tokio::join!(
            self.store.get(channel, message),
            self.store.reacted(channel, message, emoji, user),
            self.unwritten(channel, watermark)
        );
        let exists = overlay(
            channel,
            Page::Around(message),
            1,
            stored?.into_iter().collect(),
            &unwritten,
        )
        .iter()
        .any(|m| m.id == message);
        if !exists {
            return Ok(None);
        }
        // The stream's unwritten events are newer than the store's row when they say anything.
        match dress::last_state(&unwritten, message, emoji, user) {
            Some(state) => Ok(Some(state)),
            None => Ok(Some(held?)),
        }
    }

    async fn read_page(
        &self,
        channel: Snowflake,
        page: Page,
        limit: usize,
    ) -> Result<(Vec<Message>, Vec<Event>), StoreError> {
        let unwritten = self.unwritten(channel, self.watermark().await).await;
        let stored = (self.store)
            .page(channel, page, limit + deletes(&unwritten))
            .await?;
        let messages = overlay(channel, page, limit, stored, &unwritten);
        Ok((messages, unwritten))
    }

    /// One message of `channel`, if it exists.
    pub async fn message(
        &self,
        channel: Snowflake,
        id: Snowflake,
    ) -> Result<Option<Message>, StoreError> {
        let watermark = self.watermark().await;
        let (stored, unwritten) = tokio::join!(
            self.store.get(channel, id),
            self.unwritten(channel, watermark)
        );
        let mut found: Vec<Message> = overlay(
            channel,
            Page::Around(id),
            1,
            stored?.into_iter().collect(),
            &unwritten,
        )
        .into_iter()
        .filter(|m| m.id == id)
        .collect();
        dress::replies(&self.store, channel, &mut found, &unwritten, false).await?;
        dress::sides(&self.store, channel, &mut found, &unwritten).await?;
        Ok(found.pop())
    }

    /// The messages pinned in `channel` with when each was pinned (Unix milliseconds), the most
    /// recently pinned first: the store's pins with the stream's unwritten pins and unpins
    /// applied, less those whose message is gone.
    pub async fn pinned(&self, channel: Snowflake) -> Result<Vec<(Message, u64)>, StoreError> {
        let watermark = self.watermark().await;
        let (stored, unwritten) =
            tokio::join!(self.store.pins(channel), self.unwritten(channel, watermark));
        let pins = pins_over(channel, stored?, &unwritten);
        let gets = pins.iter().map(|&(id, _)| self.store.get(channel, id));
        let found = futures::future::try_join_all(gets).await?;
        let mut messages = Vec::with_capacity(pins.len());
        let mut times = Vec::with_capacity(pins.len());
        for (&(id, at), stored) in pins.iter().zip(found) {
            let page = overlay(
                channel,
                Page::Around(id),
                1,
                stored.into_iter().collect(),
                &unwritten,
            );
            if let Some(message) = page.into_iter().find(|m| m.id == id) {
                messages.push(message);
                times.push(at);
            }
        }
        dress::replies(&self.store, channel, &mut messages, &unwritten, false).await?;
        // Whole, as in history: the pins list shows a pinned photo or link preview too.
        dress::sides(&self.store, channel, &mut messages, &unwritten).await?;
        Ok(messages.into_iter().zip(times).collect())
    }

    /// How far the store holds the stream. Not knowing (the store did not answer) counts as
    /// nothing: the stream's events are read from its start, which is never short.
    async fn watermark(&self) -> u64 {
        let stream = self.stream.subjects().chat_stream_name();
        self.store
            .stored_through(&stream)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read how far the store holds the stream");
                0
            })
    }

    /// The events of `channel` the stream holds above `watermark`, in stream order. Failing to
    /// read them (the stream is busy, or far ahead of the store) leaves the store's answer as it
    /// is, which is at worst a few messages short.
    async fn unwritten(&self, channel: Snowflake, watermark: u64) -> Vec<Event> {
        match self.read_unwritten(channel, watermark).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, %channel, "cannot read unwritten events");
                Vec::new()
            }
        }
    }

    async fn read_unwritten(
        &self,
        channel: Snowflake,
        watermark: u64,
    ) -> Result<Vec<Event>, ReadError> {
        let lasts = self.stream.last_sequences(&[channel]).await?;
        let Some(&last) = lasts.get(&channel).filter(|&&last| last > watermark) else {
            return Ok(Vec::new());
        };
        let read = |after: u64, through: u64| async move {
            match (self.stream)
                .channel_events(channel, after, through, MAX_REPLAY)
                .await
            {
                // The server that answered is a replica behind the one that told `last`: read
                // from the stream's leader instead.
                Err(ReadError::Incomplete(..)) => {
                    self.stream.replay(&[channel], after, through).await
                }
                read => read,
            }
        };
        let events = self.tails.read(channel, watermark, last, read).await?;
        Ok(events.into_iter().map(|stored| stored.event).collect())
    }
}

/// How many deletes are among a channel's unwritten events: each may remove a stored message
/// from a page, so a page reads that many more.
fn deletes(unwritten: &[Event]) -> usize {
    unwritten
        .iter()
        .filter(|e| matches!(e, Event::MessageDelete(_)))
        .count()
}

/// Applies the stream's unwritten pins and unpins of a channel to the store's pins: (message,
/// when pinned), the most recently pinned first.
pub fn pins_over(
    channel: Snowflake,
    stored: Vec<(Snowflake, u64)>,
    unwritten: &[Event],
) -> Vec<(Snowflake, u64)> {
    let mut pins: BTreeMap<Snowflake, u64> = stored.into_iter().collect();
    for event in unwritten {
        match event {
            Event::ChannelPinsUpdate(update) if update.channel_id == channel => {
                if update.pinned {
                    let at = update.last_pin_timestamp.unwrap_or_default();
                    pins.insert(update.message_id, at);
                } else {
                    pins.remove(&update.message_id);
                }
            }
            _ => {}
        }
    }
    let mut list: Vec<(Snowflake, u64)> = pins.into_iter().collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    list
}

/// Applies the stream's unwritten events of a channel to what the store returned for a page and
/// cuts the page to `limit`, newest first.
pub fn overlay(
    channel: Snowflake,
    page: Page,
    limit: usize,
    stored: Vec<StoredMessage>,
    unwritten: &[Event],
) -> Vec<Message> {
    let mut messages: BTreeMap<Snowflake, Message> = stored
        .into_iter()
        .map(|m| (m.id, m.into_message(channel)))
        .collect();
    for event in unwritten {
        match event {
            Event::MessageCreate(m) | Event::MessageUpdate(m) if m.channel_id == channel => {
                let mut m = m.clone();
                m.nonce = None;
                messages.insert(m.id, m);
            }
            Event::MessageDelete(r) if r.channel_id == channel => {
                messages.remove(&r.id);
            }
            _ => {}
        }
    }
    let limit = limit.max(1);
    // Newest first, then the `limit` nearest the page's anchor.
    let newest_first = messages.into_values().rev();
    match page {
        Page::Latest => newest_first.take(limit).collect(),
        Page::Before(id) => newest_first.filter(|m| m.id < id).take(limit).collect(),
        Page::After(id) => {
            let mut after: Vec<Message> = newest_first.filter(|m| m.id > id).collect();
            let skip = after.len().saturating_sub(limit);
            after.drain(..skip);
            after
        }
        Page::Around(id) => {
            let all: Vec<Message> = newest_first.collect();
            // Index of the first message at or below the anchor.
            let pivot = all.iter().position(|m| m.id <= id).unwrap_or(all.len());
            // Half the page older than the anchor, the anchor itself, and newer ones to fill up.
            let anchor = usize::from(all.get(pivot).is_some_and(|m| m.id == id));
            let older = (limit / 2 + anchor).min(all.len() - pivot);
            let newer = limit - older.min(limit);
            let start = pivot.saturating_sub(newer);
            all.into_iter().skip(start).take(limit).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::events::MessageRef;

    const CHANNEL: Snowflake = Snowflake::from_u64(9);

    fn stored(ids: impl IntoIterator<Item = u64>) -> Vec<StoredMessage> {
        // The store answers newest first.
        let mut rows: Vec<StoredMessage> = ids
            .into_iter()
            .map(|id| StoredMessage {
                id: Snowflake::from_u64(id),
                author_id: Snowflake::from_u64(1),
                content: format!("m{id}"),
                edited_at: None,
            })
            .collect();
        rows.reverse();
        rows
    }

    fn create(id: u64) -> Event {
        Event::MessageCreate(Message {
            id: Snowflake::from_u64(id),
            channel_id: CHANNEL,
            author_id: Snowflake::from_u64(1),
            content: format!("m{id}"),
            nonce: Some("n".into()),
            edited_at: None,
            ..Default::default()
        })
    }

    fn ids(messages: &[Message]) -> Vec<u64> {
        messages.iter().map(|m| m.id.get()).collect()
    }

    #[test]
    fn unwritten_messages_join_the_newest_page_without_a_gap() {
        let page = overlay(
            CHANNEL,
            Page::Latest,
            4,
            stored(1..=3),
            &[create(4), create(5)],
        );
        assert_eq!(ids(&page), [5, 4, 3, 2]);
        assert!(page.iter().all(|m| m.nonce.is_none()));
    }

    #[test]
    fn a_message_in_both_places_shows_once() {
        let page = overlay(CHANNEL, Page::Latest, 10, stored(1..=3), &[create(3)]);
        assert_eq!(ids(&page), [3, 2, 1]);
    }

    #[test]
    fn unwritten_edits_and_deletes_apply_to_stored_messages() {
        let mut edit = Message {
            id: Snowflake::from_u64(2),
            channel_id: CHANNEL,
            author_id: Snowflake::from_u64(1),
            content: "changed".into(),
            nonce: None,
            edited_at: Some(5),
            ..Default::default()
        };
        let delete = Event::MessageDelete(MessageRef {
            id: Snowflake::from_u64(3),
            channel_id: CHANNEL,
        });
        let page = overlay(
            CHANNEL,
            Page::Latest,
            10,
            stored(1..=3),
            &[Event::MessageUpdate(edit.clone()), delete],
        );
        assert_eq!(ids(&page), [2, 1]);
        edit.nonce = None;
        assert_eq!(page[0], edit);
    }

    #[test]
    fn before_after_and_around_keep_the_messages_nearest_the_anchor() {
        let id = Snowflake::from_u64;
        assert_eq!(
            ids(&overlay(
                CHANNEL,
                Page::Before(id(5)),
                2,
                stored(1..=9),
                &[]
            )),
            [4, 3]
        );
        assert_eq!(
            ids(&overlay(CHANNEL, Page::After(id(5)), 2, stored(1..=9), &[])),
            [7, 6]
        );
        assert_eq!(
            ids(&overlay(
                CHANNEL,
                Page::Around(id(5)),
                4,
                stored(1..=9),
                &[]
            )),
            [6, 5, 4, 3]
        );
        // Near the newest end, the page fills with older messages.
        assert_eq!(
            ids(&overlay(
                CHANNEL,
                Page::Around(id(9)),
                4,
                stored(1..=9),
                &[]
            )),
            [9, 8, 7, 6]
        );
    }

    #[test]
    fn other_channels_events_are_ignored() {
        let mut other = create(7);
        if let Event::MessageCreate(m) = &mut other {
            m.channel_id = Snowflake::from_u64(10);
        }
        let page = overlay(CHANNEL, Page::Latest, 10, stored(1..=2), &[other]);
        assert_eq!(ids(&page), [2, 1]);
    }

    #[test]
    fn unwritten_pins_and_unpins_apply_in_stream_order_most_recent_first() {
        let id = Snowflake::from_u64;
        let update = |message: u64, pinned: bool, at: u64| {
            Event::ChannelPinsUpdate(proto::api::pins::PinsUpdate {
                channel_id: CHANNEL,
                guild_id: None,
                last_pin_timestamp: pinned.then_some(at),
                message_id: id(message),
                pinned,
            })
        };
        let stored = vec![(id(1), 100), (id(2), 200)];
        let pins = pins_over(
            CHANNEL,
            stored,
            &[
                update(3, true, 300),
                update(1, false, 0),
                update(1, true, 400),
                update(2, false, 0),
            ],
        );
        assert_eq!(pins, [(id(1), 400), (id(3), 300)]);
    }
}
