//! Files in messages, in Discord's shapes: asking for upload slots
//! (`POST /api/v1/channels/{id}/attachments`), and the attachment a message carries.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;

use super::error::{FieldErrors, Invalid};

/// A file's name as people see it and as it is served (`Content-Disposition`): 1 to 255
/// characters in Unicode's composed form, trimmed, with no path separators, no control
/// characters and no bidirectional controls (an RTL override makes `photo<U+202E>gnp.exe` read as
/// `photoexe.png`), and not `.` or `..`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Filename(String);

impl Filename {
    pub const MAX: usize = 255;

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let name: String = s.trim().nfc().collect();
        let chars = name.chars().count();
        if chars == 0 {
            return Err(Invalid::new("may not be empty"));
        }
        if chars > Self::MAX {
            return Err(Invalid::new(format!(
                "must be at most {} characters long (it is {chars})",
                Self::MAX
            )));
        }
        if name.contains(['/', '\\']) {
            return Err(Invalid::new("may not contain '/' or '\\'"));
        }
        if let Some(bad) = name.chars().find(|&c| c.is_control() || is_bidi_control(c)) {
            return Err(Invalid::new(format!(
                "may not contain control characters (U+{:04X})",
                u32::from(bad)
            )));
        }
        if name == "." || name == ".." {
            return Err(Invalid::new("may not be '.' or '..'"));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The characters that reorder what follows them: marks, embeddings, overrides and isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl fmt::Debug for Filename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Filename({:?})", self.0)
    }
}

impl fmt::Display for Filename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many files one message may carry, as on Discord.
pub const MAX_FILES: usize = 10;

/// `POST /api/v1/channels/{id}/attachments`: slots for files the client is about to upload.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// 1 to 10 files.
    pub files: Vec<UploadFileRequest>,
}

/// One file the client means to upload.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadFileRequest {
    /// The client's own name for this file in the request (`"0"`, `"1"`, …), echoed back.
    pub id: String,
    pub filename: String,
    /// Bytes; the upload must be exactly this long.
    pub file_size: u64,
}

/// A checked file of an [`UploadRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFile {
    pub id: String,
    pub filename: Filename,
    pub file_size: u64,
}

impl UploadRequest {
    /// Checks every file against the rules and `max_size` (bytes), naming each problem by its
    /// place (`files.2.filename`).
    pub fn parse(&self, max_size: u64) -> Result<Vec<UploadFile>, FieldErrors> {
        let mut errors = FieldErrors::new();
        if self.files.is_empty() || self.files.len() > MAX_FILES {
            errors.add(
                "files",
                format!(
                    "must list 1 to {MAX_FILES} files (it lists {})",
                    self.files.len()
                ),
            );
        }
        let mut files = Vec::with_capacity(self.files.len());
        for (i, file) in self.files.iter().enumerate() {
            if file.id.is_empty() || file.id.len() > 32 {
                errors.add(&format!("files.{i}.id"), "must be 1 to 32 characters long");
            }
            if self.files[..i].iter().any(|other| other.id == file.id) {
                errors.add(
                    &format!("files.{i}.id"),
                    "is used by another file of this request",
                );
            }
            let filename = errors.check(
                &format!("files.{i}.filename"),
                Filename::parse(&file.filename),
            );
            if file.file_size == 0 {
                errors.add(
                    &format!("files.{i}.file_size"),
                    "an empty file cannot be sent",
                );
            } else if file.file_size > max_size {
                errors.add(
                    &format!("files.{i}.file_size"),
                    format!("must be at most {max_size} bytes"),
                );
            }
            if let Some(filename) = filename {
                files.push(UploadFile {
                    id: file.id.clone(),
                    filename,
                    file_size: file.file_size,
                });
            }
        }
        if errors.is_empty() {
            Ok(files)
        } else {
            Err(errors)
        }
    }
}

/// The answer: where to PUT each file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UploadSlots {
    pub attachments: Vec<UploadSlot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UploadSlot {
    /// The request's `id` for this file.
    pub id: String,
    /// PUT the bytes here (signed; expires). The body must be exactly `file_size` bytes.
    pub upload_url: String,
    /// Name the upload by this in the message's `attachments` (`uploaded_filename`).
    pub upload_filename: String,
}

/// An uploaded file named in a message being sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRef {
    pub id: String,
    pub filename: String,
    pub uploaded_filename: String,
}

/// A file a message carries, with Discord's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    pub id: crate::Snowflake,
    pub filename: String,
    /// Bytes.
    pub size: u64,
    /// The type sniffed from the bytes, never the one the client claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// A signed URL that expires; messages read later carry fresh ones.
    pub url: String,
    pub proxy_url: String,
    /// Images: their size in pixels, known once processing finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Audio and video: their length in seconds, read from the file's headers once processing
    /// finishes; none when those do not say it cheaply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub duration_secs: Option<Seconds>,
}

/// A length of time in seconds, as JSON's plain number: finite and not negative, so that it
/// compares equal to itself and a message carrying one can be `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Seconds(f64);

