//! Each busy channel's unwritten events, kept between reads: what the stream holds above the
//! store's watermark is read once, and the next read of the channel fetches only what came
//! since.
//!
//! Without it, every read of a channel read its whole unwritten tail from the stream again. On a
//! hot message that was the cost of a reaction: each `PUT …/reactions` checks the reactor's state
//! over the tail, the tail is as long as the persister is behind (a few hundred events at a few
//! hundred reactions a second), so each check fetched and parsed hundreds of events, and the
//! further the persister fell behind, the more each check cost.
//!
//! A tail is exact or not used: it holds every event of its channel from `after` (exclusive)
//! through `through`, in order, because the stream never changes an event it holds. A read whose
//! watermark is below `after` or above `through`, or whose channel's last sequence is below
//! `through` (a replica behind, or a stream made anew), reads the stream from the watermark as
//! before and starts the tail afresh. Memory
//! is bounded: at most [`CHANNELS`] tails of at most [`EVENTS`] events each; a channel further
//! behind than that is read whole each time, as before.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use kit::stream::{ReadError, Stored};
use lru::LruCache;
use proto::Snowflake;

/// The most channels whose tails are kept (the least recently read go first).
const CHANNELS: usize = 64;
/// The most events one tail keeps.
const EVENTS: usize = 2_000;

/// One channel's events after `after` through `through`, in stream order.
#[derive(Default)]
struct Tail {
    after: u64,
    through: u64,
    events: Vec<Stored>,
}

impl Tail {
    /// Whether the tail holds every event a read above `watermark` of a channel whose last
    /// sequence is `last` needs, up to its own `through`.
    fn serves(&self, watermark: u64, last: u64) -> bool {
        self.through > 0
            && self.after <= watermark
            && watermark <= self.through
            && self.through <= last
    }
}

pub(super) struct Tails {
    tails: Mutex<LruCache<Snowflake, Tail>>,
}

impl Default for Tails {
    fn default() -> Self {
        let channels = NonZeroUsize::new(CHANNELS).expect("CHANNELS is not zero");
        Self {
            tails: Mutex::new(LruCache::new(channels)),
        }
    }
}

