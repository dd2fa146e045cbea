//! Pages of a channel's messages, walking the buckets that hold any.

use proto::Snowflake;
use scylla::statement::prepared::PreparedStatement;

use super::{MAX_PAGE, MessageStore, Page, Row, StoreError, StoredMessage, failed, stored};
use crate::schema::{bucket_of, key_of};

/// Which way a page walks the buckets: to older messages or to newer ones.
#[derive(Clone, Copy)]
enum Walk {
    Down,
    Up,
}

impl MessageStore {
    /// One message, if it exists.
    pub async fn get(
        &self,
        channel: Snowflake,
        id: Snowflake,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let row = self
            .session
            .execute_unpaged(&self.s.get, key_of(channel, id))
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?
            .maybe_first_row::<Row>()
            .map_err(failed)?;
        Ok(row.and_then(stored))
    }

    /// Up to `limit` messages of a page, newest first.
    pub async fn page(
        &self,
        channel: Snowflake,
        page: Page,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        match page {
            Page::Latest => self.older(channel, None, limit).await,
            Page::Before(id) => self.older(channel, Some(id), limit).await,
            Page::After(id) => {
                let mut newer = self.newer(channel, id, limit).await?;
                newer.reverse();
                Ok(newer)
            }
            Page::Around(id) => {
                let before = limit / 2;
                // The message itself is the newest of those up to it (one read, not a get and a
                // read); a message that is not there leaves `before` older ones, as a get would.
                let (mut after, mut older) = tokio::try_join!(
                    self.newer(channel, id, limit - before - 1),
                    self.down_from(
                        channel,
                        bucket_of(id),
                        id.as_i64().saturating_add(1),
                        before + 1
                    ),
                )?;
                if older.first().is_none_or(|m| m.id != id) {
                    older.truncate(before);
                }
                after.reverse();
                after.extend(older);
                Ok(after)
            }
        }
    }

    /// Messages older than `before` (or the newest), newest first, walking down the buckets that
    /// hold any.
    async fn older(
        &self,
        channel: Snowflake,
        before: Option<Snowflake>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        match before {
            Some(id) => {
                self.down_from(channel, bucket_of(id), id.as_i64(), limit)
                    .await
            }
            None => {
                self.walk(Walk::Down, channel, i32::MAX, i64::MAX, limit, Vec::new())
                    .await
            }
        }
    }

    /// Messages with ids below `bound`, newest first, from bucket `top` (`bound`'s) down.
    async fn down_from(
        &self,
        channel: Snowflake,
        top: i32,
        bound: i64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.starting_in(Walk::Down, channel, top, bound, limit)
            .await
    }

    /// Messages newer than `id`, oldest first, from its bucket up.
    async fn newer(
        &self,
        channel: Snowflake,
        id: Snowflake,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.starting_in(Walk::Up, channel, bucket_of(id), id.as_i64(), limit)
            .await
    }

    /// Messages past `bound` (below it walking down, above it walking up), from `bucket`, the
    /// bucket `bound` falls in. That bucket is read first, without asking which buckets hold
    /// messages: a page around, before or after a message is mostly in the message's own
    /// bucket, and the list of buckets is read only when it holds too few.
    async fn starting_in(
        &self,
        walk: Walk,
        channel: Snowflake,
        bucket: i32,
        bound: i64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (rows, next) = match walk {
            Walk::Down => (&self.s.older, bucket.checked_sub(1)),
            Walk::Up => (&self.s.newer, bucket.checked_add(1)),
        };
        let want = i32::try_from(limit).unwrap_or(i32::MAX);
        let first = self
            .rows(rows, (channel.as_i64(), bucket, bound, want))
            .await?;
        match next {
            Some(next) if first.len() < limit => {
                self.walk(walk, channel, next, bound, limit, first).await
            }
            _ => Ok(first),
        }
    }

    /// Adds to `out` until it holds `limit`: the buckets holding messages from `from` on, down
    /// or up, each read past `bound`.
    async fn walk(
        &self,
        walk: Walk,
        channel: Snowflake,
        from: i32,
        bound: i64,
        limit: usize,
        mut out: Vec<StoredMessage>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let (buckets, rows) = match walk {
            Walk::Down => (&self.s.buckets_down, &self.s.older),
            Walk::Up => (&self.s.buckets_up, &self.s.newer),
        };
        for bucket in self.buckets(buckets, channel, from).await? {
            if out.len() >= limit {
                break;
            }
            let want = i32::try_from(limit - out.len()).unwrap_or(i32::MAX);
            out.extend(
                self.rows(rows, (channel.as_i64(), bucket, bound, want))
                    .await?,
            );
        }
        Ok(out)
    }

    /// The buckets of `channel` that hold messages, from `from` down or up (per `statement`).
    pub(super) async fn buckets(
        &self,
        statement: &PreparedStatement,
        channel: Snowflake,
        from: i32,
    ) -> Result<Vec<i32>, StoreError> {
        self.session
            .execute_unpaged(statement, (channel.as_i64(), from))
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?
            .rows::<(i32,)>()
            .map_err(failed)?
            .map(|row| row.map(|(b,)| b).map_err(failed))
            .collect()
    }

    async fn rows(
        &self,
        statement: &PreparedStatement,
        values: (i64, i32, i64, i32),
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let result = self
            .session
            .execute_unpaged(statement, values)
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?;
        let rows = result.rows::<Row>().map_err(failed)?;
        let mut out = Vec::new();
        for row in rows {
            out.extend(stored(row.map_err(failed)?));
        }
        Ok(out)
    }
}
