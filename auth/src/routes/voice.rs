//! `POST /api/v1/voice/livekit`: the media server's webhooks. LiveKit signs each with the API
//! secret (its token names the body's SHA-256); a participant who left a room takes their voice
//! state with them, so a person whose tab was killed disappears from everyone's list even when
//! their gateway connection lingers.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use kit::error::{ApiError, ApiResult};
use proto::api::error::ErrorBody;

use crate::state::AppState;

/// LiveKit's webhook (its `webhook.urls` names this route). Answers 204, or 401 when the token
/// does not check out.
#[utoipa::path(post, path = "/api/v1/voice/livekit", operation_id = "livekit_webhook", tag = "voice",
    request_body(content = String, content_type = "application/webhook+json",
                 description = "LiveKit's WebhookEvent, signed by the Authorization token"),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn livekit_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let Some(livekit) = &state.livekit else {
        return Err(ApiError::unavailable("voice is not set up on this server"));
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let event = livekit
        .webhook(authorization, &body)
        .map_err(|e| ApiError::unauthorized(e.to_string()))?;
    if event.event == "participant_left"
        && let (Some(room), Some(participant)) = (&event.room, &event.participant)
    {
        crate::voice::participant_left(
            &state,
            &room.name,
            &participant.identity,
            &participant.metadata,
        )
        .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
