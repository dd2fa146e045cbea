//! A message's files: taking its uploads (a [`Claim`]), what they are (sniffed from their first
//! bytes), their signed URLs, and deleting them with the message.
//!
//! A taken file lives at `files/{channel}/{message}/{attachment}/{filename}`: everything of one
//! message under one folder, so deleting the message deletes its files in one sweep of a prefix,
//! and an upload, once moved out of `uploads/`, cannot be taken by a second message.
//!
//! A JPEG, PNG or WebP loses its metadata (EXIF with its GPS position, XMP, comments) as it is
//! taken, before the message is published: its link is handed out with the message, and must
//! never serve the photo's location, not even in the seconds before processing finishes.

use kit::signing::{FileLinks, UrlSigner};
use object_store::path::Path;
use proto::api::attachments::{
    Attachment, Claim, ClaimReply, Filename, Forget, MAX_FILES, has_preview,
};
use proto::api::error::ErrorCode;
use proto::{Snowflake, SnowflakeGenerator};

use crate::routes::uploads::UPLOADS;
use crate::storage::{Storage, StorageError};

/// The folder taken files live in.
pub const FILES: &str = "files";

/// How many bytes sniffing reads: every signature `infer` knows sits well inside, and so does a
/// JPEG's frame header after its metadata in all but unusual files.
const SNIFF_BYTES: u64 = 64 * 1024;

/// What a file's first bytes say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub content_type: String,
    /// An image's width and height in pixels, read from its header; `None` for anything else,
    /// or an image whose header is malformed or beyond the bytes read.
    pub dimensions: Option<(u32, u32)>,
}

/// How many images one media instance strips at once as they are taken: each is read whole
/// (up to `--max-file-size`), so this bounds the memory claims take.
const STRIPPING_AT_ONCE: usize = 4;

/// Takes uploads into messages and signs their URLs.
#[derive(Clone)]
pub struct Files {
    storage: Storage,
    links: FileLinks,
    ids: std::sync::Arc<SnowflakeGenerator>,
    stripping: std::sync::Arc<tokio::sync::Semaphore>,
    /// The largest file a message may take (`--max-file-size`).
    max_file_size: u64,
}

impl Files {
    pub fn new(
        storage: Storage,
        links: FileLinks,
        ids: SnowflakeGenerator,
        max_file_size: u64,
    ) -> Self {
        Self {
            storage,
            links,
            ids: std::sync::Arc::new(ids),
            max_file_size,
            stripping: std::sync::Arc::new(tokio::sync::Semaphore::new(STRIPPING_AT_ONCE)),
        }
    }

    /// Takes every upload `claim` names, or none: each must be the author's, for this channel,
    /// complete, and not taken by another message. A claim with a nonce is recorded, so a
    /// retried send (same author, channel, nonce and uploads) gets the same files again with the
    /// id of the message they went into, as long as they are still there.
    pub async fn claim(&self, claim: &Claim) -> ClaimReply {
        let record = claim
            .nonce
            .as_deref()
            .map(|nonce| claim_key(claim.channel_id, claim.author_id, nonce));
        if let Some(key) = &record
            && let Some(earlier) = self.earlier_claim(key, claim).await
        {
            return earlier;
        }
        match self.try_claim(claim).await {
            Ok(attachments) => {
                if let Some(key) = &record {
                    let kept = ClaimRecord {
                        message_id: claim.message_id,
                        named: claim.attachments.clone(),
                        attachments: attachments.clone(),
                    };
                    let body = serde_json::to_vec(&kept).expect("records serialise");
                    if let Err(e) = self.storage.put(key, body.into()).await {
                        // Only a retry of this send would need it; the send itself goes on.
                        tracing::warn!(error = %e, "cannot record a claim for its retries");
                    }
                }
                ClaimReply::Taken {
                    attachments,
                    message_id: None,
                }
            }
            Err(refused) => refused,
        }
    }

    /// The answer an earlier claim of the same send got, if it named the same uploads and its
    /// files are still there (a failed publish has them deleted).
    async fn earlier_claim(&self, key: &Path, claim: &Claim) -> Option<ClaimReply> {
        let download = self.storage.get(key, None).await.ok()?;
        let chunks: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(download.body)
            .await
            .ok()?;
        let kept: ClaimRecord = serde_json::from_slice(&chunks.concat()).ok()?;
        if kept.named != claim.attachments {
            return None;
        }
        for file in &kept.attachments {
            let name = Filename::parse(&file.filename).ok()?;
            let at = file_key(claim.channel_id, kept.message_id, file.id, &name);
            self.storage.stat(&at).await.ok()?;
        }
        let attachments = kept
            .attachments
            .into_iter()
            .map(|file| {
                let name = Filename::parse(&file.filename).expect("checked above");
                let url = self.url(claim.channel_id, kept.message_id, file.id, &name);
                Attachment {
                    proxy_url: url.clone(),
                    url,
                    ..file
                }
            })
            .collect();
        Some(ClaimReply::Taken {
            attachments,
            message_id: Some(kept.message_id),
        })
    }

