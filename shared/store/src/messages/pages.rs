//! Pages of a channel's messages, walking the buckets that hold any.

use proto::Snowflake;
use scylla::statement::prepared::PreparedStatement;

use super::{MAX_PAGE, MessageStore, Page, Row, StoreError, StoredMessage, failed, stored};
use crate::schema::{bucket_of, key_of};

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
                let (mut after, this, older) = tokio::try_join!(
                    self.newer(channel, id, limit - before - 1),
                    self.get(channel, id),
                    self.older(channel, Some(id), before),
                )?;
                after.reverse();
                after.extend(this);
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
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let top = before.map_or(i32::MAX, bucket_of);
        let bound = before.map_or(i64::MAX, Snowflake::as_i64);
        for bucket in self.buckets(&self.s.buckets_down, channel, top).await? {
            let want = i32::try_from(limit - out.len()).unwrap_or(i32::MAX);
            let rows = self
                .rows(&self.s.older, (channel.as_i64(), bucket, bound, want))
                .await?;
            out.extend(rows);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Messages newer than `id`, oldest first, walking up the buckets that hold any.
    async fn newer(
        &self,
        channel: Snowflake,
        id: Snowflake,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for bucket in self
            .buckets(&self.s.buckets_up, channel, bucket_of(id))
            .await?
        {
            let want = i32::try_from(limit - out.len()).unwrap_or(i32::MAX);
            let rows = self
                .rows(&self.s.newer, (channel.as_i64(), bucket, id.as_i64(), want))
                .await?;
            out.extend(rows);
            if out.len() >= limit {
                break;
            }
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