impl Seconds {
    /// `None` for a NaN, an infinity or a negative number.
    pub fn new(seconds: f64) -> Option<Self> {
        (seconds.is_finite() && seconds >= 0.0).then_some(Self(seconds))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

// Sound: NaN, the one float unequal to itself, is never a `Seconds`.
impl Eq for Seconds {}

impl TryFrom<f64> for Seconds {
    type Error = Invalid;

    fn try_from(seconds: f64) -> Result<Self, Invalid> {
        Self::new(seconds).ok_or_else(|| Invalid::new("must be a finite number, not negative"))
    }
}

impl From<Seconds> for f64 {
    fn from(seconds: Seconds) -> f64 {
        seconds.0
    }
}

/// `{p}.media.claim` (a NATS request): the sender's edge asks media to take the uploads a message
/// names, before it publishes the message. Media moves each out of `uploads/` (so an upload is
/// taken by one message only) and answers what the message carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub channel_id: crate::Snowflake,
    pub author_id: crate::Snowflake,
    pub message_id: crate::Snowflake,
    pub attachments: Vec<AttachmentRef>,
    /// The send's nonce: a retried send (same author, channel, nonce and uploads) whose files
    /// were taken already gets the same answer, naming the message they went into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// Media's answer to a [`Claim`]: every attachment, or why none was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ClaimReply {
    Taken {
        attachments: Vec<Attachment>,
        /// Set when an earlier claim of the same send took them: the message they are in,
        /// which the retried send must be (its files live under that id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<crate::Snowflake>,
    },
    /// Nothing was taken: `field` (`attachments.N`) says which, `code` and `message` why.
    Refused {
        code: super::error::ErrorCode,
        field: String,
        message: String,
    },
}

/// `{p}.media.forget` (core NATS): a message was deleted, and its files go with it; without
/// `message_id`, a channel was deleted, and every file of it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forget {
    pub channel_id: crate::Snowflake,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<crate::Snowflake>,
}

/// `{p}.edge.processed` (a NATS request): media processed a message's images (their real size, a
/// preview, metadata stripped) and previewed its links; an edge updates the message
/// (MESSAGE_UPDATE, as an edit is stored) with these files, matched by id. Answered with
/// `crate::access::Reply<bool>`: whether the message still exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processed {
    pub channel_id: crate::Snowflake,
    pub message_id: crate::Snowflake,
    pub attachments: Vec<Attachment>,
    /// The previews of its links, when it has any (the edge drops them if the message's
    /// previews were suppressed meanwhile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embeds: Option<Vec<super::embeds::Embed>>,
}

/// The types media makes a preview of (and an attachment's `proxy_url` shows that preview).
pub fn has_preview(content_type: Option<&str>) -> bool {
    matches!(
        content_type,
        Some("image/jpeg" | "image/png" | "image/webp")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_name_with_spaces_and_unicode_is_a_filename() {
        assert_eq!(
            Filename::parse(" holiday photo é.jpg ").unwrap().as_str(),
            "holiday photo é.jpg"
        );
    }

    #[test]
    fn a_name_with_a_path_separator_is_refused() {
        assert!(Filename::parse("../etc/passwd").is_err());
        assert!(Filename::parse("a\\b.txt").is_err());
    }

    #[test]
    fn a_name_with_control_characters_or_an_rtl_override_is_refused() {
        assert!(Filename::parse("a\u{0}b.txt").is_err());
        assert!(Filename::parse("a\nb.txt").is_err());
        assert!(Filename::parse("photo\u{202E}gnp.exe").is_err());
        assert!(Filename::parse("x\u{2067}y").is_err());
    }

    #[test]
    fn a_name_of_300_characters_is_refused() {
        assert!(Filename::parse(&"a".repeat(300)).is_err());
        assert!(Filename::parse(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn dot_names_and_empty_names_are_refused() {
        for name in ["", "   ", ".", ".."] {
            assert!(Filename::parse(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn a_request_names_every_bad_file_by_its_place() {
        let request = UploadRequest {
            files: vec![
                UploadFileRequest {
                    id: "0".into(),
                    filename: "ok.png".into(),
                    file_size: 10,
                },
                UploadFileRequest {
                    id: "1".into(),
                    filename: "a/b".into(),
                    file_size: 0,
                },
                UploadFileRequest {
                    id: "2".into(),
                    filename: "big.bin".into(),
                    file_size: 101,
                },
            ],
        };
        let errors = request.parse(100).unwrap_err().into_map();
        let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            ["files.1.file_size", "files.1.filename", "files.2.file_size"]
        );
    }

    #[test]
    fn a_duration_is_a_plain_number_and_never_nan_infinite_or_negative() {
        let seconds = Seconds::new(7.25).unwrap();
        assert_eq!(serde_json::to_string(&seconds).unwrap(), "7.25");
        assert_eq!(serde_json::from_str::<Seconds>("7.25").unwrap(), seconds);
        assert!(serde_json::from_str::<Seconds>("-1").is_err());
        for bad in [f64::NAN, f64::INFINITY, -0.5] {
            assert_eq!(Seconds::new(bad), None, "{bad}");
        }
    }

    #[test]
    fn more_than_ten_files_are_refused() {
        let file = UploadFileRequest {
            id: String::new(),
            filename: "a".into(),
            file_size: 1,
        };
        let files = (0..11)
            .map(|i| UploadFileRequest {
                id: i.to_string(),
                ..file.clone()
            })
            .collect();
        assert!(
            UploadRequest { files }
                .parse(100)
                .unwrap_err()
                .into_map()
                .contains_key("files")
        );
    }
}
