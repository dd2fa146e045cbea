//! A message's files: taking its uploads (a [`Claim`]), what they are (sniffed from their first
//! bytes), their signed URLs, and deleting them with the message.
//!
//! A taken file lives at `files/{channel}/{message}/{attachment}/{filename}`: everything of one
//! message under one folder, so deleting the message deletes its files in one sweep of a prefix,
//! and an upload, once moved out of `uploads/`, cannot be taken by a second message.

use kit::signing::{FileLinks, UrlSigner};
use object_store::path::Path;
use proto::api::attachments::{Attachment, Claim, ClaimReply, Filename, Forget, MAX_FILES};
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

/// Takes uploads into messages and signs their URLs.
#[derive(Clone)]
pub struct Files {
    storage: Storage,
    links: FileLinks,
    ids: std::sync::Arc<SnowflakeGenerator>,
}

impl Files {
    pub fn new(storage: Storage, links: FileLinks, ids: SnowflakeGenerator) -> Self {
        Self {
            storage,
            links,
            ids: std::sync::Arc::new(ids),
        }
    }

    /// Takes every upload `claim` names, or none: each must be the author's, for this channel,
    /// complete, and not taken by another message.
    pub async fn claim(&self, claim: &Claim) -> ClaimReply {
        match self.try_claim(claim).await {
            Ok(attachments) => ClaimReply::Taken { attachments },
            Err(refused) => refused,
        }
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
            let inspection = self.inspect(to, *size).await;
            let url = self.url(claim.channel_id, claim.message_id, *id, filename);
            attachments.push(Attachment {
                id: *id,
                filename: filename.as_str().to_owned(),
                size: *size,
                content_type: Some(inspection.content_type),
                proxy_url: url.clone(),
                url,
                width: inspection.dimensions.map(|(w, _)| w),
                height: inspection.dimensions.map(|(_, h)| h),
            });
        }
        Ok(attachments)
    }

    /// Deletes every file of a deleted message, or of a deleted channel.
    pub async fn forget(&self, forget: &Forget) -> Result<usize, StorageError> {
        let channel = forget.channel_id.to_string();
        let prefix = match forget.message_id {
            Some(message) => Path::from_iter([FILES, &channel, &message.to_string()]),
            None => Path::from_iter([FILES, &channel]),
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

    pub fn signer(&self) -> &UrlSigner {
        self.links.signer()
    }
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
            | "audio/x-wav"
            | "audio/x-flac"
            | "audio/mp4"
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
