//! The edge's HTTP surface: the WebSocket upgrade at `/gateway`, and
//! `POST /api/v1/channels/{id}/messages` for scripts and bots, which takes the same send path as
//! a socket; `GET /api/v1/presences` (in `presence`).

use std::sync::Arc;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use shared::Snowflake;
use shared::api::error::{ErrorBody, ErrorCode};
use shared::gateway::MessageSend;
use tokio_util::task::TaskTracker;

use crate::chat::SendError;
use crate::state::EdgeState;

/// Read buffer per socket. Tungstenite's default is 128 KiB per connection; client frames are at
/// most 16 KiB and mostly tiny, and an idle edge holds tens of thousands of sockets.
/// Measured here (docs/BENCHMARKS.md): 1 KiB saved about 3 KB per idle connection but made
/// send-to-receive p90 jump from under 1 ms to over 50 ms at 500 messages/s, so 4 KiB it is until
/// that is understood. Larger frames (to the 16 KiB limit) still arrive whole either way.
const READ_BUFFER: usize = 4 * 1024;

/// Unsent bytes one socket may hold (see `upgrade`).
const MAX_WRITE_BUFFER: usize = 4 * 1024 * 1024;

#[derive(Clone)]
struct Routes {
    state: Arc<EdgeState>,
    sessions: TaskTracker,
}

pub fn router(state: Arc<EdgeState>, sessions: TaskTracker) -> Router {
    Router::new()
        .route("/gateway", get(upgrade))
        .route("/api/v1/channels/{id}/messages", post(post_message))
        .route(
            "/api/v1/presences",
            get(crate::presence::presences).with_state(Arc::clone(&state)),
        )
        .with_state(Routes { state, sessions })
}

async fn upgrade(
    State(routes): State<Routes>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let config = &routes.state.config;
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| config.allowed_origins.iter().any(|a| a == o));
        if !allowed {
            return error(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "this origin may not open a gateway socket",
            );
        }
    }
    if routes.state.draining.is_cancelled() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            "this edge is draining; ask /api/v1/gateway for another",
        );
    }
    let Routes { state, sessions } = routes;
    ws.read_buffer_size(READ_BUFFER)
        // Write each frame straight through instead of collecting 128 KiB first.
        .write_buffer_size(0)
        // Bounds what a client that does not read can hold, but must fit the largest single
        // frame: tungstenite refuses a frame bigger than this outright, and READY (channels with
        // their members, and co-members' presences) passes 64 KiB with a few 100-member channels.
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(state.config.max_frame_bytes)
        .max_frame_size(state.config.max_frame_bytes)
        .on_upgrade(move |socket| sessions.track_future(crate::session::serve(socket, state)))
}

#[derive(Deserialize)]
struct PostMessage {
    content: String,
    #[serde(default)]
    nonce: Option<String>,
}

async fn post_message(
    State(routes): State<Routes>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let state = &routes.state;
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "send an access token as `Authorization: Bearer <token>`",
        );
    };
    let Ok(claims) = state.verifier.verify_fetching(token).await else {
        return error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "the access token was not accepted",
        );
    };
    let Ok(channel) = channel.parse::<Snowflake>() else {
        return not_found();
    };
    let body: PostMessage = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidBody,
                format!("the body is not a message: {e}"),
            );
        }
    };
    let member = match state.directory.channels(token).await {
        Ok(channels) => channels.iter().any(|c| c.id == channel),
        Err(e) => {
            tracing::warn!(error = %e, "cannot check membership with auth");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ServiceUnavailable,
                "cannot check membership right now",
            );
        }
    };
    if !member {
        return not_found();
    }
    let send = MessageSend {
        channel_id: channel,
        content: body.content,
        nonce: body.nonce,
    };
    match state.chat.send(claims.sub, send).await {
        Ok(message) => (StatusCode::OK, axum::Json(message)).into_response(),
        Err(SendError::UnknownChannel) => not_found(),
        Err(e @ (SendError::InvalidContent(_) | SendError::InvalidNonce)) => error(
            StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed,
            e.to_string(),
        ),
        Err(e @ SendError::RateLimited) => error(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            e.to_string(),
        ),
        Err(e @ SendError::Unavailable) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            e.to_string(),
        ),
    }
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "unknown channel",
    )
}

pub(crate) fn error(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Response {
    (status, axum::Json(ErrorBody::new(code, message))).into_response()
}
