//! Updating a message whose images media has processed, or whose links it previewed
//! (`{p}.edge.processed`, one edge of the queue group `edge` answers each request): the edge reads
//! the message as it is now and publishes it with the processed files (their real size) as
//! MESSAGE_UPDATE through the chat stream, as an edit is made, so every device sees it, resumes
//! replay it, and the persister stores it. Its content and edit time stay as they are: processing
//! is not an edit.

use std::sync::Arc;

use proto::access::Reply;
use proto::api::attachments::Processed;

use crate::state::EdgeState;

/// Most updates one edge makes at once (each a read and a publish).
const CONCURRENT: usize = 64;

/// Subscribes to media's requests; a failure stops the edge from starting.
pub async fn subscribe(
    nats: &async_nats::Client,
    subjects: &proto::subjects::Subjects,
) -> Result<async_nats::Subscriber, async_nats::SubscribeError> {
    nats.queue_subscribe(subjects.edge_processed(), "edge".to_owned())
        .await
}

/// Answers requests until `stop` (or the subscription ends), each in a task of its own.
pub async fn answer(
    state: Arc<EdgeState>,
    nats: async_nats::Client,
    requests: async_nats::Subscriber,
    stop: kit::lifecycle::Shutdown,
) {
    kit::requests::serve(
        nats,
        requests,
        CONCURRENT,
        stop,
        "processed",
        move |request| {
            let state = Arc::clone(&state);
            async move {
                let reply = match kit::requests::parse::<Processed>(&request.payload) {
                    Ok(processed) => match update(&state, &processed).await {
                        Ok(exists) => Reply::Ok(exists),
                        Err(why) => Reply::Failed(why),
                    },
                    Err(why) => Reply::Failed(why),
                };
                kit::requests::encode(&reply)
            }
        },
    )
    .await;
}

/// Publishes the message with its processed files and its links' previews (none if its author
/// suppressed them meanwhile); false when it no longer exists.
async fn update(state: &EdgeState, processed: &Processed) -> Result<bool, String> {
    let found = state
        .archive
        .message(processed.channel_id, processed.message_id)
        .await
        .map_err(|e| e.to_string())?;
    let Some(mut message) = found else {
        return Ok(false);
    };
    let mut changed = false;
    if let Some(embeds) = &processed.embeds
        && !message.embeds_suppressed()
        && message.embeds != *embeds
    {
        message.embeds.clone_from(embeds);
        changed = true;
    }
    for file in &mut message.attachments {
        if let Some(done) = processed.attachments.iter().find(|a| a.id == file.id) {
            *file = done.clone();
            changed = true;
        }
    }
    if changed {
        state
            .chat
            .update_files(message)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(true)
}
