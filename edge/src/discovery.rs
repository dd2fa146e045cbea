//! Being found: the edge registers with the NATS service API as `{prefix}-edge` (its public URL
//! in the metadata, so `nats micro info` lists every edge) and serves the `discover` endpoint on
//! `{prefix}.edge.discover`. The endpoint sits in a queue group named after this instance's
//! service id, so every live edge answers each request: auth gathers the answers and offers the
//! least loaded. On drain the service stops at once (its subscriptions go with it), so a draining
//! edge is never offered again. A killed or hung edge cannot answer, so it is not offered from the
//! next request on, whenever NATS itself notices it is gone.

use std::collections::HashMap;
use std::sync::Arc;

use async_nats::service::ServiceExt;
use futures::StreamExt;
use kit::lifecycle::Shutdown;
use proto::api::gateway::EdgeInfo;
use proto::subjects::Subjects;

use crate::state::EdgeState;

/// The registered service and its discover endpoint.
pub struct Registration {
    service: async_nats::service::Service,
    endpoint: async_nats::service::endpoint::Endpoint,
    public_url: String,
    capacity: u64,
    state: Arc<EdgeState>,
}

/// Registers now, so the edge is discoverable as soon as it is built.
pub async fn register(
    nats: &async_nats::Client,
    subjects: &Subjects,
    public_url: String,
    capacity: u64,
    state: Arc<EdgeState>,
) -> Result<Registration, async_nats::Error> {
    let service = nats
        .service_builder()
        .description("Natter WebSocket gateway")
        .metadata(HashMap::from([
            ("url".to_owned(), public_url.clone()),
            ("capacity".to_owned(), capacity.to_string()),
        ]))
        .start(subjects.edge_service_name(), env!("CARGO_PKG_VERSION"))
        .await?;
    let id = service.info().await.id;
    let endpoint = service
        .endpoint_builder()
        .name("discover")
        // A queue group of one: every edge gets every request (scatter-gather), not one of them.
        .queue_group(format!("edge-{id}"))
        .add(subjects.edge_discovery())
        .await?;
    // Discoverable once built: the subscription must have reached the server.
    nats.flush().await?;
    Ok(Registration {
        service,
        endpoint,
        public_url,
        capacity: capacity.max(1),
        state,
    })
}

impl Registration {
    fn info(&self) -> EdgeInfo {
        let connections = self.state.metrics.connections.get().max(0) as u64;
        EdgeInfo {
            url: self.public_url.clone(),
            connections,
            load: connections * 1000 / self.capacity,
            draining: false,
        }
    }

    /// Answers discovery until `shutdown` (the start of the drain), then deregisters.
    pub async fn run(mut self, shutdown: Shutdown) {
        loop {
            let request = tokio::select! {
                request = self.endpoint.next() => request,
                () = shutdown.cancelled() => None,
            };
            let Some(request) = request else { break };
            // A draining edge stays silent: it must not be offered to anyone from now on.
            if self.state.draining.is_cancelled() {
                break;
            }
            let body = serde_json::to_vec(&self.info()).expect("EdgeInfo serializes");
            if let Err(e) = request.respond(Ok(body.into())).await {
                tracing::warn!(error = %e, "cannot answer a discovery request");
            }
        }
        if let Err(e) = self.service.stop().await {
            tracing::warn!(error = %e, "cannot deregister from discovery");
        }
    }
}
