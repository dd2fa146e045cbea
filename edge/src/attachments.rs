//! A message's files, the edge's half (media keeps the bytes, `media/`): a send that names
//! uploads has media take them (`{p}.media.claim`, all or none) before the message is published;
//! every copy of a message the edge hands out (a send's answer, history, a resume's replay, live
//! delivery) carries links signed afresh, so they never expire while a client can read the
//! message; a deleted message (or channel) has media delete its files (`{p}.media.forget`).
//!
//! Signing needs media's URL-signing secret. An edge without it refuses messages with files and
//! hands messages out with their files' links empty.

use std::time::Duration;

use kit::config::{Secret, duration};
use kit::error::ApiError;
use kit::signing::{FileLinks, UrlSigner};
use proto::Snowflake;
use proto::api::attachments::{
    Attachment, AttachmentRef, Claim, ClaimReply, Filename, Forget, MAX_FILES, UploadSlots,
    has_preview,
};
use proto::api::embeds::EmbedThumbnail;
use proto::api::error::{ErrorBody, ErrorCode};
use proto::api::messages::Message;
use proto::events::Event;
use proto::subjects::Subjects;

use crate::chat::ChatError;

/// How the edge reaches media and signs its links.
#[derive(Debug, Clone, clap::Args)]
pub struct MediaConfig {
    /// Where the media service is, as clients reach it: a message's file links begin with it.
    #[arg(
        long = "media-url",
        env = "NATTER_MEDIA_URL",
        default_value = "http://127.0.0.1:8084"
    )]
    pub media_url: url::Url,

    /// Media's URL-signing secret (the same value as media's `--url-signing-secret`). Without
    /// it, messages cannot carry files.
    #[arg(long = "media-url-signing-secret", env = "NATTER_MEDIA_URL_SIGNING_SECRET",
          value_parser = signing_secret)]
    pub url_signing_secret: Option<Secret<String>>,

    /// How long a file link handed out with a message works (media's `--file-url-ttl`).
    #[arg(long = "file-url-ttl", env = "NATTER_MEDIA_FILE_URL_TTL", default_value = "4h",
          value_parser = duration)]
    pub file_url_ttl: Duration,

    /// The largest file a multipart send may carry, in bytes (media's `--max-file-size`).
    #[arg(
        long = "media-max-file-size",
        env = "NATTER_MEDIA_MAX_FILE_SIZE",
        default_value_t = 25 * 1024 * 1024
    )]
    pub max_file_size: u64,
}

fn signing_secret(s: &str) -> Result<Secret<String>, String> {
    if s.chars().count() < 32 {
        return Err("must be at least 32 characters long".to_owned());
    }
    Ok(Secret::new(s.to_owned()))
}

/// Where media's own upload route begins (a slot's URL on local disk).
const MEDIA_UPLOADS: &str = "/api/v1/uploads/";

/// How long media may take to move a message's uploads into place (on S3 a copy per file).
const CLAIM_TIMEOUT: Duration = Duration::from_secs(30);

/// The edge's side of files in messages.
pub struct Attachments {
    nats: async_nats::Client,
    subjects: Subjects,
    links: Option<FileLinks>,
    /// Media's HTTP API, for the files of multipart sends.
    media_url: url::Url,
    http: reqwest::Client,
    max_file_size: u64,
}

/// A file of a multipart send, on disk until it is uploaded.
pub struct Staged {
    pub filename: Filename,
    pub size: u64,
    pub file: tokio::fs::File,
}

impl Attachments {
    pub fn new(config: &MediaConfig, nats: async_nats::Client, subjects: Subjects) -> Self {
        let links = config.url_signing_secret.as_ref().map(|secret| {
            FileLinks::new(
                config.media_url.as_str(),
                UrlSigner::new(secret),
                config.file_url_ttl,
            )
        });
        Self {
            nats,
            subjects,
            links,
            media_url: config.media_url.clone(),
            http: reqwest::Client::new(),
            max_file_size: config.max_file_size,
        }
    }

