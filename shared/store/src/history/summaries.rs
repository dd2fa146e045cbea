//! Where a reader stands in each channel (READY's and CHANNEL_CREATE's newest message, read marker,
//! unread and mention counts): the store's counts, with the channel's events that the stream holds
//! above the store's watermark counted on top, as history overlays them on a page. So a message
//! acknowledged a moment ago counts in a channel the reader is only now shown (the first message
//! of a new DM), although the persister has not written it yet.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt;
use kit::stream::CHANNELS_PER_CHECK;
use proto::Snowflake;
use proto::events::Event;
use proto::gateway::ReadSummary;
use tokio::time::Instant;

use super::History;
use crate::messages::{MAX_UNREAD, StoreError, failed};

/// How many channels' unwritten events are read at once.
const READS_AT_ONCE: usize = 8;

impl History {
    /// Where `reader` (who has `roles[channel]` in each channel's server) stands in each of
    /// `channels`, within `budget`. Past it, or when the store fails, there are no summaries (the
    /// client shows none rather than wrong ones); the stream's part, when it alone is late or
    /// fails, is left out, which is at worst a few messages short.
    pub async fn summaries(
        &self,
        reader: Snowflake,
        channels: &[Snowflake],
        roles: &HashMap<Snowflake, Vec<Snowflake>>,
        budget: Duration,
    ) -> Result<HashMap<Snowflake, ReadSummary>, StoreError> {
        let deadline = Instant::now() + budget;
        // The watermark before the store: what the persister writes meanwhile is in one of the two
        // answers, or both (counted once, see `count_unwritten`).
        let watermark = self.watermark().await;
        let stored =
            tokio::time::timeout_at(deadline, self.stored_summaries(reader, channels, roles));
        let unwritten = tokio::time::timeout_at(deadline, self.unwritten_of(channels, watermark));
        let (stored, unwritten) = tokio::join!(stored, unwritten);
        let mut summaries =
            stored.map_err(|_| failed(format!("no answer within {} ms", budget.as_millis())))??;
        let unwritten = unwritten.unwrap_or_else(|_| {
            tracing::warn!("unread counts without the stream's unwritten events: it is slow");
            HashMap::new()
        });
        for (channel, events) in unwritten {
            let summary = summaries.entry(channel).or_default();
            let roles = roles.get(&channel).map(Vec::as_slice).unwrap_or_default();
            count_unwritten(channel, reader, roles, summary, &events);
        }
        Ok(summaries)
    }

    /// The store's part of [`History::summaries`].
    async fn stored_summaries(
        &self,
        reader: Snowflake,
        channels: &[Snowflake],
        roles: &HashMap<Snowflake, Vec<Snowflake>>,
    ) -> Result<HashMap<Snowflake, ReadSummary>, StoreError> {
        let store = &self.store;
        let (last, read) =
            tokio::try_join!(store.last_messages(channels), store.read_states(reader))?;
        let counts = channels.iter().map(|&channel| {
            let (last, read) = (last.get(&channel).copied(), read.get(&channel).copied());
            let roles = roles.get(&channel).map(Vec::as_slice).unwrap_or_default();
            async move {
                let (unread_count, mention_count) = match (last, read) {
                    (None, _) => (0, 0),
                    (Some(last), Some(read)) if read >= last => (0, 0),
                    (Some(last), read) => {
                        let after = read.unwrap_or(Snowflake::from_u64(0));
                        let (count, mentions) = store
                            .unread_counts(channel, reader, roles, after, last)
                            .await?;
                        (capped(count), capped(mentions))
                    }
                };
                let summary = ReadSummary {
                    last_message_id: last,
                    last_read_id: read,
                    unread_count,
                    mention_count,
                };
                Ok::<_, StoreError>((channel, summary))
            }
        });
        Ok(futures::future::try_join_all(counts)
            .await?
            .into_iter()
            .collect())
    }

    /// The events the stream holds above `watermark`, for each of `channels` that has any: one
    /// request per [`CHANNELS_PER_CHECK`] channels finds them (usually none), then each is read.
    pub(super) async fn unwritten_of(
        &self,
        channels: &[Snowflake],
        watermark: u64,
    ) -> HashMap<Snowflake, Vec<Event>> {
        let mut behind = Vec::new();
        for chunk in channels.chunks(CHANNELS_PER_CHECK) {
            match self.stream.last_sequences(chunk).await {
                Ok(lasts) => behind.extend(
                    lasts
                        .into_iter()
                        .filter(|&(_, last)| last > watermark)
                        .map(|(channel, _)| channel),
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot ask the stream for channels' last events")
                }
            }
        }
        futures::stream::iter(behind)
            .map(|channel| async move { (channel, self.unwritten(channel, watermark).await) })
            .buffer_unordered(READS_AT_ONCE)
            .filter(|(_, events)| std::future::ready(!events.is_empty()))
            .collect()
            .await
    }
}

