//! `GET /attachments/{channel}/{message}/{attachment}/{filename}?ex&hm`: a message's file, to
//! whoever holds a URL media signed for it (handed out with the message to those who see the
//! channel). After the message is deleted its files are gone, so its URLs answer 404.

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kit::error::ApiError;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proto::Snowflake;
use proto::api::attachments::Filename;
use serde::Deserialize;

use super::AppState;
use crate::files::{file_key, renders_inline};
use crate::processing::{Variant, variant_key};
use crate::storage::StorageError;
use kit::signing::SignatureError;

/// What a file URL carries besides its path: its expiry (Unix seconds, hex) and signature.
#[derive(Debug, Deserialize)]
pub struct FileQuery {
    ex: String,
    hm: String,
    /// `preview` or `thumbnail`: an image's smaller copy (the file itself until it is made).
    variant: Option<String>,
}

pub async fn file(
    State(state): State<AppState>,
    UrlPath((channel, message, id, filename)): UrlPath<(Snowflake, Snowflake, Snowflake, String)>,
    Query(query): Query<FileQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let expires = u64::from_str_radix(&query.ex, 16)
        .map_err(|_| ApiError::forbidden("this link is not valid"))?;
    let path = kit::signing::FileLinks::signed_path(channel, message, id, &filename);
    state
        .files
        .signer()
        .verify(&["GET", &path], expires, &query.hm)
        .map_err(|e| match e {
            SignatureError::Expired => ApiError::forbidden("this link has expired"),
            SignatureError::Forged => ApiError::forbidden("this link is not valid"),
        })?;
    let filename = Filename::parse(&filename).map_err(|_| ApiError::not_found("file"))?;
    let mut key = file_key(channel, message, id, &filename);
    let storage = state.files.storage();
    let mut size = match storage.stat(&key).await {
        Ok(stat) => stat.size,
        Err(StorageError::NotFound) => return Err(ApiError::not_found("file")),
        Err(e) => return Err(ApiError::internal(e)),
    };
    // The signature is the file's: whoever may see it may see its smaller copies.
    if let Some(variant) = query.variant.as_deref().and_then(Variant::parse) {
        let smaller = variant_key(channel, message, id, variant);
        if let Ok(stat) = storage.stat(&smaller).await {
            (key, size) = (smaller, stat.size);
        }
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(asked) => match byte_range(asked, size) {
            Some(range) => Some(range),
            None => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                )
                    .into_response());
            }
        },
    };
    let sniffed = state.files.inspect(&key, size).await.content_type;
    // What a browser might run (HTML, SVG, XML, script) is served as bytes, never as itself.
    let content_type = if renders_inline(&sniffed) || sniffed.starts_with("text/plain") {
        sniffed
    } else {
        "application/octet-stream".to_owned()
    };
    let download = match storage.get(&key, range.clone()).await {
        Ok(download) => download,
        Err(StorageError::NotFound) => return Err(ApiError::not_found("file")),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if renders_inline(&content_type) {
            "inline"
        } else {
            "attachment"
        },
        utf8_percent_encode(filename.as_str(), NON_ALPHANUMERIC)
    );
    let mut response = Response::new(Body::from_stream(download.body));
    let headers = response.headers_mut();
    let value = |s: &str| HeaderValue::from_str(s).map_err(ApiError::internal);
    headers.insert(header::CONTENT_TYPE, value(&content_type)?);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CONTENT_DISPOSITION, value(&disposition)?);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Private: a shared cache would go on serving the file after its message is deleted.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    let served = download.range.end - download.range.start;
    headers.insert(header::CONTENT_LENGTH, value(&served.to_string())?);
    if range.is_some() {
        let shown = format!(
            "bytes {}-{}/{size}",
            download.range.start,
            download.range.end.saturating_sub(1)
        );
        headers.insert(header::CONTENT_RANGE, value(&shown)?);
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(response)
}

/// The one range of `bytes=a-b`, `bytes=a-` or `bytes=-n` within a file of `size` bytes, as a
/// half-open range; `None` when it is unsatisfiable or not one range.
fn byte_range(asked: &str, size: u64) -> Option<std::ops::Range<u64>> {
    let spec = asked.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (size.saturating_sub(n), size - 1)
        }
        (start, "") => (start.parse().ok()?, size - 1),
        (start, end) => (start.parse().ok()?, end.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some(start..end + 1)
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn ranges_are_read_as_browsers_send_them() {
        assert_eq!(byte_range("bytes=0-9", 100), Some(0..10));
        assert_eq!(byte_range("bytes=90-", 100), Some(90..100));
        assert_eq!(byte_range("bytes=-5", 100), Some(95..100));
        assert_eq!(byte_range("bytes=50-500", 100), Some(50..100));
    }

    #[test]
    fn unsatisfiable_or_several_ranges_are_refused() {
        assert_eq!(byte_range("bytes=100-", 100), None);
        assert_eq!(byte_range("bytes=5-2", 100), None);
        assert_eq!(byte_range("bytes=0-1,5-6", 100), None);
        assert_eq!(byte_range("items=0-1", 100), None);
    }
}
