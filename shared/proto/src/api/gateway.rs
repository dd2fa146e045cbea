//! Service discovery: which edge a client should open its WebSocket to.
//!
//! Edges register with the NATS service API under `{prefix}-edge`, with their public URL in the
//! service metadata, and serve a `discover` endpoint on `{prefix}.edge.discover` in a queue group
//! of their own, so every live edge answers one request. Auth gathers the answers for a short
//! deadline and offers the least loaded.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What an edge answers to a discovery request on `{prefix}.edge.discover`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EdgeInfo {
    /// The WebSocket URL clients use to reach this edge.
    pub url: String,
    /// Open client connections.
    pub connections: u64,
    /// The load figure discovery picks by: open connections per thousand of the edge's configured
    /// capacity (so edges of different sizes compare); may exceed 1000 when over capacity.
    #[serde(default)]
    pub load: u64,
    /// A draining edge is shutting down and takes no new clients.
    #[serde(default)]
    pub draining: bool,
}

/// `GET /api/v1/gateway`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GatewayResponse {
    /// The WebSocket URL to connect to: the least-loaded edge that answered.
    #[schema(example = "ws://127.0.0.1:8080/gateway")]
    pub url: String,
    /// Up to two other live edges, least-loaded first, to try if `url` fails.
    pub alternatives: Vec<String>,
    /// Where the media service is: avatars and server icons are uploaded there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "http://127.0.0.1:8084")]
    pub media_url: Option<String>,
    /// Where the notification service is: the mentions inbox and the VAPID key for Web Push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "http://127.0.0.1:8085")]
    pub notify_url: Option<String>,
}