    async fn try_claim(&self, claim: &Claim) -> Result<Vec<Attachment>, ClaimReply> {
        if claim.attachments.len() > MAX_FILES {
            return Err(refused(
                ErrorCode::ValidationFailed,
                "attachments",
                format!("a message carries at most {MAX_FILES} files"),
            ));
        }
        let mut moves = Vec::with_capacity(claim.attachments.len());
        for (i, named) in claim.attachments.iter().enumerate() {
            let field = format!("attachments.{i}");
            let filename = Filename::parse(&named.filename)
                .map_err(|e| refused(ErrorCode::ValidationFailed, &field, e.0))?;
            let parts: Vec<&str> = named.uploaded_filename.split('/').collect();
            let [channel, author, nonce, uploaded] = parts[..] else {
                return Err(refused(
                    ErrorCode::ValidationFailed,
                    &field,
                    "not an upload's name".to_owned(),
                ));
            };
            if channel != claim.channel_id.to_string() || author != claim.author_id.to_string() {
                return Err(refused(
                    ErrorCode::Forbidden,
                    &field,
                    "this upload is not yours, or not for this channel".to_owned(),
                ));
            }
            let from = Path::from_iter([UPLOADS, channel, author, nonce, uploaded]);
            let size = match self.storage.stat(&from).await {
                Ok(stat) => stat.size,
                Err(StorageError::NotFound) => {
                    return Err(refused(
                        ErrorCode::ValidationFailed,
                        &field,
                        "this file was not uploaded (or another message has it already)".to_owned(),
                    ));
                }
                Err(e) => return Err(refused(ErrorCode::Internal, &field, e.to_string())),
            };
            if size > self.max_file_size {
                // The store took more than the slot allowed (one that does not check a presigned
                // upload's signed size): it is never taken, and goes now rather than at its sweep.
                if let Err(e) = self.storage.delete(&from).await {
                    tracing::warn!(error = %e, "cannot delete an upload over the limit");
                }
                return Err(refused(
                    ErrorCode::PayloadTooLarge,
                    &field,
                    format!("a file may hold at most {} bytes", self.max_file_size),
                ));
            }
            let id = self.ids.next_id();
            let to = file_key(claim.channel_id, claim.message_id, id, &filename);
            moves.push((from, to, id, filename, size));
        }
        let mut attachments = Vec::with_capacity(moves.len());
        for (done, (from, to, id, filename, size)) in moves.iter().enumerate() {
            if let Err(e) = self.storage.rename(from, to).await {
                // Another message took it meanwhile, or the store failed: give back what this
                // message took, so nothing is half-claimed.
                for (from, to, ..) in &moves[..done] {
                    let _ = self.storage.rename(to, from).await;
                }
                let code = match e {
                    StorageError::NotFound => ErrorCode::Conflict,
                    _ => ErrorCode::Internal,
                };
                return Err(refused(
                    code,
                    &format!("attachments.{done}"),
                    format!("cannot take this upload: {e}"),
                ));
            }
            let mut inspection = self.inspect(to, *size).await;
            let mut size = *size;
            if has_preview(Some(inspection.content_type.as_str()))
                && let Some(stripped) = self.strip(to).await
            {
                size = stripped;
                inspection = self.inspect(to, size).await;
            }
            let url = self.url(claim.channel_id, claim.message_id, *id, filename);
            attachments.push(Attachment {
                id: *id,
                filename: filename.as_str().to_owned(),
                size,
                content_type: Some(inspection.content_type),
                proxy_url: url.clone(),
                url,
                width: inspection.dimensions.map(|(w, _)| w),
                height: inspection.dimensions.map(|(_, h)| h),
                // Read by processing, which reads more of the file than its first bytes.
                duration_secs: None,
            });
        }
        Ok(attachments)
    }

    /// Rewrites a taken image without its metadata (but for its orientation); its new size
    /// when it had any to remove. An image that cannot be read is left as it is (processing
    /// will not show it inline either).
    async fn strip(&self, key: &Path) -> Option<u64> {
        let _permit = self.stripping.acquire().await.ok()?;
        let download = self.storage.get(key, None).await.ok()?;
        let chunks: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(download.body)
            .await
            .ok()?;
        let bytes = bytes::Bytes::from(chunks.concat());
        let stripped = tokio::task::spawn_blocking(move || {
            let orientation = crate::processing::orientation_of(&bytes);
            crate::processing::strip_metadata(&bytes, orientation)
        })
        .await
        .ok()?
        .ok()??;
        let size = stripped.len() as u64;
        match self.storage.put(key, stripped).await {
            Ok(()) => Some(size),
            Err(e) => {
                tracing::warn!(error = %e, "cannot rewrite an image without its metadata");
                None
            }
        }
    }

    /// Deletes every file of a deleted message, or of a deleted channel.
    pub async fn forget(&self, forget: &Forget) -> Result<usize, StorageError> {
        let channel = forget.channel_id.to_string();
        let prefix = match forget.message_id {
            Some(message) => Path::from_iter([FILES, &channel, &message.to_string()]),
            None => {
                self.storage
                    .delete_under(&Path::from_iter([CLAIMS, &channel]), None)
                    .await?;
                Path::from_iter([FILES, &channel])
            }
        };
        self.storage.delete_under(&prefix, None).await
    }