    /// The largest file a multipart send may carry.
    pub fn max_file_size(&self) -> u64 {
        self.max_file_size
    }

    /// Uploads a multipart send's files to media as `token`'s user would (an upload slot each,
    /// then their bytes, streamed from disk), answering each file's name and upload name.
    pub async fn upload(
        &self,
        token: &str,
        channel: Snowflake,
        files: Vec<Staged>,
    ) -> Result<Vec<(Filename, String)>, ApiError> {
        if self.links.is_none() {
            return Err(ApiError::forbidden("this server does not take files"));
        }
        let request = serde_json::json!({
            "files": files.iter().enumerate().map(|(i, f)| serde_json::json!({
                "id": i.to_string(),
                "filename": f.filename.as_str(),
                "file_size": f.size,
            })).collect::<Vec<_>>(),
        });
        let slots_url = self
            .media_url
            .join(&format!("api/v1/channels/{channel}/attachments"))
            .map_err(ApiError::internal)?;
        let answer = self
            .http
            .post(slots_url)
            .bearer_auth(token)
            .json(&request)
            .send()
            .await
            .map_err(media_unavailable)?;
        let slots: UploadSlots = media_answer(answer).await?;
        if slots.attachments.len() != files.len() {
            return Err(ApiError::internal("media answered another number of slots"));
        }
        let mut uploaded = Vec::with_capacity(files.len());
        for (mut staged, slot) in files.into_iter().zip(slots.attachments) {
            use tokio::io::AsyncSeekExt;
            staged.file.rewind().await.map_err(ApiError::internal)?;
            // A slot is a presigned PUT to the store (S3), taken as it is, or media's own upload
            // route as clients reach it, which the edge reaches at `--media-url`.
            let handed_out = url::Url::parse(&slot.upload_url).map_err(ApiError::internal)?;
            let put_url = if handed_out.path().starts_with(MEDIA_UPLOADS) {
                let mut at_media = self
                    .media_url
                    .join(handed_out.path())
                    .map_err(ApiError::internal)?;
                at_media.set_query(handed_out.query());
                at_media
            } else {
                handed_out
            };
            let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(staged.file));
            let answer = self
                .http
                .put(put_url)
                .header(reqwest::header::CONTENT_LENGTH, staged.size)
                .body(body)
                .send()
                .await
                .map_err(media_unavailable)?;
            if !answer.status().is_success() {
                return Err(media_error(answer).await);
            }
            uploaded.push((staged.filename, slot.upload_filename));
        }
        Ok(uploaded)
    }

    /// Has media take the uploads a new message names, all or none. Answers the files the
    /// message carries, or why none was taken (naming the attachment at fault).
    pub async fn claim(
        &self,
        channel: Snowflake,
        author: Snowflake,
        message: Snowflake,
        named: Vec<AttachmentRef>,
        nonce: Option<&str>,
    ) -> Result<(Snowflake, Vec<Attachment>), ChatError> {
        if self.links.is_none() {
            return Err(refused(
                ErrorCode::Forbidden,
                "attachments",
                "this server does not take files",
            ));
        }
        if named.len() > MAX_FILES {
            return Err(refused(
                ErrorCode::ValidationFailed,
                "attachments",
                &format!(
                    "a message carries at most {MAX_FILES} files (this one names {})",
                    named.len()
                ),
            ));
        }
        let claim = Claim {
            channel_id: channel,
            author_id: author,
            message_id: message,
            attachments: named,
            nonce: nonce.map(str::to_owned),
        };
        let body = serde_json::to_vec(&claim).expect("claims serialise");
        let asked = self.nats.request(self.subjects.media_claim(), body.into());
        let reply = match tokio::time::timeout(CLAIM_TIMEOUT, asked).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "media did not answer a claim");
                return Err(unavailable());
            }
            Err(_) => {
                tracing::warn!("media did not answer a claim in time");
                return Err(unavailable());
            }
        };
        match serde_json::from_slice::<ClaimReply>(&reply.payload) {
            Ok(ClaimReply::Taken {
                mut attachments,
                message_id,
            }) => {
                let message = message_id.unwrap_or(message);
                self.sign_files(channel, message, &mut attachments);
                Ok((message, attachments))
            }
            Ok(ClaimReply::Refused {
                code: ErrorCode::Internal,
                field,
                message,
            }) => {
                tracing::warn!(%field, %message, "media failed to take a message's files");
                Err(unavailable())
            }
            Ok(ClaimReply::Refused {
                code,
                field,
                message,
            }) => Err(refused(code, &field, &message)),
            Err(e) => {
                tracing::warn!(error = %e, "media's answer to a claim cannot be read");
                Err(unavailable())
            }
        }
    }

    /// Tells media a message (`Some`) or a whole channel (`None`) is gone: its files go too.
    pub async fn forget(&self, channel: Snowflake, message: Option<Snowflake>) {
        let forget = Forget {
            channel_id: channel,
            message_id: message,
        };
        let body = serde_json::to_vec(&forget).expect("forgets serialise");
        if let Err(e) = self
            .nats
            .publish(self.subjects.media_forget(), body.into())
            .await
        {
            tracing::warn!(error = %e, %channel, "cannot tell media to delete files");
        }
    }

    /// Gives a message's files, and its link previews' images, links signed now.
    pub fn sign(&self, message: &mut Message) {
        let (channel, id) = (message.channel_id, message.id);
        self.sign_files(channel, id, &mut message.attachments);
        if let Some(links) = &self.links {
            for thumbnail in message
                .embeds
                .iter_mut()
                .filter_map(|e| e.thumbnail.as_mut())
            {
                let url = links.attachment(channel, id, thumbnail.id, EmbedThumbnail::FILENAME);
                thumbnail.proxy_url.clone_from(&url);
                thumbnail.url = url;
            }
        }
    }

    /// Signs the files of the message an event carries, if any.
    pub fn sign_event(&self, event: &mut Event) {
        if let Event::MessageCreate(message) | Event::MessageUpdate(message) = event {
            self.sign(message);
        }
    }

    fn sign_files(&self, channel: Snowflake, message: Snowflake, files: &mut [Attachment]) {
        let Some(links) = &self.links else {
            return;
        };
        for file in files {
            let url = links.attachment(channel, message, file.id, &file.filename);
            // An image's preview (media serves the image itself until it is made).
            file.proxy_url = if has_preview(file.content_type.as_deref()) {
                format!("{url}&variant=preview")
            } else {
                url.clone()
            };
            file.url = url;
        }
    }
}

/// Media's answer as `T`, or its error as the caller's.
async fn media_answer<T: serde::de::DeserializeOwned>(
    answer: reqwest::Response,
) -> Result<T, ApiError> {
    if !answer.status().is_success() {
        return Err(media_error(answer).await);
    }
    answer.json().await.map_err(media_unavailable)
}

/// Media's refusal (a channel the caller may not attach in, a file too large), passed on.
async fn media_error(answer: reqwest::Response) -> ApiError {
    match answer.json::<ErrorBody>().await {
        Ok(body) => body.fields.iter().fold(
            ApiError::new(body.code, body.message.clone()),
            |e, (f, m)| e.with_field(f, m.clone()),
        ),
        Err(e) => media_unavailable(e),
    }
}

fn media_unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "media did not answer an upload");
    ApiError::unavailable("files cannot be uploaded right now; try again")
}

fn refused(code: ErrorCode, field: &str, message: &str) -> ChatError {
    ChatError::Attachment {
        code,
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

fn unavailable() -> ChatError {
    refused(
        ErrorCode::ServiceUnavailable,
        "attachments",
        "files cannot be taken right now; send the message again",
    )
}
