//! Pins: one partition per channel (`channel_pins`), a row per pinned message written and deleted
//! at the stream's timestamp of its CHANNEL_PINS_UPDATE, so the store ends as the stream ordered a
//! message's pins and unpins whatever order persisters apply them in.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use proto::Snowflake;
use proto::api::pins::PinsUpdate;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use super::{MessageStore, StoreError, failed, prepared};

pub(super) struct Statements {
    pin: PreparedStatement,
    unpin: PreparedStatement,
    pins: PreparedStatement,
}

impl Statements {
    pub(super) async fn prepare(
        session: &Arc<Session>,
        ks: &str,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let reads = &crate::cql::read_profile(session);
        let prepare = async move |cql: String| prepared(session, reads, timeout, &cql).await;
        Ok(Self {
            pin: prepare(format!(
                "INSERT INTO {ks}.channel_pins (channel_id, message_id, pinned_at) \
                 VALUES (?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            unpin: prepare(format!(
                "DELETE FROM {ks}.channel_pins USING TIMESTAMP ? WHERE channel_id = ? \
                 AND message_id = ?"
            ))
            .await?,
            pins: prepare(format!(
                "SELECT message_id, pinned_at FROM {ks}.channel_pins WHERE channel_id = ?"
            ))
            .await?,
        })
    }
}

impl MessageStore {
    /// Applies a pin or unpin (at stream time `at`). Idempotent.
    pub async fn pin(&self, update: &PinsUpdate, at: i64) -> Result<(), StoreError> {
        let (channel, message) = (update.channel_id.as_i64(), update.message_id.as_i64());
        let written = if update.pinned {
            let pinned_at = update
                .last_pin_timestamp
                .and_then(|ms| i64::try_from(ms).ok())
                .unwrap_or(at / 1000);
            self.session
                .execute_unpaged(&self.p.pin, (channel, message, pinned_at, at))
                .await
        } else {
            self.session
                .execute_unpaged(&self.p.unpin, (at, channel, message))
                .await
        };
        written.map_err(failed)?;
        Ok(())
    }

    /// A channel's pins as stored: (message, when pinned in Unix milliseconds), in no order.
    pub async fn pins(&self, channel: Snowflake) -> Result<Vec<(Snowflake, u64)>, StoreError> {
        let rows: Vec<(i64, i64)> = self
            .session
            .execute_iter(self.p.pins.clone(), (channel.as_i64(),))
            .await
            .map_err(failed)?
            .rows_stream::<(i64, i64)>()
            .map_err(failed)?
            .try_collect()
            .await
            .map_err(failed)?;
        Ok(rows
            .into_iter()
            .map(|(id, at)| (Snowflake::from_i64(id), u64::try_from(at).unwrap_or(0)))
            .collect())
    }
}
