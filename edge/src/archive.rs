//! The edge's link to the message archive: pages of a channel and single messages (history as
//! `store::History` reads it: the store with the stream's unwritten events on top), read markers,
//! and READY's unread counts.
//!
//! The edge does not need the store to carry chat: it connects in the background and keeps
//! trying, and until then history answers "unavailable" and READY leaves unread counts out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kit::retry::{self, Retryable};
use kit::stream::ChatStream;
use proto::Snowflake;
use proto::api::messages::Message;
use proto::gateway::ReadSummary;
use store::cql::CqlConfig;
use store::{History, MessageStore, Page, StoreError};
use tokio::sync::OnceCell;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("the message store is not connected yet")]
    NotConnected,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Archive {
    history: Arc<OnceCell<History>>,
}

impl Archive {
    /// Starts connecting to the store in the background (the edge runs without it meanwhile).
    pub fn connect(
        cql: CqlConfig,
        request_timeout: Duration,
        stream: ChatStream,
        connected: prometheus::IntGauge,
    ) -> Self {
        let history = Arc::new(OnceCell::new());
        let slot = Arc::clone(&history);
        tokio::spawn(async move {
            let policy = retry::exponential(Duration::from_millis(200), Duration::from_secs(5));
            let opened = (|| open(&cql, request_timeout))
                .retry(policy)
                .notify(|e, _| tracing::warn!(error = %e, "message store not available yet"))
                .await;
            if let Ok(opened) = opened {
                let _ = slot.set(History::new(opened, stream));
                connected.set(1);
                tracing::info!("message store connected");
            }
        });
        Self { history }
    }

    fn history(&self) -> Result<&History, HistoryError> {
        self.history.get().ok_or(HistoryError::NotConnected)
    }

    fn store(&self) -> Result<&MessageStore, HistoryError> {
        self.history().map(History::store)
    }

    /// A page of `channel`'s history, newest first.
    pub async fn page(
        &self,
        channel: Snowflake,
        page: Page,
        limit: usize,
    ) -> Result<Vec<Message>, HistoryError> {
        Ok(self.history()?.page(channel, page, limit).await?)
    }

    /// A page of `channel`'s history as `reader` sees it: replies' previews, reactions and
    /// whether `reader` is among them.
    pub async fn page_for(
        &self,
        reader: Snowflake,
        channel: Snowflake,
        page: Page,
        limit: usize,
    ) -> Result<Vec<Message>, HistoryError> {
        Ok(self
            .history()?
            .page_for(reader, channel, page, limit)
            .await?)
    }

    /// A page of `limit` messages around each of `anchors` (channel, message) as `reader` sees
    /// them, in their order (search's hits with their context).
    pub async fn pages_around(
        &self,
        reader: Snowflake,
        anchors: &[(Snowflake, Snowflake)],
        limit: usize,
    ) -> Result<Vec<Vec<Message>>, HistoryError> {
        Ok(self.history()?.pages_around(reader, anchors, limit).await?)
    }

    /// Whether `user` has reacted to a message with `emoji`; `None` when there is no such
    /// message.
    pub async fn reacted(
        &self,
        channel: Snowflake,
        message: Snowflake,
        emoji: &str,
        user: Snowflake,
    ) -> Result<Option<bool>, HistoryError> {
        Ok(self
            .history()?
            .reacted(channel, message, emoji, user)
            .await?)
    }

    /// Who reacted to a message with `emoji`: user ids above `after`, in id order.
    pub async fn reactors(
        &self,
        channel: Snowflake,
        message: Snowflake,
        emoji: &str,
        after: Snowflake,
        limit: usize,
    ) -> Result<Vec<Snowflake>, HistoryError> {
        Ok(self
            .store()?
            .reactors(channel, message, emoji, after, limit)
            .await?)
    }

    /// One message of `channel`, if it exists.
    pub async fn message(
        &self,
        channel: Snowflake,
        id: Snowflake,
    ) -> Result<Option<Message>, HistoryError> {
        Ok(self.history()?.message(channel, id).await?)
    }

    /// The messages pinned in `channel`, with when each was pinned, the most recent first.
    pub async fn pinned(&self, channel: Snowflake) -> Result<Vec<(Message, u64)>, HistoryError> {
        Ok(self.history()?.pinned(channel).await?)
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

    /// Where `user` stands in each of `channels` (its newest message, the read marker, unread and
    /// mention counts, with the stream's not yet written messages counted: `History::summaries`),
    /// within `budget`; none when the store is not connected, slow or failing.
    pub async fn summaries(
        &self,
        user: Snowflake,
        channels: &[Snowflake],
        roles: &HashMap<Snowflake, Vec<Snowflake>>,
        budget: Duration,
    ) -> HashMap<Snowflake, ReadSummary> {
        let Ok(history) = self.history() else {
            return HashMap::new();
        };
        match history.summaries(user, channels, roles, budget).await {
            Ok(summaries) => summaries,
            Err(e) => {
                tracing::warn!(error = %e, "READY without unread counts");
                HashMap::new()
            }
        }
    }
}

async fn open(cql: &CqlConfig, request_timeout: Duration) -> Result<MessageStore, String> {
    let session = cql.connect().await.map_err(|e| e.to_string())?;
    MessageStore::prepare(session, &cql.keyspace, request_timeout)
        .await
        .map_err(|e| e.to_string())
}
