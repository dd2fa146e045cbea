//! Read markers, each channel's newest message and unread counts: what READY shows per channel.

use std::collections::HashMap;

use futures::future::try_join_all;
use proto::Snowflake;

use super::{MAX_UNREAD, MessageStore, StoreError, failed};
use crate::schema::{bucket_of, id_timestamp};

/// At most this many buckets (of ten days each) are read without the channel's list of them: a
/// bucket without messages costs a read that finds nothing, as the list itself would.
const DIRECT_BUCKETS: i32 = 3;

impl MessageStore {
    /// Each channel's newest message id (channels with none are left out).
    pub async fn last_messages(
        &self,
        channels: &[Snowflake],
    ) -> Result<HashMap<Snowflake, Snowflake>, StoreError> {
        let reads = channels.iter().map(|&channel| async move {
            let row = self
                .session
                .execute_unpaged(&self.s.last_message, (channel.as_i64(),))
                .await
                .map_err(failed)?
                .into_rows_result()
                .map_err(failed)?
                .maybe_first_row::<(Option<i64>,)>()
                .map_err(failed)?;
            Ok::<_, StoreError>(
                row.and_then(|(id,)| id)
                    .map(|id| (channel, Snowflake::from_i64(id))),
            )
        });
        Ok(try_join_all(reads).await?.into_iter().flatten().collect())
    }

    /// Moves `user`'s read marker in `channel` forward to `id` (never back).
    pub async fn mark_read(
        &self,
        user: Snowflake,
        channel: Snowflake,
        id: Snowflake,
    ) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(
                &self.s.mark_read,
                (
                    id_timestamp(id),
                    id.as_i64(),
                    user.as_i64(),
                    channel.as_i64(),
                ),
            )
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Where `user` has read up to, per channel.
    pub async fn read_states(
        &self,
        user: Snowflake,
    ) -> Result<HashMap<Snowflake, Snowflake>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.s.read_states, (user.as_i64(),))
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?;
        result
            .rows::<(i64, Option<i64>)>()
            .map_err(failed)?
            .filter_map(|row| match row {
                Ok((channel, Some(id))) => {
                    Some(Ok((Snowflake::from_i64(channel), Snowflake::from_i64(id))))
                }
                Ok((_, None)) => None,
                Err(e) => Some(Err(failed(e))),
            })
            .collect()
    }

    /// How many messages by others follow `after` in `channel`, whose newest is `last`, and how
    /// many of those mention `reader` (who has `roles` in its server), each counted to
    /// [`MAX_UNREAD`]. The buckets from `after`'s (or the channel's own, as every message is newer
    /// than its channel) to `last`'s are read directly when they are few; otherwise the channel's
    /// list of buckets is read once for both counts.
    pub async fn unread_counts(
        &self,
        channel: Snowflake,
        reader: Snowflake,
        roles: &[Snowflake],
        after: Snowflake,
        last: Snowflake,
    ) -> Result<(usize, usize), StoreError> {
        let (from, to) = (bucket_of(after.max(channel)), bucket_of(last));
        let buckets = if to.saturating_sub(from) < DIRECT_BUCKETS {
            (from..=to).collect()
        } else {
            self.buckets(&self.s.buckets_up, channel, from).await?
        };
        tokio::try_join!(
            self.unread_count(channel, reader, after, &buckets),
            self.unread_mentions(channel, reader, roles, after, &buckets)
        )
    }

    /// How many messages by others follow `after` in `channel`'s `buckets` (those from
    /// `after`'s on), counting to [`MAX_UNREAD`].
    async fn unread_count(
        &self,
        channel: Snowflake,
        reader: Snowflake,
        after: Snowflake,
        buckets: &[i32],
    ) -> Result<usize, StoreError> {
        let mut count = 0;
        for &bucket in buckets {
            let result = self
                .session
                .execute_unpaged(
                    &self.s.unread_rows,
                    (
                        channel.as_i64(),
                        bucket,
                        after.as_i64(),
                        (MAX_UNREAD * 2) as i32,
                    ),
                )
                .await
                .map_err(failed)?
                .into_rows_result()
                .map_err(failed)?;
            for row in result.rows::<(i64, Option<i64>)>().map_err(failed)? {
                let (_, author) = row.map_err(failed)?;
                if author.is_some_and(|a| a != reader.as_i64()) {
                    count += 1;
                }
            }
            if count >= MAX_UNREAD {
                return Ok(MAX_UNREAD);
            }
        }
        Ok(count)
    }
}