fn capped(count: usize) -> u32 {
    u32::try_from(count.min(MAX_UNREAD)).unwrap_or(u32::MAX)
}

/// Counts a channel's unwritten `events` into the store's `summary` for `reader`: each message
/// newer than the store's newest becomes the newest, and counts as unread (and as a mention) when
/// it is someone else's, after the read marker and not deleted again in the same events. A
/// message at or below the store's newest is the store's already (written meanwhile) and is not
/// counted twice.
pub(super) fn count_unwritten(
    channel: Snowflake,
    reader: Snowflake,
    roles: &[Snowflake],
    summary: &mut ReadSummary,
    events: &[Event],
) {
    // Each new message still there: (unread, mentions the reader).
    let mut new: BTreeMap<Snowflake, (bool, bool)> = BTreeMap::new();
    for event in events {
        match event {
            Event::MessageCreate(m)
                if m.channel_id == channel
                    && summary.last_message_id.is_none_or(|last| m.id > last) =>
            {
                let unread =
                    m.author_id != reader && summary.last_read_id.is_none_or(|read| m.id > read);
                new.insert(m.id, (unread, unread && m.mentions_user(reader, roles)));
            }
            Event::MessageDelete(r) if r.channel_id == channel => {
                new.remove(&r.id);
            }
            _ => {}
        }
    }
    if let Some((&newest, _)) = new.last_key_value() {
        summary.last_message_id = Some(newest);
    }
    let count = |of: fn(&(bool, bool)) -> bool| new.values().filter(|v| of(v)).count();
    let unread = summary.unread_count as usize + count(|&(unread, _)| unread);
    let mentions = summary.mention_count as usize + count(|&(_, mentions)| mentions);
    summary.unread_count = capped(unread);
    summary.mention_count = capped(mentions);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::api::messages::Message;
    use proto::events::MessageRef;

    const CHANNEL: Snowflake = Snowflake::from_u64(9);
    const ME: Snowflake = Snowflake::from_u64(1);
    const BOB: Snowflake = Snowflake::from_u64(2);

    fn create(id: u64, author: Snowflake, mentions_me: bool) -> Event {
        Event::MessageCreate(Message {
            id: Snowflake::from_u64(id),
            channel_id: CHANNEL,
            author_id: author,
            mentions: if mentions_me { vec![ME.into()] } else { vec![] },
            ..Message::default()
        })
    }

    fn delete(id: u64) -> Event {
        Event::MessageDelete(MessageRef {
            id: Snowflake::from_u64(id),
            channel_id: CHANNEL,
        })
    }

    fn summary(last: Option<u64>, read: Option<u64>, unread: u32) -> ReadSummary {
        ReadSummary {
            last_message_id: last.map(Snowflake::from_u64),
            last_read_id: read.map(Snowflake::from_u64),
            unread_count: unread,
            mention_count: 0,
        }
    }

    #[test]
    fn a_first_message_the_store_does_not_hold_yet_is_unread_and_the_newest() {
        let mut s = summary(None, None, 0);
        count_unwritten(CHANNEL, ME, &[], &mut s, &[create(10, BOB, true)]);
        assert_eq!(s.last_message_id, Some(Snowflake::from_u64(10)));
        assert_eq!((s.unread_count, s.mention_count), (1, 1));
    }

    #[test]
    fn what_the_store_already_holds_my_own_and_what_i_read_do_not_count() {
        // The store holds up to 20 (written meanwhile), with 2 unread; I read up to 25.
        let mut s = summary(Some(20), Some(25), 2);
        let events = [
            create(20, BOB, false),
            create(24, BOB, false),
            create(30, ME, false),
            create(31, BOB, false),
        ];
        count_unwritten(CHANNEL, ME, &[], &mut s, &events);
        assert_eq!(s.last_message_id, Some(Snowflake::from_u64(31)));
        assert_eq!((s.unread_count, s.mention_count), (3, 0));
    }

    #[test]
    fn a_message_deleted_again_is_gone_and_the_count_stops_at_the_cap() {
        let mut s = summary(Some(5), None, 0);
        count_unwritten(
            CHANNEL,
            ME,
            &[],
            &mut s,
            &[create(6, BOB, true), create(7, BOB, false), delete(7)],
        );
        assert_eq!(s.last_message_id, Some(Snowflake::from_u64(6)));
        assert_eq!((s.unread_count, s.mention_count), (1, 1));

        let mut full = summary(Some(5), None, 99);
        let many: Vec<Event> = (6..20).map(|id| create(id, BOB, false)).collect();
        count_unwritten(CHANNEL, ME, &[], &mut full, &many);
        assert_eq!(full.unread_count, 100);
    }
}