    /// The file's type (and an image's size) from its first bytes.
    pub async fn inspect(&self, key: &Path, size: u64) -> Inspection {
        let head = match self.storage.get(key, Some(0..size.min(SNIFF_BYTES))).await {
            Ok(download) => {
                use futures::TryStreamExt;
                download
                    .body
                    .try_fold(Vec::new(), |mut all, chunk| async move {
                        all.extend_from_slice(&chunk);
                        Ok(all)
                    })
                    .await
                    .unwrap_or_default()
            }
            Err(_) => Vec::new(),
        };
        inspect(&head)
    }

    /// A signed URL of a taken file, valid for the configured time.
    pub fn url(
        &self,
        channel: Snowflake,
        message: Snowflake,
        id: Snowflake,
        filename: &Filename,
    ) -> String {
        self.links
            .attachment(channel, message, id, filename.as_str())
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// A new id for something kept under a message's files (a link preview's image).
    pub fn next_id(&self) -> Snowflake {
        self.ids.next_id()
    }

    pub fn signer(&self) -> &UrlSigner {
        self.links.signer()
    }
}

/// The folder claims are recorded in, for retried sends; swept with uploads.
pub const CLAIMS: &str = "claims";

/// What a claim with a nonce took, kept at [`claim_key`] until the sweeper removes it
/// (`--upload-ttl`).
#[derive(serde::Serialize, serde::Deserialize)]
struct ClaimRecord {
    message_id: Snowflake,
    named: Vec<proto::api::attachments::AttachmentRef>,
    attachments: Vec<Attachment>,
}

/// Where a send's claim is recorded: by its channel, author and (hashed: it is the client's
/// text) nonce.
fn claim_key(channel: Snowflake, author: Snowflake, nonce: &str) -> Path {
    use sha2::Digest;
    let hash: String = sha2::Sha256::digest(nonce.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Path::from_iter([CLAIMS, &channel.to_string(), &author.to_string(), &hash])
}

/// Where a taken file lives.
pub fn file_key(
    channel: Snowflake,
    message: Snowflake,
    id: Snowflake,
    filename: &Filename,
) -> Path {
    Path::from_iter([
        FILES,
        &channel.to_string(),
        &message.to_string(),
        &id.to_string(),
        filename.as_str(),
    ])
}

/// What the first bytes of a file say it is.
pub fn inspect(head: &[u8]) -> Inspection {
    let content_type = sniff(head);
    let dimensions = content_type
        .starts_with("image/")
        .then(|| imagesize::blob_size(head).ok())
        .flatten()
        .and_then(|size| {
            Some((
                u32::try_from(size.width).ok()?,
                u32::try_from(size.height).ok()?,
            ))
        });
    Inspection {
        content_type,
        dimensions,
    }
}

/// The type of a file whose first bytes are `head`; text when they are UTF-8 and nothing else
/// matched.
pub fn sniff(head: &[u8]) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    // A UTF-8 cut in the middle of a character at the end of the sample is still text.
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() as u64 == SNIFF_BYTES,
    };
    if text && !head.is_empty() {
        "text/plain; charset=utf-8".to_owned()
    } else {
        "application/octet-stream".to_owned()
    }
}

/// Whether a browser may show this type in the page: images, audio and video that cannot run
/// script. SVG (script inside), HTML and everything else are downloads.
pub fn renders_inline(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png"
            | "image/jpeg"
            | "image/gif"
            | "image/webp"
            | "image/avif"
            | "video/mp4"
            | "video/webm"
            | "audio/mpeg"
            | "audio/ogg"
            | "audio/opus"
            | "audio/x-wav"
            | "audio/x-flac"
            | "audio/m4a"
            | "audio/aac"
    )
}

fn refused(code: ErrorCode, field: &str, message: String) -> ClaimReply {
    ClaimReply::Refused {
        code,
        field: field.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_png_is_known_by_its_bytes_whatever_its_name() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
    }

    #[test]
    fn an_image_header_gives_its_size_and_a_truncated_one_none() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend(640u32.to_be_bytes());
        png.extend(480u32.to_be_bytes());
        png.extend([8, 6, 0, 0, 0]);
        assert_eq!(inspect(&png).dimensions, Some((640, 480)));
        assert_eq!(inspect(&png[..14]).dimensions, None);
        assert_eq!(inspect(b"just text").dimensions, None);
    }

    #[test]
    fn html_and_svg_are_never_rendered_inline() {
        assert!(!renders_inline("text/html"));
        assert!(!renders_inline("image/svg+xml"));
        assert!(!renders_inline(&sniff(
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>"
        )));
        assert!(renders_inline("image/png"));
    }

    #[test]
    fn unknown_bytes_are_an_octet_stream_and_utf8_is_text() {
        assert_eq!(sniff(&[0xff, 0x00, 0x13, 0x37]), "application/octet-stream");
        assert_eq!(sniff("héllo".as_bytes()), "text/plain; charset=utf-8");
    }
}
