//! Reading history: pages of a channel, one message, read markers and unread counts.
//!
//! The CQL store holds what the persister has written; the chat stream holds what it has not yet
//! (usually nothing, or a few milliseconds' worth; more while the store is down). Every read is the
//! store's answer with the stream's unwritten events of that channel applied on top
//! ([`overlay`]), so a client that reads history right after READY sees every message up to
//! READY's sequence, and the seam between stream and store loses nothing.
//!
//! The edge does not need the store to carry chat: it connects in the background and keeps
//! trying, and until then history answers "unavailable" and READY leaves unread counts out.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use proto::Snowflake;
use proto::api::messages::Message;
use proto::events::Event;
use serde::Serialize;
use store::cql::CqlConfig;
use store::history::{MessageStore, Page, StoreError, StoredMessage};
use tokio::sync::OnceCell;

use crate::backlog::Backlog;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("the message store is not connected yet")]
    NotConnected,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What READY says about a channel's messages for this user.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReadSummary {
    pub last_message_id: Option<Snowflake>,
    pub last_read_id: Option<Snowflake>,
    /// Messages by others after the read marker, counted to 100 ("100 or more").
    pub unread_count: usize,
}

#[derive(Clone)]
pub struct History {
    store: Arc<OnceCell<MessageStore>>,
    backlog: Backlog,
}

impl History {
    /// Starts connecting to the store in the background (the edge runs without it meanwhile).
    pub fn connect(
        cql: CqlConfig,
        request_timeout: Duration,
        backlog: Backlog,
        connected: prometheus::IntGauge,
    ) -> Self {
        let store = Arc::new(OnceCell::new());
        let slot = Arc::clone(&store);
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(200);
            loop {
                match open(&cql, request_timeout).await {
                    Ok(opened) => {
                        let _ = slot.set(opened);
                        connected.set(1);
                        tracing::info!("message store connected");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "message store not available yet"),
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        });
        Self { store, backlog }
    }

    fn store(&self) -> Result<&MessageStore, HistoryError> {
        self.store.get().ok_or(HistoryError::NotConnected)
    }

    /// The events of `channel` not yet in the store. Failing to read them (the stream is busy or
    /// far behind) leaves the store's answer as it is, which is at worst a few messages short.
    async fn unwritten(&self, channel: Snowflake) -> Vec<Event> {
        match self.backlog.unpersisted(channel).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, %channel, "cannot read unwritten events");
                Vec::new()
            }
        }
    }

    /// A page of `channel`'s history, newest first.
    pub async fn page(
        &self,
        channel: Snowflake,
        page: Page,
        limit: usize,
    ) -> Result<Vec<Message>, HistoryError> {
        let store = self.store()?;
        let unwritten = self.unwritten(channel).await;
        // Deletes among them may remove stored messages from the page: read that many more.
        let deletes = unwritten
            .iter()
            .filter(|e| matches!(e, Event::MessageDelete(_)))
            .count();
        let stored = store.page(channel, page, limit + deletes).await?;
        Ok(overlay(channel, page, limit, stored, &unwritten))
    }

    /// One message of `channel`, if it exists.
    pub async fn message(
        &self,
        channel: Snowflake,
        id: Snowflake,
    ) -> Result<Option<Message>, HistoryError> {
        let store = self.store()?;
        let (stored, unwritten) = tokio::join!(store.get(channel, id), self.unwritten(channel));
        let found = overlay(
            channel,
            Page::Around(id),
            1,
            stored?.into_iter().collect(),
            &unwritten,
        );
        Ok(found.into_iter().find(|m| m.id == id))
    }

    /// Moves `user`'s read marker in `channel` forward to `id`.
    pub async fn mark_read(
        &self,
        user: Snowflake,
        channel: Snowflake,
        id: Snowflake,
    ) -> Result<(), HistoryError> {
        Ok(self.store()?.mark_read(user, channel, id).await?)
    }

    /// Last message, read marker and unread count of each channel, for READY. Best effort within
    /// `budget`: without the store, or when it is slow, channels are left out (the client then
    /// shows no badge rather than a wrong one).
    pub async fn summaries(
        &self,
        user: Snowflake,
        channels: &[Snowflake],
        budget: Duration,
    ) -> HashMap<Snowflake, ReadSummary> {
        let Ok(store) = self.store() else {
            return HashMap::new();
        };
        let read = async {
            let (last, read) =
                tokio::try_join!(store.last_messages(channels), store.read_states(user))?;
            let counts = channels.iter().map(|&channel| {
                let (last, read) = (last.get(&channel).copied(), read.get(&channel).copied());
                async move {
                    let unread_count = match (last, read) {
                        (None, _) => 0,
                        (Some(last), Some(read)) if read >= last => 0,
                        (Some(_), read) => {
                            store
                                .unread_count(channel, user, read.unwrap_or(Snowflake::from_u64(0)))
                                .await?
                        }
                    };
                    Ok::<_, StoreError>((
                        channel,
                        ReadSummary {
                            last_message_id: last,
                            last_read_id: read,
                            unread_count,
                        },
                    ))
                }
            });
            futures::future::try_join_all(counts).await
        };
        match tokio::time::timeout(budget, read).await {
            Ok(Ok(summaries)) => summaries.into_iter().collect(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "READY without unread counts");
                HashMap::new()
            }
            Err(_) => {
                tracing::warn!("READY without unread counts: the store is slow");
                HashMap::new()
            }
        }
    }
}

async fn open(cql: &CqlConfig, request_timeout: Duration) -> Result<MessageStore, String> {
    let session = cql.connect().await.map_err(|e| e.to_string())?;
    session
        .use_keyspace(cql.keyspace.as_str(), false)
        .await
        .map_err(|e| e.to_string())?;
    MessageStore::prepare(session, request_timeout)
        .await
        .map_err(|e| e.to_string())
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
}
