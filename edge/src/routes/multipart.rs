//! Discord's multipart send: `POST /api/v1/channels/{id}/messages` with a `multipart/form-data`
//! body of a `payload_json` part (the JSON a plain send takes) and up to 10 `files[n]` parts, for
//! scripts and bots that send small files in one request.
//!
//! Each file is streamed to a temporary file on disk as it arrives (never whole in memory, and cut
//! off past `--media-max-file-size`), then, once every part is read, the edge asks media for upload
//! slots with the caller's token and streams each file to its slot. The message then names the
//! uploads and takes the same path as any other send.

use axum::body::Body;
use kit::error::{ApiError, ApiResult};
use proto::api::attachments::{AttachmentRef, Filename, MAX_FILES};
use proto::api::error::ErrorCode;
use proto::api::messages::PostMessageRequest;
use tokio::io::AsyncWriteExt;

use crate::attachments::Staged;

/// What a multipart send carried: its JSON part, and its files, on disk.
pub(super) struct Parts {
    pub(super) post: PostMessageRequest,
    pub(super) files: Vec<Staged>,
}

/// The boundary of a `multipart/form-data` content type; `None` for any other type.
pub(super) fn boundary(content_type: Option<&str>) -> Option<Result<String, ApiError>> {
    let content_type = content_type?;
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return None;
    }
    Some(multer::parse_boundary(content_type).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidBody,
            "a multipart body needs its boundary in the Content-Type",
        )
    }))
}

/// Reads every part of a multipart send. `max_json` bounds `payload_json`, `max_file` each file;
/// `may_attach` is asked once, at the first file.
pub(super) async fn read<F, Fut>(
    body: Body,
    boundary: String,
    max_json: usize,
    max_file: u64,
    may_attach: F,
) -> ApiResult<Parts>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult<()>>,
{
    let mut multipart = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut post: Option<PostMessageRequest> = None;
    let mut files: Vec<Staged> = Vec::new();
    let mut may_attach = Some(may_attach);
    while let Some(mut field) = multipart.next_field().await.map_err(|e| malformed(&e))? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "payload_json" {
            let mut json = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| malformed(&e))? {
                if json.len() + chunk.len() > max_json {
                    return Err(ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        format!("payload_json is larger than {max_json} bytes"),
                    ));
                }
                json.extend_from_slice(&chunk);
            }
            post = Some(serde_json::from_slice(&json).map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidBody,
                    format!("payload_json is not a message: {e}"),
                )
            })?);
            continue;
        }
        let Some(index) = file_index(&name) else {
            return Err(ApiError::field(
                &name,
                "a multipart send takes `payload_json` and `files[n]` parts only",
            ));
        };
        if let Some(check) = may_attach.take() {
            check().await?;
        }
        if files.len() == MAX_FILES {
            return Err(ApiError::field(
                "files",
                format!("a message carries at most {MAX_FILES} files"),
            ));
        }
        let field_name = format!("files[{index}]");
        let filename = Filename::parse(field.file_name().unwrap_or_default())
            .map_err(|e| ApiError::field(&field_name, format!("filename: {}", e.0)))?;
        let file = tempfile::tempfile().map_err(ApiError::internal)?;
        let mut file = tokio::fs::File::from_std(file);
        let mut size: u64 = 0;
        while let Some(chunk) = field.chunk().await.map_err(|e| malformed(&e))? {
            size += chunk.len() as u64;
            if size > max_file {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("{field_name} is larger than {max_file} bytes"),
                )
                .with_field(&field_name, format!("must be at most {max_file} bytes")));
            }
            file.write_all(&chunk).await.map_err(ApiError::internal)?;
        }
        if size == 0 {
            return Err(ApiError::field(&field_name, "an empty file cannot be sent"));
        }
        file.flush().await.map_err(ApiError::internal)?;
        files.push(Staged {
            filename,
            size,
            file,
        });
    }
    let post = post.unwrap_or(PostMessageRequest {
        content: String::new(),
        nonce: None,
        message_reference: None,
        attachments: Vec::new(),
        flags: 0,
    });
    if post.attachments.len() + files.len() > MAX_FILES {
        return Err(ApiError::field(
            "files",
            format!("a message carries at most {MAX_FILES} files"),
        ));
    }
    Ok(Parts { post, files })
}

/// `n` of a `files[n]` part's name.
fn file_index(name: &str) -> Option<usize> {
    name.strip_prefix("files[")?.strip_suffix(']')?.parse().ok()
}

fn malformed(e: &multer::Error) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidBody,
        format!("the multipart body cannot be read: {e}"),
    )
}

/// The uploads a message names, after its files were uploaded (their ids follow the ones the
/// JSON part named).
pub(super) fn named(
    post: &PostMessageRequest,
    uploads: Vec<(Filename, String)>,
) -> Vec<AttachmentRef> {
    let first = post.attachments.len();
    let mut all = post.attachments.clone();
    all.extend(
        uploads
            .into_iter()
            .enumerate()
            .map(|(i, (filename, uploaded))| AttachmentRef {
                id: (first + i).to_string(),
                filename: filename.as_str().to_owned(),
                uploaded_filename: uploaded,
            }),
    );
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_parts_are_named_files_and_an_index() {
        assert_eq!(file_index("files[0]"), Some(0));
        assert_eq!(file_index("files[9]"), Some(9));
        assert_eq!(file_index("files"), None);
        assert_eq!(file_index("file[0]"), None);
        assert_eq!(file_index("files[x]"), None);
    }

    #[test]
    fn only_multipart_form_data_has_a_boundary_to_read() {
        assert!(boundary(Some("application/json")).is_none());
        assert!(boundary(None).is_none());
        assert_eq!(
            boundary(Some("multipart/form-data; boundary=abc"))
                .unwrap()
                .unwrap(),
            "abc"
        );
        assert!(boundary(Some("multipart/form-data")).unwrap().is_err());
    }
}
