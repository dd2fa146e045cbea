//! The edge's HTTP surface: the WebSocket upgrade at `/gateway`, and the message resources
//! ([`messages`]: history, and send, edit, delete and mark-read for scripts, bots and browsers,
//! on the same paths as a socket's), and `GET /api/v1/presences` (in `presence`).

mod messages;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use shared::api::error::{ErrorBody, ErrorCode};
use tokio_util::task::TaskTracker;
use tower_http::cors::CorsLayer;

use crate::state::EdgeState;

/// Unsent bytes one socket may hold (see `upgrade`).
const MAX_WRITE_BUFFER: usize = 4 * 1024 * 1024;

#[derive(Clone)]
struct Routes {
    state: Arc<EdgeState>,
    sessions: TaskTracker,
}

pub fn router(state: Arc<EdgeState>, sessions: TaskTracker) -> Router {
    // Browsers on the allowed origins (the web client is served by auth) call the message
    // resources across origins.
    let origins: Vec<HeaderValue> = state
        .config
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600));
    let api = Router::new()
        .route(
            "/api/v1/channels/{id}/messages",
            get(messages::history).post(messages::send),
        )
        .route(
            "/api/v1/channels/{id}/messages/{message_id}",
            patch(messages::edit).delete(messages::delete),
        )
        .route(
            "/api/v1/channels/{id}/messages/{message_id}/ack",
            post(messages::ack),
        )
        .route(
            "/api/v1/presences",
            get(crate::presence::presences).with_state(Arc::clone(&state)),
        )
        .layer(cors);
    Router::new()
        .route("/gateway", get(upgrade))
        .merge(api)
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
            )
            .into_response();
        }
    }
    if routes.state.draining.is_cancelled() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            "this edge is draining; ask /api/v1/gateway for another",
        )
        .into_response();
    }
    let Routes { state, sessions } = routes;
    ws.read_buffer_size(state.config.read_buffer_bytes)
        // Write each frame straight through instead of collecting 128 KiB first.
        .write_buffer_size(0)
        // Bounds what a client that does not read can hold, but must fit the largest single
        // frame: tungstenite refuses a frame bigger than this outright. READY carries channels,
        // not their members (about 43 KB for the most channels, each full), but long topics can
        // take it to about 1 MiB.
        // A client that stops reading holds at most one frame: the write deadline closes it.
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(state.config.max_frame_bytes)
        .max_frame_size(state.config.max_frame_bytes)
        .on_upgrade(move |socket| sessions.track_future(crate::session::serve(socket, state)))
}

/// An HTTP error: a status, a stable machine code and a message for people.
pub(crate) struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

fn not_found(what: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("unknown {what}"),
    )
}

pub(crate) fn error(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        body: ErrorBody::new(code, message),
    }
}
