//! Discord's upload flow: `POST /api/v1/channels/{id}/attachments` hands out a signed slot per
//! file, the client PUTs each file's bytes to its slot, and then names the uploads in its message.
//! A slot is a presigned PUT straight to the store on S3 (media never sees the bytes), and
//! media's own [`upload`] route on local disk; both take exactly the announced size, once signed.
//!
//! An upload is kept at `uploads/{channel}/{user}/{nonce}/{filename}` until a message takes it
//! (moving it out of `uploads/`) or the sweeper deletes it as never used. Its name says whose and
//! for which channel it is, so a message can take only its sender's uploads for its channel.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use futures::TryStreamExt;
use kit::error::ApiError;
use kit::extract::{ApiJson, ApiPath, BearerToken};
use object_store::path::Path;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proto::Snowflake;
use proto::api::attachments::{Filename, UploadRequest, UploadSlot, UploadSlots};
use proto::api::error::ErrorCode;
use serde::Deserialize;

use super::AppState;
use crate::storage::StorageError;
use kit::signing::{SignatureError, UrlSigner};

/// The folder uploads wait in until a message takes them.
pub const UPLOADS: &str = "uploads";

/// `POST /api/v1/channels/{id}/attachments` `{"files": [{"id", "filename", "file_size"}]}`:
/// a signed upload URL for each file.
pub async fn create_slots(
    State(state): State<AppState>,
    ApiPath(channel): ApiPath<Snowflake>,
    token: BearerToken,
    ApiJson(request): ApiJson<UploadRequest>,
) -> Result<Json<UploadSlots>, ApiError> {
    let user = state.access.may_attach(token.as_str(), channel).await?;
    let max = state.settings.max_file_size;
    // Over the limit is refused as too large (413), before any byte is sent.
    if let Some(i) = request.files.iter().position(|f| f.file_size > max) {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("a file may hold at most {max} bytes"),
        )
        .with_field(
            &format!("files.{i}.file_size"),
            format!("must be at most {max} bytes"),
        ));
    }
    let files = request.parse(max)?;
    let expires = UrlSigner::expiry(state.settings.upload_url_ttl);
    let attachments = files
        .into_iter()
        .map(|file| {
            let nonce = nonce();
            let upload_filename =
                format!("{channel}/{user}/{nonce}/{}", file.filename.as_str());
            let key = Path::from_iter([
                UPLOADS,
                &channel.to_string(),
                &user.to_string(),
                &nonce,
                file.filename.as_str(),
            ]);
            let upload_url = state
                .storage
                .presigned_put(&key, file.file_size, state.settings.upload_url_ttl)
                .unwrap_or_else(|| {
                    let size = file.file_size.to_string();
                    let signature = state
                        .signer
                        .sign(&["PUT", &upload_filename, &size], expires);
                    format!(
                        "{}/api/v1/uploads/{channel}/{user}/{nonce}/{}?size={size}&expires={expires}&signature={signature}",
                        state.settings.public_url,
                        utf8_percent_encode(file.filename.as_str(), NON_ALPHANUMERIC),
                    )
                });
            UploadSlot {
                id: file.id,
                upload_url,
                upload_filename,
            }
        })
        .collect();
    Ok(Json(UploadSlots { attachments }))
}

/// What an upload URL carries besides its path.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    size: u64,
    expires: u64,
    signature: String,
}

/// `PUT /api/v1/uploads/{channel}/{user}/{nonce}/{filename}?size&expires&signature`: the file's
/// bytes, streamed into the store. Exactly `size` bytes, once.
pub async fn upload(
    State(state): State<AppState>,
    UrlPath((channel, user, nonce, filename)): UrlPath<(String, String, String, String)>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let upload_filename = format!("{channel}/{user}/{nonce}/{filename}");
    let size = query.size.to_string();
    state
        .signer
        .verify(
            &["PUT", &upload_filename, &size],
            query.expires,
            &query.signature,
        )
        .map_err(|e| match e {
            SignatureError::Expired => {
                ApiError::forbidden("this upload link has expired: ask for a new one")
            }
            SignatureError::Forged => ApiError::forbidden("this upload link is not valid"),
        })?;
    // Signed, so these were checked when the slot was made; parsed again only to build the key.
    let filename = Filename::parse(&filename).map_err(|e| ApiError::field("filename", e.0))?;
    let key = Path::from_iter([UPLOADS, &channel, &user, &nonce, filename.as_str()]);

    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > query.size) {
        return Err(too_large(query.size));
    }
    match state.storage.stat(&key).await {
        Ok(_) => return Err(ApiError::conflict("this file has been uploaded already")),
        Err(StorageError::NotFound) => {}
        Err(e) => return Err(ApiError::internal(e)),
    }
    let stream = body.into_data_stream().map_err(|e| e.to_string());
    let stored = match state.storage.put_stream(&key, stream, query.size).await {
        Ok(stored) => stored,
        Err(StorageError::TooLarge { .. }) => return Err(too_large(query.size)),
        Err(StorageError::Aborted(why)) => {
            return Err(ApiError::invalid(format!(
                "the upload was cut short: {why}"
            )));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    if stored != query.size {
        state
            .storage
            .delete(&key)
            .await
            .map_err(ApiError::internal)?;
        return Err(ApiError::invalid(format!(
            "the upload has {stored} bytes where {} were announced",
            query.size
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("this upload may hold at most {limit} bytes"),
    )
}

/// 128 random bits, hex: no two uploads share a key, and none can be guessed.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the system's random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
