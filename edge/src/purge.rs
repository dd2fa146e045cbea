//! Deleting a banned member's recent messages, when auth asks (`{p}.edge.purge`, one edge of the
//! queue group `edge` answers each request): the edge reads each channel's history from the
//! request's moment on (the store, and what the chat stream holds above it) and deletes the
//! author's messages through the chat stream, exactly as a moderator's delete is made, so every
//! device sees MESSAGE_DELETE, resumes replay it, and the persister stores it.

use std::sync::Arc;

use proto::Snowflake;
use proto::access::{PurgeRequest, Purged, Reply};
use proto::api::messages::MAX_PAGE;
use store::Page;

use crate::state::EdgeState;

/// Most purges one edge makes at once (each reads and deletes through one channel at a time).
const CONCURRENT: usize = 16;

/// Subscribes to auth's requests; a failure stops the edge from starting.
pub async fn subscribe(
    nats: &async_nats::Client,
    subjects: &proto::subjects::Subjects,
) -> Result<async_nats::Subscriber, async_nats::SubscribeError> {
    nats.queue_subscribe(subjects.edge_purge(), "edge".to_owned())
        .await
}

/// Answers requests until `stop` (or the subscription ends), each in a task of its own (a long
/// purge holds up no other).
pub async fn answer(
    state: Arc<EdgeState>,
    nats: async_nats::Client,
    requests: async_nats::Subscriber,
    stop: kit::lifecycle::Shutdown,
) {
    kit::requests::serve(nats, requests, CONCURRENT, stop, "purge", move |request| {
        let state = Arc::clone(&state);
        async move {
            let reply = match kit::requests::parse::<PurgeRequest>(&request.payload) {
                Ok(purge) => match purge_messages(&state, &purge).await {
                    Ok(deleted) => Reply::Ok(Purged { deleted }),
                    Err(why) => Reply::Failed(why),
                },
                Err(why) => Reply::Failed(why),
            };
            kit::requests::encode(&reply)
        }
    })
    .await;
}

/// Deletes every message of the author in the channels since the moment; answers how many.
async fn purge_messages(state: &EdgeState, purge: &PurgeRequest) -> Result<u32, String> {
    let mut deleted = 0;
    for channel in &purge.channel_ids {
        // Every id made at or after the moment is above this one.
        let first = Snowflake::first_at(purge.since_ms).get();
        let mut anchor = Snowflake::from_u64(first.saturating_sub(1));
        loop {
            let page = state
                .archive
                .page(*channel, Page::After(anchor), MAX_PAGE)
                .await
                .map_err(|e| format!("cannot read channel {channel}: {e}"))?;
            let Some(newest) = page.first() else {
                break;
            };
            anchor = newest.id;
            for message in page.iter().filter(|m| m.author_id == purge.author_id) {
                state
                    .chat
                    .purge(*channel, message.id)
                    .await
                    .map_err(|e| format!("cannot delete a message: {e}"))?;
                deleted += 1;
            }
        }
    }
    tracing::info!(
        guild = %purge.guild_id,
        author = %purge.author_id,
        deleted,
        "deleted a banned member's recent messages"
    );
    Ok(deleted)
}
