//! Deleted channels leave the index. A channel's deletion is not a chat event: auth tells media
//! to delete the channel's files (`{p}.media.forget` without a message), and this process listens
//! to the same notice (a plain subscription beside media's queue group) and removes every document
//! of the channel, committing at once.
//!
//! The notice is core NATS, so one can be lost; that costs disk, never privacy: a deleted channel
//! is never among the channels an edge names to a search, so its documents are never shown.

use std::sync::Arc;

use futures::StreamExt;
use kit::lifecycle::Shutdown;
use proto::api::attachments::Forget;

use crate::Shared;
use crate::rebuild;

/// Removes deleted channels until `shutdown`.
pub async fn follow(mut notices: async_nats::Subscriber, shared: Arc<Shared>, shutdown: Shutdown) {
    loop {
        let notice = tokio::select! {
            notice = notices.next() => notice,
            () = shutdown.cancelled() => return,
        };
        let Some(notice) = notice else {
            return;
        };
        let Ok(Forget {
            channel_id,
            message_id: None,
        }) = serde_json::from_slice::<Forget>(&notice.payload)
        else {
            continue;
        };
        if !shared.partitions.holds(channel_id) {
            continue;
        }
        shared.index.remove_channel(channel_id);
        // The position of the last commit, again: whatever the intake applied since is applied
        // again after a crash, which changes nothing.
        let Some(position) = shared.index.position() else {
            continue;
        };
        if let Err(e) = rebuild::commit(&shared, position).await {
            tracing::warn!(error = %e, "cannot commit a deleted channel's removal");
        }
    }
}
