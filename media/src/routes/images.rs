//! Avatars and server icons: `PUT /api/v1/users/@me/avatar` and `PUT /api/v1/guilds/{id}/icon`
//! take an image's bytes, crop it to a square around its centre and resize it (256 px), store
//! it under a name made from its own hash (`avatars/{user}/{hash}.png`, `icons/{guild}/…`), and
//! set it on the profile or server through auth with the caller's token (auth decides who may;
//! a refused change leaves nothing stored). They are served to anyone (`GET /avatars/…`,
//! `/icons/…`), as Discord's CDN serves them, and never change: cached for good.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::TryStreamExt;
use kit::error::ApiError;
use kit::extract::{ApiPath, BearerToken};
use object_store::path::Path;
use proto::Snowflake;
use proto::api::error::ErrorCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::AppState;
use crate::processing::{ProcessError, square};
use crate::storage::StorageError;

/// The largest image accepted for an avatar or an icon, in bytes.
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;

/// `PUT /api/v1/users/@me/avatar` (the image as the body): the caller's new avatar.
pub async fn avatar(
    State(state): State<AppState>,
    token: BearerToken,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = state.access.caller(token.as_str()).await?;
    let (key, url) = store(&state, "avatars", user, body).await?;
    let answer = state
        .access
        .patch(
            token.as_str(),
            "/api/v1/users/@me",
            json!({ "avatar_url": url }),
        )
        .await;
    settled(&state, &key, answer).await
}

/// `PUT /api/v1/guilds/{id}/icon` (the image as the body): the server's new icon (auth checks
/// MANAGE_GUILD).
pub async fn icon(
    State(state): State<AppState>,
    ApiPath(guild): ApiPath<Snowflake>,
    token: BearerToken,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.access.caller(token.as_str()).await?;
    let (key, url) = store(&state, "icons", guild, body).await?;
    let path = format!("/api/v1/guilds/{guild}");
    let answer = state
        .access
        .patch(token.as_str(), &path, json!({ "icon": url }))
        .await;
    settled(&state, &key, answer).await
}

/// Auth's answer, passed on; when it refused, the image just stored is deleted.
async fn settled(
    state: &AppState,
    key: &Path,
    answer: Result<(StatusCode, Value), ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    match answer {
        Ok((status, body)) if status.is_success() => Ok((status, Json(body))),
        other => {
            let _ = state.storage.delete(key).await;
            match other {
                Ok((status, body)) => Ok((status, Json(body))),
                Err(e) => Err(e),
            }
        }
    }
}

/// Reads, squares and stores an uploaded image; answers its key and public URL.
async fn store(
    state: &AppState,
    folder: &str,
    owner: Snowflake,
    body: Body,
) -> Result<(Path, String), ApiError> {
    let mut bytes = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|_| ApiError::invalid("the upload was cut short"))?
    {
        if bytes.len() + chunk.len() > MAX_IMAGE_BYTES {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("an image may hold at most {MAX_IMAGE_BYTES} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return Err(ApiError::invalid("send the image as the request's body"));
    }
    let png = tokio::task::spawn_blocking(move || square(&bytes))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e: ProcessError| ApiError::invalid(format!("not an image media can use: {e}")))?;
    let hash: String = Sha256::digest(&png)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let name = format!("{hash}.png");
    let key = Path::from_iter([folder, &owner.to_string(), &name]);
    state
        .storage
        .put(&key, Bytes::from(png))
        .await
        .map_err(ApiError::internal)?;
    let url = format!("{}/{folder}/{owner}/{name}", state.settings.public_url);
    Ok((key, url))
}

/// `GET /avatars/{user}/{file}` and `GET /icons/{guild}/{file}`: public, and never changing.
pub async fn serve_avatar(
    State(state): State<AppState>,
    UrlPath((owner, name)): UrlPath<(Snowflake, String)>,
) -> Result<Response, ApiError> {
    serve(&state, "avatars", owner, &name).await
}

pub async fn serve_icon(
    State(state): State<AppState>,
    UrlPath((owner, name)): UrlPath<(Snowflake, String)>,
) -> Result<Response, ApiError> {
    serve(&state, "icons", owner, &name).await
}

async fn serve(
    state: &AppState,
    folder: &str,
    owner: Snowflake,
    name: &str,
) -> Result<Response, ApiError> {
    let valid = name.len() == 20
        && name.ends_with(".png")
        && name[..16].bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(ApiError::not_found("image"));
    }
    let key = Path::from_iter([folder, &owner.to_string(), name]);
    let download = match state.storage.get(&key, None).await {
        Ok(download) => download,
        Err(StorageError::NotFound) => return Err(ApiError::not_found("image")),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let length = download.range.end - download.range.start;
    let mut response = Response::new(Body::from_stream(download.body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    Ok(response)
}
