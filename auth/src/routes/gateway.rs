//! `GET /api/v1/gateway`: which edge a client should open its WebSocket to.
//!
//! Scatter-gather over NATS: publish one request on `{prefix}.edge.discover` (every edge serves it
//! as an endpoint of its NATS service, each in a queue group of its own) with a reply inbox,
//! collect every edge's `EdgeInfo` until the deadline, and answer with the least-loaded edge that
//! is not draining (ties broken at random so clients spread), up to two more as alternatives.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use futures::StreamExt;
use kit::error::{ApiError, ApiResult};
use proto::api::error::{ErrorBody, ErrorCode};
use proto::api::gateway::{EdgeInfo, GatewayResponse};

use crate::state::AppState;

/// Where to connect the WebSocket.
#[utoipa::path(get, path = "/api/v1/gateway", tag = "gateway",
    responses(
        (status = 200, body = GatewayResponse),
        (status = 503, description = "No edge answered", body = ErrorBody),
    ))]
pub async fn gateway(State(state): State<AppState>) -> ApiResult<Json<GatewayResponse>> {
    let edges = discover(
        &state.nats,
        &state.subjects.edge_discovery(),
        state.settings.discovery_timeout,
    )
    .await
    .map_err(ApiError::internal)?;
    let media_url = Some(state.settings.media_url.clone());
    let notify_url = Some(state.settings.notify_url.clone());
    pick(edges)
        .map(|picked| {
            Json(GatewayResponse {
                media_url,
                notify_url,
                ..picked
            })
        })
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ServiceUnavailable,
                "no gateway (edge) is running right now; try again shortly",
            )
        })
}

/// Every answer to one discovery request that arrives within `deadline`.
pub async fn discover(
    nats: &async_nats::Client,
    subject: &str,
    deadline: Duration,
) -> Result<Vec<EdgeInfo>, String> {
    let inbox = nats.new_inbox();
    let mut answers = nats
        .subscribe(inbox.clone())
        .await
        .map_err(|e| e.to_string())?;
    nats.publish_with_reply(subject.to_owned(), inbox, bytes::Bytes::new())
        .await
        .map_err(|e| e.to_string())?;
    nats.flush().await.map_err(|e| e.to_string())?;
    let mut edges = Vec::new();
    let until = tokio::time::Instant::now() + deadline;
    while let Ok(Some(message)) = tokio::time::timeout_at(until, answers.next()).await {
        match serde_json::from_slice::<EdgeInfo>(&message.payload) {
            Ok(info) => edges.push(info),
            Err(e) => tracing::warn!(error = %e, "an edge answered discovery with something else"),
        }
    }
    let _ = answers.unsubscribe().await;
    Ok(edges)
}

/// Alternatives offered beside the pick.
const ALTERNATIVES: usize = 2;

/// The least-loaded live edge first, up to two more as alternatives in load order.
fn pick(mut edges: Vec<EdgeInfo>) -> Option<GatewayResponse> {
    edges.retain(|e| !e.draining);
    edges.sort_by_cached_key(|e| (e.load, e.connections, tie_breaker()));
    let mut urls = edges.into_iter().map(|e| e.url);
    let url = urls.next()?;
    Some(GatewayResponse {
        url,
        alternatives: urls.take(ALTERNATIVES).collect(),
        media_url: None,
        notify_url: None,
    })
}

fn tie_breaker() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(url: &str, connections: u64, draining: bool) -> EdgeInfo {
        EdgeInfo {
            url: url.to_owned(),
            connections,
            load: connections,
            draining,
        }
    }

    #[test]
    fn the_least_loaded_edge_is_picked_and_draining_ones_are_left_out() {
        let picked = pick(vec![
            edge("ws://a", 10, false),
            edge("ws://b", 3, false),
            edge("ws://c", 0, true),
            edge("ws://d", 7, false),
        ])
        .unwrap();
        assert_eq!(picked.url, "ws://b");
        assert_eq!(picked.alternatives, ["ws://d", "ws://a"]);
    }

    #[test]
    fn the_load_figure_decides_and_at_most_two_alternatives_are_offered() {
        let mut big = edge("ws://big", 500, false);
        big.load = 50;
        let mut small = edge("ws://small", 100, false);
        small.load = 100;
        let picked = pick(vec![
            small,
            big,
            edge("ws://x", 900, false),
            edge("ws://y", 901, false),
        ])
        .unwrap();
        assert_eq!(picked.url, "ws://big");
        assert_eq!(picked.alternatives, ["ws://small", "ws://x"]);
    }

    #[test]
    fn no_live_edge_means_no_answer() {
        assert!(pick(vec![]).is_none());
        assert!(pick(vec![edge("ws://c", 0, true)]).is_none());
    }
}