impl Tails {
    /// `channel`'s events above `watermark` through `last` (its last sequence in the stream),
    /// fetched with `read(after, through)` for what the tail does not hold yet.
    ///
    /// The lock is never held across the fetch: reads of one hot channel at once each fetch
    /// the few events after what the tail held when they began, side by side, rather than
    /// queueing behind one another's fetches.
    pub(super) async fn read<F, Fut>(
        &self,
        channel: Snowflake,
        watermark: u64,
        last: u64,
        read: F,
    ) -> Result<Vec<Stored>, ReadError>
    where
        F: FnOnce(u64, u64) -> Fut,
        Fut: Future<Output = Result<Vec<Stored>, ReadError>>,
    {
        let (mut events, from) = match self.lock().get(&channel) {
            Some(tail) if tail.serves(watermark, last) => {
                let held = tail.events.iter().filter(|s| s.seq > watermark).cloned();
                (held.collect::<Vec<_>>(), tail.through)
            }
            _ => (Vec::new(), watermark),
        };
        if from < last {
            events.extend(read(from, last).await?);
        }
        // Every event of the channel in (watermark, through]: keep it for the next read.
        let through = from.max(last);
        let mut tails = self.lock();
        let tail = tails.get_or_insert_mut(channel, Tail::default);
        if tail.serves(watermark, through) && tail.through >= from {
            let newer = events.iter().filter(|s| s.seq > tail.through).cloned();
            tail.events.extend(newer.collect::<Vec<_>>());
            tail.through = through;
        } else {
            *tail = Tail {
                after: watermark,
                through,
                events: events.clone(),
            };
        }
        if tail.events.len() > EVENTS {
            // Too far behind to keep: read whole next time.
            tails.pop(&channel);
        }
        Ok(events)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Snowflake, Tail>> {
        self.tails
            .lock()
            .expect("the tails' lock is never poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::events::{Event, MessageRef};

    fn stored(seq: u64) -> Stored {
        Stored {
            seq,
            event: Event::MessageDelete(MessageRef {
                id: Snowflake::from_i64(seq as i64),
                channel_id: Snowflake::from_i64(1),
            }),
        }
    }

    fn seqs(events: &[Stored]) -> Vec<u64> {
        events.iter().map(|s| s.seq).collect()
    }

    /// A stream whose channel holds the given sequences: a read returns those in (after, through].
    fn stream(
        held: &[u64],
    ) -> impl Fn(u64, u64) -> std::future::Ready<Result<Vec<Stored>, ReadError>> {
        let held = held.to_vec();
        move |after, through| {
            std::future::ready(Ok(held
                .iter()
                .filter(|&&s| s > after && s <= through)
                .map(|&s| stored(s))
                .collect()))
        }
    }

    #[tokio::test]
    async fn a_second_read_fetches_only_what_came_since() {
        let tails = Tails::default();
        let channel = Snowflake::from_i64(1);
        let first = tails
            .read(channel, 10, 14, stream(&[12, 14]))
            .await
            .unwrap();
        assert_eq!(seqs(&first), [12, 14]);
        let asked = std::cell::Cell::new((0, 0));
        let second = tails
            .read(channel, 12, 17, |after, through| {
                asked.set((after, through));
                stream(&[12, 14, 17])(after, through)
            })
            .await
            .unwrap();
        assert_eq!(asked.get(), (14, 17), "only the new part is read");
        assert_eq!(
            seqs(&second),
            [14, 17],
            "what the store now holds is left out"
        );
    }

    #[tokio::test]
    async fn reads_that_overlap_each_keep_what_they_fetched() {
        let tails = Tails::default();
        let channel = Snowflake::from_i64(1);
        let held = [12, 14, 17, 20];
        tails.read(channel, 10, 14, stream(&held)).await.unwrap();
        // A read to 20 begins from 14; while it fetches, another reads to 17 and finishes first.
        let outer = tails
            .read(channel, 10, 20, |after, through| {
                let tails = &tails;
                async move {
                    let inner = tails.read(channel, 10, 17, stream(&held)).await.unwrap();
                    assert_eq!(seqs(&inner), [12, 14, 17]);
                    stream(&held)(after, through).await
                }
            })
            .await
            .unwrap();
        assert_eq!(seqs(&outer), [12, 14, 17, 20]);
        let asked = std::cell::Cell::new(false);
        let after = tails
            .read(channel, 10, 20, |after, through| {
                asked.set(true);
                stream(&held)(after, through)
            })
            .await
            .unwrap();
        assert!(!asked.get(), "the tail holds everything through 20");
        assert_eq!(seqs(&after), [12, 14, 17, 20], "each event once");
    }

    #[tokio::test]
    async fn a_watermark_below_the_tail_or_a_shorter_stream_reads_anew() {
        let tails = Tails::default();
        let channel = Snowflake::from_i64(1);
        tails
            .read(channel, 10, 14, stream(&[12, 14]))
            .await
            .unwrap();
        // The store's watermark went back (it could not be read: 0).
        let again = tails
            .read(channel, 0, 14, stream(&[3, 12, 14]))
            .await
            .unwrap();
        assert_eq!(seqs(&again), [3, 12, 14]);
        // The stream now ends before what the tail holds (a replica behind, or a new stream).
        let anew = tails.read(channel, 0, 5, stream(&[3, 5])).await.unwrap();
        assert_eq!(seqs(&anew), [3, 5]);
    }

    #[tokio::test]
    async fn a_tail_too_long_to_keep_is_read_whole_next_time() {
        let tails = Tails::default();
        let channel = Snowflake::from_i64(1);
        let held: Vec<u64> = (1..=EVENTS as u64 + 1).collect();
        let all = tails
            .read(channel, 0, held.len() as u64, stream(&held))
            .await
            .unwrap();
        assert_eq!(all.len(), EVENTS + 1);
        let asked = std::cell::Cell::new((u64::MAX, 0));
        tails
            .read(channel, 0, held.len() as u64, |after, through| {
                asked.set((after, through));
                stream(&held)(after, through)
            })
            .await
            .unwrap();
        assert_eq!(asked.get(), (0, held.len() as u64));
    }
}
