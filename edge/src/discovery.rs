//! Answering discovery: auth's `GET /api/v1/gateway` publishes a request on
//! `{prefix}.edge.discover` and every live edge answers with its `EdgeInfo` (no queue group, so
//! all of them answer and auth picks the least loaded).

use std::sync::Arc;

use futures::StreamExt;
use shared::api::gateway::EdgeInfo;
use shared::lifecycle::Shutdown;
use shared::subjects::Subjects;

use crate::state::EdgeState;

/// Subscribes now (so the edge is discoverable as soon as it is built) and returns the task that
/// answers until `shutdown`.
pub async fn responder(
    nats: async_nats::Client,
    subjects: &Subjects,
    public_url: String,
    state: Arc<EdgeState>,
) -> Result<impl Future<Output = ()> + Send + 'static, async_nats::SubscribeError> {
    let mut requests = nats.subscribe(subjects.edge_discovery()).await?;
    Ok(async move {
        while let Some(request) = requests.next().await {
            let Some(reply) = request.reply else { continue };
            // A draining edge stays silent: it must not be offered to anyone from now on.
            if state.draining.is_cancelled() {
                continue;
            }
            let info = EdgeInfo {
                url: public_url.clone(),
                connections: state.metrics.connections.get().max(0) as u64,
                draining: false,
            };
            let body = serde_json::to_vec(&info).expect("EdgeInfo serializes");
            if let Err(e) = nats.publish(reply, body.into()).await {
                tracing::warn!(error = %e, "cannot answer a discovery request");
            }
        }
    })
}

/// Runs the responder until `shutdown`.
pub async fn run(answer: impl Future<Output = ()>, shutdown: Shutdown) {
    tokio::select! {
        () = answer => {}
        () = shutdown.cancelled() => {}
    }
}
