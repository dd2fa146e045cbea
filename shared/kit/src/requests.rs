//! Answering other services' NATS requests: the one loop every answerer runs.
//!
//! Each request is answered in a task of its own, so a slow one (a purge reading a channel's
//! history, a claim moving files) holds up no other, and at most `limit` at once, so a burst
//! of requests cannot take every connection of a pool or grow memory without bound: past the
//! limit the subscription is simply not read, and NATS buffers or drops, as for any slow
//! subscriber. A request without a reply subject is skipped; a reply that cannot be sent is
//! logged (the asker's request times out and it decides).

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::lifecycle::Shutdown;

/// Answers `requests` with the body `answer` makes of each, until `stop` is cancelled or the
/// subscription ends. `what` names the requests in logs.
pub async fn serve<F, Fut>(
    nats: async_nats::Client,
    mut requests: async_nats::Subscriber,
    limit: usize,
    stop: Shutdown,
    what: &'static str,
    answer: F,
) where
    F: Fn(async_nats::Message) -> Fut,
    Fut: Future<Output = Vec<u8>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    loop {
        let request = tokio::select! {
            () = stop.cancelled() => return,
            request = requests.next() => match request {
                Some(request) => request,
                None => return,
            },
        };
        let Some(reply_to) = request.reply.clone() else {
            tracing::warn!(what, "a request without a reply subject");
            continue;
        };
        let permit = tokio::select! {
            () = stop.cancelled() => return,
            permit = Arc::clone(&permits).acquire_owned() => {
                permit.expect("the semaphore is never closed")
            }
        };
        let body = answer(request);
        let nats = nats.clone();
        tokio::spawn(async move {
            let body = body.await;
            if let Err(e) = nats.publish(reply_to, body.into()).await {
                tracing::warn!(error = %e, what, "cannot answer a request");
            }
            drop(permit);
        });
    }
}

/// A request's payload as `Q`, or why it is not one.
pub fn parse<Q: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<Q, String> {
    serde_json::from_slice(payload).map_err(|e| format!("not a request this answers: {e}"))
}

/// A reply's body.
pub fn encode<A: serde::Serialize>(reply: &A) -> Vec<u8> {
    serde_json::to_vec(reply).expect("replies serialise")
}
