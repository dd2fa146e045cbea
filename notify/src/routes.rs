//! notify's REST routes: the mentions inbox (Discord's recent mentions,
//! `GET /api/v1/users/@me/mentions`, `DELETE /api/v1/users/@me/mentions/{message_id}`) and the
//! VAPID public key browsers subscribe with (`GET /api/v1/push/vapid`).
//!
//! The inbox shows only channels the caller can read now (auth says, `{p}.auth.readable`), and
//! each entry's `read` is the caller's read marker in its channel (`read_states`, written by
//! whichever edge the caller read on), so reading anywhere marks it read everywhere.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::routing::{delete, get};
use axum::{Json, Router};
use kit::error::{ApiError, ApiResult};
use kit::extract::{ApiQuery, BearerToken};
use kit::tokens::Verifier;
use proto::Snowflake;
use proto::access::{Readable, ReadableQuery, Reply};
use proto::api::notifications::{MentionEntry, MentionsQuery, NotifyReason, VapidKey};
use proto::subjects::Subjects;
use store::{InboxStore, MessageStore};
use tower_http::cors::CorsLayer;

/// What the handlers reach.
#[derive(Clone)]
pub struct AppState {
    pub verifier: Verifier,
    pub inbox: InboxStore,
    pub messages: MessageStore,
    pub nats: async_nats::Client,
    pub subjects: Subjects,
    pub vapid_public: Arc<str>,
}

/// The signed-in caller (a valid access token).
pub struct Caller(pub Snowflake);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let BearerToken(token) = BearerToken::from_request_parts(parts, state).await?;
        let claims = state
            .verifier
            .verify_fetching(&token)
            .await
            .map_err(|_| ApiError::unauthorized("the access token is not valid"))?;
        Ok(Self(claims.sub))
    }
}

pub fn router(state: AppState, allowed_origins: &[String]) -> Router {
    let origins: Vec<HeaderValue> = allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600));
    Router::new()
        .route("/api/v1/users/@me/mentions", get(mentions))
        .route("/api/v1/users/@me/mentions/{message_id}", delete(remove))
        .route("/api/v1/push/vapid", get(vapid))
        .layer(cors)
        .with_state(state)
}

/// The most entries read from the store to fill one page (filters may skip many).
const SCAN: usize = 500;

/// My recent mentions and DMs, newest first, from channels I can still read.
async fn mentions(
    State(state): State<AppState>,
    Caller(user): Caller,
    ApiQuery(query): ApiQuery<MentionsQuery>,
) -> ApiResult<Json<Vec<MentionEntry>>> {
    let limit = query.limit.unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 100"));
    }
    let everyone = query.everyone.unwrap_or(true);
    let roles = query.roles.unwrap_or(true);
    let entries = state
        .inbox
        .page(user, query.before, limit as usize, SCAN, |e| {
            query.guild_id.is_none_or(|g| e.guild_id == Some(g))
                && (everyone || e.reason != NotifyReason::Everyone)
                && (roles || e.reason != NotifyReason::RoleMention)
        })
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let mut channels: Vec<Snowflake> = entries.iter().map(|e| e.channel_id).collect();
    channels.sort_unstable();
    channels.dedup();
    let readable = readable(&state, user, channels).await?;
    let read = state
        .messages
        .read_states(user)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let shown = entries
        .into_iter()
        .filter_map(|e| {
            let guild = readable.get(&e.channel_id)?;
            Some(MentionEntry {
                id: e.message_id,
                channel_id: e.channel_id,
                guild_id: *guild,
                author_id: e.author_id,
                read: read.get(&e.channel_id).is_some_and(|r| *r >= e.message_id),
                content: e.content,
                reason: e.reason,
            })
        })
        .collect();
    Ok(Json(shown))
}

/// The channels among `channels` the user can read now, with their servers.
async fn readable(
    state: &AppState,
    user: Snowflake,
    channels: Vec<Snowflake>,
) -> ApiResult<HashMap<Snowflake, Option<Snowflake>>> {
    if channels.is_empty() {
        return Ok(HashMap::new());
    }
    let query = ReadableQuery {
        user_id: user,
        channel_ids: channels,
    };
    let body = serde_json::to_vec(&query).expect("queries serialise");
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        state
            .nats
            .request(state.subjects.auth_readable(), body.into()),
    )
    .await
    .map_err(|_| ApiError::unavailable("auth did not answer in time"))?
    .map_err(|e| ApiError::unavailable(format!("cannot ask auth: {e}")))?;
    match serde_json::from_slice::<Reply<Readable>>(&reply.payload) {
        Ok(Reply::Ok(found)) => Ok(found
            .channels
            .into_iter()
            .map(|c| (c.channel_id, c.guild_id))
            .collect()),
        // The user is gone: nothing of theirs is readable.
        Ok(Reply::NotFound | Reply::SignedOut) => Ok(HashMap::new()),
        // Not "nothing is readable": an empty list would tell the user their inbox is empty.
        Ok(Reply::Failed(e)) => Err(ApiError::unavailable(format!("auth: {e}"))),
        Err(e) => Err(ApiError::internal(format!("auth's answer: {e}"))),
    }
}

/// Remove one entry from my inbox.
async fn remove(
    State(state): State<AppState>,
    Caller(user): Caller,
    Path(message_id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = message_id
        .parse::<u64>()
        .map(Snowflake::from_u64)
        .map_err(|_| ApiError::not_found("message"))?;
    state
        .inbox
        .remove(user, id)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The VAPID public key (the browser's `applicationServerKey`).
async fn vapid(State(state): State<AppState>) -> Json<VapidKey> {
    Json(VapidKey {
        public_key: state.vapid_public.to_string(),
    })
}
