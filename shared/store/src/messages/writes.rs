//! Writes of messages: the persister's, each at the moment the chat stream stored its event.

use proto::Snowflake;
use proto::api::messages::Message;
use scylla::value::CqlTimestamp;

use super::{MessageStore, StoreError, failed};
use crate::schema::{bucket_of, id_timestamp, key_of};

impl MessageStore {
    /// Stores a new message, the bucket it opens and the channel's newest id. `at` is the write
    /// timestamp in microseconds: when the chat stream stored the event. Idempotent.
    pub async fn insert(&self, message: &Message, at: i64) -> Result<(), StoreError> {
        let channel = message.channel_id.as_i64();
        let bucket = bucket_of(message.id);
        let id = message.id.as_i64();
        let row = self.session.execute_unpaged(
            &self.s.insert,
            (
                channel,
                bucket,
                id,
                message.author_id.as_i64(),
                &message.content,
                at,
            ),
        );
        let bucket_row = self
            .session
            .execute_unpaged(&self.s.insert_bucket, (channel, bucket));
        let last = self
            .session
            .execute_unpaged(&self.s.set_last, (id_timestamp(message.id), id, channel));
        tokio::try_join!(row, bucket_row, last).map_err(failed)?;
        Ok(())
    }

    /// Applies an edit at stream time `at`: the whole message, with its new content and edit time.
    pub async fn edit(&self, message: &Message, at: i64) -> Result<(), StoreError> {
        let key = key_of(message.channel_id, message.id);
        let edited_at = CqlTimestamp(
            message
                .edited_at
                .and_then(|t| i64::try_from(t).ok())
                .unwrap_or(at / 1000),
        );
        let values = (
            at,
            message.author_id.as_i64(),
            &message.content,
            edited_at,
            key.0,
            key.1,
            key.2,
        );
        self.session
            .execute_unpaged(&self.s.edit, values)
            .await
            .map_err(failed)?;
        let deleted = self
            .session
            .execute_unpaged(&self.s.deletion, key)
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?
            .maybe_first_row::<(i64,)>()
            .map_err(failed)?
            .is_some();
        if deleted {
            tracing::info!(channel = %message.channel_id, id = %message.id,
                           "an edit raced a delete; the message stays deleted");
            self.session
                .execute_unpaged(&self.s.delete, (at, key.0, key.1, key.2))
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    /// Deletes a message at stream time `at`, for good: a later edit cannot bring it back.
    pub async fn delete(
        &self,
        channel: Snowflake,
        id: Snowflake,
        at: i64,
    ) -> Result<(), StoreError> {
        let key = key_of(channel, id);
        self.session
            .execute_unpaged(
                &self.s.record_deletion,
                (key.0, key.1, key.2, CqlTimestamp(at / 1000)),
            )
            .await
            .map_err(failed)?;
        self.session
            .execute_unpaged(&self.s.delete, (at, key.0, key.1, key.2))
            .await
            .map_err(failed)?;
        // An edit written after this delete in stream order survives the tombstone: remove it.
        let newer = self
            .session
            .execute_unpaged(&self.s.newest_cell, key)
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?
            .maybe_first_row::<(Option<i64>,)>()
            .map_err(failed)?
            .and_then(|(at,)| at);
        if let Some(newer) = newer {
            tracing::info!(%channel, %id, "a delete raced an edit; removing the edit");
            self.session
                .execute_unpaged(&self.s.delete, (newer, key.0, key.1, key.2))
                .await
                .map_err(failed)?;
        }
        Ok(())
    }
}
