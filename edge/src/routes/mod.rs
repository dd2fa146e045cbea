//! The edge's HTTP surface: the WebSocket upgrade at `/gateway`, and the message resources
//! ([`messages`]: history, and send, edit, delete and mark-read for scripts, bots and browsers,
//! on the same paths as a socket's), and `GET /api/v1/presences` (in `presence`).

mod messages;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use proto::api::error::{ErrorBody, ErrorCode};
use serde::de::DeserializeOwned;
use tokio_util::task::TaskTracker;
use tower_http::cors::CorsLayer;

use crate::state::EdgeState;

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
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes));
    // CORS wraps everything, so a browser's preflight (OPTIONS) is answered before routing: the
    // routes have no OPTIONS handler, and the JSON 405 fallback would otherwise answer it.
    Router::new()
        .route("/gateway", get(upgrade))
        .merge(api)
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(cors)
        .with_state(Routes { state, sessions })
}

async fn unknown_route() -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such route; see docs/API.md",
    )
}

async fn method_not_allowed() -> ApiError {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "this route does not take that method",
    )
}

/// A query string. Unlike `axum::extract::Query`, one that does not parse (a parameter given
/// twice, say) is answered in the one error shape: 400 `validation_failed` saying why.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => {
                let text = rejection.body_text();
                // serde's own words, without axum's preamble.
                let reason = text.split_once(": ").map_or(text.as_str(), |(_, r)| r);
                Err(error(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::ValidationFailed,
                    format!("the query string is not valid: {reason}"),
                ))
            }
        }
    }
}

/// A request body, whole. Unlike `axum::body::Bytes`, a body over `--max-body-bytes` is
/// answered in the one error shape: 413 `payload_too_large` (and one that cannot be read, 400).
pub struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                "the request body is too large",
            )),
            Err(rejection) => Err(error(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidBody,
                format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                ),
            )),
        }
    }
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
        // frame: tungstenite refuses a frame bigger than this outright (the session then closes
        // with 4000 and logs it). READY carries channels, not their members (about 43 KB for the
        // most channels, each full), but long topics can take it to about 1 MiB. A client that
        // stops reading holds at most one frame: the write deadline closes it.
        .max_write_buffer_size(state.config.max_write_buffer_bytes)
        .max_message_size(state.config.max_frame_bytes)
        .max_frame_size(state.config.max_frame_bytes)
        .on_upgrade(move |socket| sessions.track_future(crate::session::serve(socket, state)))
}

/// An HTTP error: a status, a stable machine code and a message for people.
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// What a failed question to auth means for the caller: 401 when auth refused their token
/// (signed out or revoked: sign in again), 503 when auth could not answer (try again).
pub(crate) fn directory_error(e: &crate::directory::DirectoryError, asking: &str) -> ApiError {
    if let crate::directory::DirectoryError::Refused = e {
        return error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "this session has been signed out; sign in again",
        );
    }
    tracing::warn!(error = %e, "cannot ask auth {asking}");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::ServiceUnavailable,
        format!("cannot check {asking} right now"),
    )
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
