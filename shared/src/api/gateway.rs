//! Service discovery: which edge a client should open its WebSocket to.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What an edge answers to a discovery request on `{prefix}.edge.discover`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EdgeInfo {
    /// The WebSocket URL clients use to reach this edge.
    pub url: String,
    /// Open client connections: the load figure discovery picks by.
    pub connections: u64,
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
    /// Other live edges, least-loaded first, to try if `url` fails.
    pub alternatives: Vec<String>,
}
