//! `POST /api/v1/voice/livekit`: the media server's webhooks. LiveKit signs each with the API
//! secret (its token names the body's SHA-256); a participant who left a room takes their voice
//! state with them, so a person whose tab was killed disappears from everyone's list even when
//! their gateway connection lingers. And `POST /api/v1/channels/{id}/call/stop-ringing`:
//! declining a call in a DM or group channel (`crate::calls`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use kit::error::{ApiError, ApiResult};
use kit::extract::{ApiJson, ApiPath};
use proto::Snowflake;
use proto::api::channels::ChannelKind;
use proto::api::error::ErrorBody;
use proto::api::voice::StopRingingRequest;

use crate::extract::Caller;
use crate::state::AppState;

/// Stop a DM's or group channel's call ringing: the caller (declining it) when `recipients` is
/// left out, or the people it names (which takes being in the call). When nobody is rung any
/// more and nobody answered, the call ends and leaves "Missed call" in the channel. 204 also
/// when there is no call or it was not ringing them; 404 for a channel one is not a member of.
#[utoipa::path(post, path = "/api/v1/channels/{id}/call/stop-ringing", tag = "voice",
    security(("bearer" = [])), params(("id" = String, Path, description = "A DM or group channel id")),
    request_body = StopRingingRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn stop_ringing(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Snowflake>,
    ApiJson(request): ApiJson<StopRingingRequest>,
) -> ApiResult<StatusCode> {
    let recipients = request.recipients.unwrap_or_default();
    if recipients.len() > crate::calls::MAX_RECIPIENTS {
        return Err(ApiError::field(
            "recipients",
            format!("at most {} people", crate::calls::MAX_RECIPIENTS),
        ));
    }
    match crate::channels::membership(&state.db, id, caller.user_id).await? {
        Some((ChannelKind::Dm | ChannelKind::Group, _)) => {}
        _ => return Err(ApiError::not_found("channel")),
    }
    crate::calls::stop_ringing(&state, id, caller.user_id, &recipients).await?;
    Ok(StatusCode::NO_CONTENT)
}

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
