//! Answering searches: the edges' requests on `{p}.search.{partition}` for each partition this
//! process holds (queue group `search`, so processes holding the same partitions share the
//! load), at most `--concurrent-searches` at once, each on a blocking thread.

use std::sync::Arc;

use futures::StreamExt;
use kit::lifecycle::Shutdown;
use proto::search::{MAX_CHANNELS, SearchAnswer, SearchRequest};
use proto::subjects::Subjects;

use crate::{Partitions, Shared};

/// The queue group every search process answers in.
const QUEUE: &str = "search";

/// Subscribes to the partitions held, before the service reports itself started.
pub async fn subscribe(
    nats: &async_nats::Client,
    subjects: &Subjects,
    partitions: &Partitions,
) -> Result<Vec<async_nats::Subscriber>, async_nats::SubscribeError> {
    let mut subscriptions = Vec::with_capacity(partitions.owned.len());
    for &partition in &partitions.owned {
        subscriptions.push(
            nats.queue_subscribe(subjects.search_query(partition), QUEUE.to_owned())
                .await?,
        );
    }
    Ok(subscriptions)
}

/// Answers until `shutdown`.
pub async fn answer(
    nats: async_nats::Client,
    subscriptions: Vec<async_nats::Subscriber>,
    shared: Arc<Shared>,
    concurrent: usize,
    shutdown: Shutdown,
) {
    futures::stream::select_all(subscriptions)
        .take_until(shutdown.cancelled())
        .for_each_concurrent(concurrent, |request| {
            let (nats, shared) = (nats.clone(), Arc::clone(&shared));
            async move {
                let Some(reply) = request.reply else {
                    return;
                };
                let answer = search(&shared, &request.payload).await;
                let outcome = match &answer {
                    SearchAnswer::Found { .. } => "found",
                    SearchAnswer::NotReady => "not_ready",
                    SearchAnswer::Failed(_) => "failed",
                };
                shared.searches.with_label_values(&[outcome]).inc();
                let body = serde_json::to_vec(&answer).expect("answers serialise");
                if let Err(e) = nats.publish(reply, body.into()).await {
                    tracing::debug!(error = %e, "a search answer was lost");
                }
            }
        })
        .await;
}

async fn search(shared: &Arc<Shared>, payload: &[u8]) -> SearchAnswer {
    if !shared.ready.is_set() {
        return SearchAnswer::NotReady;
    }
    let request: SearchRequest = match serde_json::from_slice(payload) {
        Ok(request) => request,
        Err(e) => return SearchAnswer::Failed(format!("not a search request: {e}")),
    };
    if request.channels.len() > MAX_CHANNELS {
        return SearchAnswer::Failed(format!("at most {MAX_CHANNELS} channels per search"));
    }
    // Only the channels this process holds: another's would find nothing here anyway.
    let channels: Vec<_> = request
        .channels
        .into_iter()
        .filter(|&c| shared.partitions.holds(c))
        .collect();
    if channels.is_empty() {
        return SearchAnswer::Found {
            total: 0,
            hits: Vec::new(),
        };
    }
    let shared = Arc::clone(shared);
    let (guild, filter) = (request.guild_id, request.filter);
    match tokio::task::spawn_blocking(move || shared.index.search(&channels, guild, &filter)).await
    {
        Ok(Ok((total, hits))) => SearchAnswer::Found { total, hits },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "a search failed");
            SearchAnswer::Failed(e.to_string())
        }
        Err(e) => SearchAnswer::Failed(e.to_string()),
    }
}
