//! The edge's HTTP surface: the WebSocket upgrade at `/gateway`, the message resources
//! ([`messages`]: history, and send, edit, delete and mark-read for scripts, bots and browsers,
//! on the same paths as a socket's), message search ([`search`]), and `GET /api/v1/presences`
//! ([`presences`]). Errors are `kit::error::ApiError`, as in every service.

mod messages;
mod multipart;
mod pins;
mod presences;
mod reactions;
mod search;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use kit::error::ApiError;
use kit::extract::BearerToken;
use kit::tokens::AccessClaims;
use proto::api::error::ErrorCode;
use tokio_util::task::TaskTracker;
use tower_http::cors::CorsLayer;

use crate::state::EdgeState;
use crate::wire::{Limits, Upgrade};

#[derive(Clone)]
pub(crate) struct Routes {
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
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
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
            "/api/v1/channels/{id}/messages/{message_id}/reactions",
            delete(reactions::clear),
        )
        .route(
            "/api/v1/channels/{id}/messages/{message_id}/reactions/{emoji}",
            get(reactions::reactors),
        )
        .route(
            "/api/v1/channels/{id}/messages/{message_id}/reactions/{emoji}/{user}",
            axum::routing::put(reactions::add).delete(reactions::remove),
        )
        .route(
            "/api/v1/channels/{id}/messages/search",
            get(search::in_channel),
        )
        .route("/api/v1/guilds/{id}/messages/search", get(search::in_guild))
        .route("/api/v1/channels/{id}/pins", get(pins::list))
        .route(
            "/api/v1/channels/{id}/pins/{message_id}",
            axum::routing::put(pins::pin).delete(pins::unpin),
        )
        .route("/api/v1/presences", get(presences::presences))
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
    ApiError::new(ErrorCode::NotFound, "no such route; see docs/API.md")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take that method",
    )
}

/// The caller of a REST request: an access token that verifies against auth's keys. Whether its
/// session is still signed in is auth's to say, asked where it matters.
pub(crate) struct Verified {
    pub(crate) claims: AccessClaims,
    pub(crate) token: String,
}

impl FromRequestParts<Routes> for Verified {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, routes: &Routes) -> Result<Self, ApiError> {
        let BearerToken(token) = BearerToken::from_request_parts(parts, routes).await?;
        match routes.state.verifier.verify_fetching(&token).await {
            Ok(claims) => Ok(Self { claims, token }),
            Err(e) => {
                tracing::debug!(error = %e, "access token refused");
                Err(ApiError::unauthorized("the access token was not accepted"))
            }
        }
    }
}

async fn upgrade(State(routes): State<Routes>, headers: HeaderMap, ws: Upgrade) -> Response {
    let config = &routes.state.config;
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| config.allowed_origins.iter().any(|a| a == o));
        if !allowed {
            return ApiError::forbidden("this origin may not open a gateway socket")
                .into_response();
        }
    }
    if routes.state.draining.is_cancelled() {
        return ApiError::unavailable("this edge is draining; ask /api/v1/gateway for another")
            .into_response();
    }
    let Routes { state, sessions } = routes;
    // What the session reads (`crate::wire`). It writes a step's worth per system call, and
    // refuses a frame over `max_write_buffer_bytes`.
    let limits = Limits {
        max_message_bytes: state.config.max_frame_bytes,
        read_bytes: state.config.read_buffer_bytes,
    };
    // The session's queue, which its socket wakes too (`crate::queue`).
    let deliveries = crate::queue::session(state.config.session_queue);
    ws.accept(limits, deliveries.readiness(), &sessions, move |socket| {
        crate::session::serve(socket, deliveries, state)
    })
}

/// What a failed question to auth means for the caller: 401 when auth refused their token
/// (signed out or revoked: sign in again), 503 when auth could not answer (try again).
pub(crate) fn directory_error(e: &crate::directory::DirectoryError, asking: &str) -> ApiError {
    if let crate::directory::DirectoryError::Refused = e {
        return ApiError::unauthorized("this session has been signed out; sign in again");
    }
    tracing::warn!(error = %e, "cannot ask auth {asking}");
    ApiError::unavailable(format!("cannot check {asking} right now"))
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("unknown {what}"))
}
