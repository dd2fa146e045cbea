//! How far the store holds the chat stream: the published contract between the persister and
//! every reader of history. The persister records that every event of the stream at or below a
//! sequence is written; history reads the stream only above it ([`crate::history`]), so no reader
//! looks inside the persister (its consumer, its acknowledgements).

use super::{MessageStore, StoreError, failed};

impl MessageStore {
    /// Every event of the chat stream `stream` (its name) at or below the answer is in the store;
    /// 0 when nothing was ever recorded.
    pub async fn stored_through(&self, stream: &str) -> Result<u64, StoreError> {
        let row = self
            .session
            .execute_unpaged(&self.s.stored_through, (stream,))
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?
            .maybe_first_row::<(Option<i64>,)>()
            .map_err(failed)?;
        Ok(row
            .and_then(|(sequence,)| sequence)
            .map_or(0, |sequence| u64::try_from(sequence).unwrap_or(0)))
    }

    /// Records that every event of `stream` at or below `sequence` is in the store. Only the
    /// persister calls this, with a sequence its consumer's acknowledgement floor has reached.
    /// A lower value than the truth is safe (history reads a little more of the stream); a
    /// higher one would hide messages, so it is never guessed.
    pub async fn record_stored_through(
        &self,
        stream: &str,
        sequence: u64,
    ) -> Result<(), StoreError> {
        let sequence = i64::try_from(sequence).unwrap_or(i64::MAX);
        self.session
            .execute_unpaged(&self.s.record_stored_through, (sequence, stream))
            .await
            .map_err(failed)?;
        Ok(())
    }
}
