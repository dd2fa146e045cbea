//! Every channel that holds messages: what a search index is rebuilt from when it is lost.

use futures::TryStreamExt;
use proto::Snowflake;

use super::{MessageStore, StoreError, failed};

impl MessageStore {
    /// Every channel that has ever held a message (`channel_last_message`), in the store's token
    /// order, read in pages: a full scan, for rare rebuilds only, never on a request's path.
    pub async fn channels_with_messages(&self) -> Result<Vec<Snowflake>, StoreError> {
        let ks = &self.keyspace;
        let mut statement = scylla::statement::Statement::new(format!(
            "SELECT channel_id FROM {ks}.channel_last_message"
        ));
        statement.set_page_size(1_000);
        let rows = self
            .session
            .query_iter(statement, ())
            .await
            .map_err(failed)?
            .rows_stream::<(i64,)>()
            .map_err(failed)?;
        rows.map_ok(|(id,)| Snowflake::from_i64(id))
            .try_collect()
            .await
            .map_err(failed)
    }
}
