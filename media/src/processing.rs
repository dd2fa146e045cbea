//! Processing a message's files, after it is sent: a worker on the chat stream (its own durable
//! consumer `media`, shared by every media instance, so it scales out and picks up where it was
//! after a restart) takes each new message with files, reads each audio and video file's
//! duration from its headers ([`mod@crate::duration`]), and for each image
//!
//! - strips its metadata (EXIF with its GPS position, XMP, IPTC, comments) from the stored
//!   original, keeping only its orientation;
//! - decodes it within [`image::Limits`], so a decompression bomb (a small file declaring
//!   billions of pixels) is refused before anything is allocated for it;
//! - stores a preview and a thumbnail next to it (`files/{c}/{m}/{a}.preview`, `.thumbnail`:
//!   under the message's folder, so they go with it), served through the file's own signed URL
//!   with `&variant=preview` (the attachment's `proxy_url`);
//!
//! and previews the links in its text ([`crate::unfurl`]), storing each preview's image as
//! `files/{c}/{m}/{id}/thumbnail`, then asks an edge to update the message
//! (`{p}.edge.processed`) with each image's real size, each recording's duration and the
//! previews, which reaches clients as MESSAGE_UPDATE and is stored like an edit. Messages are
//! worked on side by side (at most [`IN_FLIGHT`] at once), so a slow site delays only its own
//! message.

use std::borrow::Cow;
use std::io::Cursor;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};
use img_parts::{DynImage, ImageEXIF};
use object_store::path::Path;
use proto::api::attachments::{Attachment, Filename, Processed, has_preview};
use proto::api::embeds::{Embed, EmbedThumbnail};
use proto::api::messages::Message;
use proto::events::Event;
use proto::subjects::Subjects;

use crate::duration;
use crate::files::{FILES, Files, file_key};
use crate::storage::{Storage, StorageError};
use crate::unfurl::Unfurler;

/// How many messages one media instance works on at once.
pub const IN_FLIGHT: usize = 16;

/// The consumer every media instance shares.
pub const DURABLE: &str = "media";

/// The largest side, in pixels, media decodes (larger images are shown as files).
pub const MAX_SIDE: u32 = 16_384;
/// The most memory one decode may take.
pub const MAX_ALLOC: u64 = 512 * 1024 * 1024;
/// The preview's and thumbnail's longest sides.
pub const PREVIEW_SIDE: u32 = 1280;
pub const THUMBNAIL_SIDE: u32 = 256;

/// How long an event may take before JetStream hands it to another instance.
const ACK_WAIT: Duration = Duration::from_secs(120);

/// Which variant of a file a URL asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Preview,
    Thumbnail,
}

impl Variant {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "preview" => Some(Self::Preview),
            "thumbnail" => Some(Self::Thumbnail),
            _ => None,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::Preview => "preview",
            Self::Thumbnail => "thumbnail",
        }
    }
}

/// Where a file's variant lives: beside the file's folder, under its message's.
pub fn variant_key(
    channel: proto::Snowflake,
    message: proto::Snowflake,
    id: proto::Snowflake,
    variant: Variant,
) -> Path {
    Path::from_iter([
        FILES,
        &channel.to_string(),
        &message.to_string(),
        &format!("{id}.{}", variant.suffix()),
    ])
}

/// Why an image was not processed (it is then shown as it was uploaded).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("the image cannot be decoded within the limits: {0}")]
    Image(#[from] image::ImageError),
    #[error("the image's metadata cannot be read: {0}")]
    Parts(#[from] img_parts::Error),
}

/// What processing made of one image.
#[derive(Debug)]
pub struct Prepared {
    /// The original without its metadata, when it had any to remove.
    pub stripped: Option<Bytes>,
    /// Width and height as shown (after the orientation is applied).
    pub size: (u32, u32),
    pub preview: Vec<u8>,
    pub thumbnail: Vec<u8>,
}

/// Processes one image's bytes (CPU-bound: run it off the async workers).
pub fn prepare(bytes: &Bytes) -> Result<Prepared, ProcessError> {
    let mut reader = ImageReader::new(Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(image::ImageError::IoError)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    let stripped = strip_metadata(bytes, orientation.to_exif())?;
    Ok(Prepared {
        stripped,
        size: (image.width(), image.height()),
        preview: encode(&at_most(&image, PREVIEW_SIDE))?,
        thumbnail: encode(&at_most(&image, THUMBNAIL_SIDE))?,
    })
}

/// `image` shrunk to fit `side` by `side`, keeping its shape; one that fits already is kept as it
/// is (`DynamicImage::thumbnail` alone would enlarge it: a 200-pixel photo's preview came out
/// 1,280 pixels wide, larger and blurrier than the photo).
fn at_most(image: &DynamicImage, side: u32) -> Cow<'_, DynamicImage> {
    if image.width() > side || image.height() > side {
        Cow::Owned(image.thumbnail(side, side))
    } else {
        Cow::Borrowed(image)
    }
}

/// An image shrunk to at most `side` pixels a side (after its orientation is applied), decoded
/// within the same limits as any image: the encoded copy (JPEG, or PNG with transparency), and
/// its width and height.
pub fn shrink(bytes: &[u8], side: u32) -> Result<(Vec<u8>, u32, u32), ProcessError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(image::ImageError::IoError)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    let small = at_most(&image, side);
    Ok((encode(&small)?, small.width(), small.height()))
}

/// The side of avatars and server icons, in pixels.
pub const SQUARE_SIDE: u32 = 256;

/// An avatar or icon: the image cropped to a square around its centre, [`SQUARE_SIDE`] pixels a
/// side, as PNG (decoded within the same limits as any image; metadata is not carried over).
pub fn square(bytes: &[u8]) -> Result<Vec<u8>, ProcessError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(image::ImageError::IoError)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    let squared = image.resize_to_fill(
        SQUARE_SIDE,
        SQUARE_SIDE,
        image::imageops::FilterType::Lanczos3,
    );
    let mut out = Vec::new();
    squared.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))?;
    Ok(out)
}

/// The EXIF orientation an image's header gives (1, upright, when none or unreadable), read
/// without decoding its pixels.
pub fn orientation_of(bytes: &[u8]) -> u8 {
    ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|reader| reader.into_decoder().ok())
        .and_then(|mut decoder| decoder.orientation().ok())
        .map_or(1, |o| o.to_exif())
}

/// JPEG, or PNG for an image with transparency.
fn encode(image: &DynamicImage) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Vec::new();
    if image.color().has_alpha() {
        image.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))?;
    } else {
        let rgb = DynamicImage::ImageRgb8(image.to_rgb8());
        rgb.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out, 85,
        ))?;
    }
    Ok(out)
}

/// The image without EXIF (but for its orientation, `exif_orientation`, when it is not 1), XMP,
/// IPTC and comments; `None` when there was nothing to remove.
pub fn strip_metadata(bytes: &Bytes, exif_orientation: u8) -> Result<Option<Bytes>, ProcessError> {
    let Some(mut image) = DynImage::from_bytes(bytes.clone())? else {
        return Ok(None);
    };
    if let DynImage::Jpeg(jpeg) = &mut image {
        // APP1 holds EXIF and XMP, APP13 IPTC, COM comments.
        jpeg.segments_mut()
            .retain(|s| !matches!(s.marker(), 0xE1 | 0xED | 0xFE));
    }
    image.set_exif((exif_orientation != 1).then(|| orientation_exif(exif_orientation)));
    let out = image.encoder().bytes();
    Ok((out != *bytes).then_some(out))
}

/// An EXIF block (a big-endian TIFF header and one IFD) holding the orientation alone.
fn orientation_exif(orientation: u8) -> Bytes {
    let mut exif = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    exif.extend([0x00, 0x01]); // one entry
    exif.extend([0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01]); // Orientation, SHORT, 1
    exif.extend([0x00, orientation, 0x00, 0x00]);
    exif.extend([0x00, 0x00, 0x00, 0x00]); // no next IFD
    Bytes::from(exif)
}

/// The worker: processes new messages' images until `shutdown`.
pub struct Processor {
    pub nats: async_nats::Client,
    pub subjects: Subjects,
    pub storage: Storage,
    /// For ids of link previews' images.
    pub files: Files,
    pub unfurler: Unfurler,
    /// Set once the durable consumer exists: from then on every new message waits for media,
    /// so the service is ready (`/readyz`).
    pub subscribed: kit::health::Flag,
}

impl Processor {
    /// Processes new messages until `shutdown`, [`IN_FLIGHT`] at once
    /// ([`kit::stream::read_durable`]: a pull that fails or ends is pulled again).
    pub async fn run(self, shutdown: kit::lifecycle::Shutdown) {
        let js = jetstream::new(self.nats.clone());
        let stream = self.subjects.chat_stream_name();
        let config = kit::stream::new_events(
            DURABLE,
            "Natter media: new messages' images and link previews",
            &self.subjects,
            ACK_WAIT,
            // Work on several at once, a few more in hand than in the works.
            i64::try_from(IN_FLIGHT * 4).unwrap_or(64),
        );
        let subscribed = self.subscribed.clone();
        let this = std::sync::Arc::new(self);
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        kit::stream::read_durable(&js, &stream, config, &subscribed, &shutdown, |messages| {
            Self::read(&this, &slots, messages, &shutdown)
        })
        .await;
    }

    /// Hands each message `messages` brings to a task of its own, at most [`IN_FLIGHT`] at once,
    /// until the pull fails or ends (why), or `shutdown`.
    async fn read(
        this: &std::sync::Arc<Self>,
        slots: &std::sync::Arc<tokio::sync::Semaphore>,
        mut messages: consumer::pull::Stream,
        shutdown: &kit::lifecycle::Shutdown,
    ) -> String {
        loop {
            let message = tokio::select! {
                message = messages.next() => message,
                () = shutdown.cancelled() => return "shutting down".to_owned(),
            };
            let message = match message {
                Some(Ok(message)) => message,
                Some(Err(e)) => return e.to_string(),
                None => return "the consumer's messages ended".to_owned(),
            };
            let Ok(slot) = std::sync::Arc::clone(slots).acquire_owned().await else {
                return "shutting down".to_owned();
            };
            let this = std::sync::Arc::clone(this);
            tokio::spawn(async move {
                let handled = match serde_json::from_slice::<Event>(&message.payload) {
                    Ok(Event::MessageCreate(created)) => this.process(&created).await,
                    _ => Ok(()),
                };
                let ack = match handled {
                    Ok(()) => message.ack().await,
                    Err(e) => {
                        tracing::warn!(error = %e, "processing a message failed; retrying");
                        message
                            .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                            .await
                    }
                };
                if let Err(e) = ack {
                    tracing::debug!(error = %e, "cannot acknowledge a chat event");
                }
                drop(slot);
            });
        }
    }

    /// Processes a new message's images and previews its links, then has an edge update it.
    /// An image that cannot be processed (malformed, a bomb) stays as it was uploaded, shown as
    /// a file; a link that cannot be previewed gets no preview.
    async fn process(&self, message: &Message) -> Result<(), String> {
        let (changed, embeds) = tokio::join!(self.process_files(message), self.embeds(message));
        let changed = changed.map_err(|e| e.to_string())?;
        let embeds = embeds.map_err(|e| e.to_string())?;
        if changed.is_empty() && embeds.is_empty() {
            return Ok(());
        }
        let processed = Processed {
            channel_id: message.channel_id,
            message_id: message.id,
            attachments: changed,
            embeds: (!embeds.is_empty()).then_some(embeds),
        };
        let body = serde_json::to_vec(&processed).expect("processed serialises");
        let reply = tokio::time::timeout(
            Duration::from_secs(30),
            self.nats
                .request(self.subjects.edge_processed(), body.into()),
        )
        .await
        .map_err(|_| "no edge answered in time".to_owned())?
        .map_err(|e| e.to_string())?;
        match serde_json::from_slice::<proto::access::Reply<bool>>(&reply.payload) {
            Ok(proto::access::Reply::Ok(_)) => Ok(()),
            Ok(other) => Err(format!("the edge refused the update: {other:?}")),
            Err(e) => Err(format!("the edge's answer cannot be read: {e}")),
        }
    }

    async fn process_files(&self, message: &Message) -> Result<Vec<Attachment>, StorageError> {
        let mut changed = Vec::new();
        for file in &message.attachments {
            let content_type = file.content_type.as_deref();
            let done = if has_preview(content_type) {
                self.process_file(message, file).await?
            } else if duration::has_duration(content_type) {
                self.time_file(message, file).await?
            } else {
                None
            };
            changed.extend(done);
        }
        Ok(changed)
    }

    /// One audio or video file: its duration, read from its headers; `None` when it is gone or
    /// they do not say it.
    async fn time_file(
        &self,
        message: &Message,
        file: &Attachment,
    ) -> Result<Option<Attachment>, StorageError> {
        let Some(key) = stored_key(message, file) else {
            return Ok(None);
        };
        let seconds = duration::read(&self.storage, &key, file.size).await?;
        Ok(seconds.map(|seconds| Attachment {
            duration_secs: Some(seconds),
            ..file.clone()
        }))
    }

    /// The previews of the message's links (side by side, each within the unfurler's time),
    /// in the order of the links, their images stored under the message's files. None when its
    /// previews are suppressed (its author's choice, or no EMBED_LINKS where it was sent).
    async fn embeds(&self, message: &Message) -> Result<Vec<Embed>, StorageError> {
        if message.embeds_suppressed() {
            return Ok(Vec::new());
        }
        let links = proto::api::embeds::links(&message.content);
        let unfurled = futures::future::join_all(links.iter().map(|link| async move {
            match self.unfurler.unfurl(link).await {
                Ok(unfurled) => Some(unfurled),
                Err(e) => {
                    tracing::info!(error = %e, link = %link, "a link gets no preview");
                    None
                }
            }
        }))
        .await;
        let mut embeds = Vec::new();
        for found in unfurled.into_iter().flatten() {
            let mut embed = found.embed;
            if let Some(made) = found.thumbnail {
                let id = self.files.next_id();
                let name = Filename::parse(EmbedThumbnail::FILENAME).expect("a valid name");
                let key = file_key(message.channel_id, message.id, id, &name);
                let thumbnail = crate::unfurl::thumbnail_of(id, &made);
                self.storage.put(&key, Bytes::from(made.bytes)).await?;
                embed.thumbnail = Some(thumbnail);
            }
            embeds.push(embed);
        }
        Ok(embeds)
    }

    /// One image: `None` when it is gone (its message deleted) or cannot be processed.
    async fn process_file(
        &self,
        message: &Message,
        file: &Attachment,
    ) -> Result<Option<Attachment>, StorageError> {
        let Some(key) = stored_key(message, file) else {
            return Ok(None);
        };
        let bytes = match self.storage.get(&key, None).await {
            Ok(download) => {
                let chunks: Vec<Bytes> = download.body.try_collect().await?;
                Bytes::from(chunks.concat())
            }
            Err(StorageError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let prepared = match tokio::task::spawn_blocking(move || prepare(&bytes)).await {
            Ok(Ok(prepared)) => prepared,
            Ok(Err(e)) => {
                tracing::info!(error = %e, file = %file.id, "an image is shown as a file");
                return Ok(None);
            }
            Err(e) => {
                tracing::warn!(error = %e, "processing an image panicked");
                return Ok(None);
            }
        };
        let (channel, id) = (message.channel_id, message.id);
        let preview = variant_key(channel, id, file.id, Variant::Preview);
        let thumbnail = variant_key(channel, id, file.id, Variant::Thumbnail);
        self.storage
            .put(&preview, Bytes::from(prepared.preview))
            .await?;
        self.storage
            .put(&thumbnail, Bytes::from(prepared.thumbnail))
            .await?;
        let mut size = file.size;
        if let Some(stripped) = prepared.stripped {
            size = stripped.len() as u64;
            self.storage.put(&key, stripped).await?;
        }
        Ok(Some(Attachment {
            size,
            width: Some(prepared.size.0),
            height: Some(prepared.size.1),
            ..file.clone()
        }))
    }
}

/// Where a message's file is stored; `None` for a name that was never valid (nothing stored).
fn stored_key(message: &Message, file: &Attachment) -> Option<Path> {
    let filename = Filename::parse(&file.filename).ok()?;
    Some(file_key(message.channel_id, message.id, file.id, &filename))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::new_rgb8(width, height);
        let mut out = Vec::new();
        image
            .write_with_encoder(image::codecs::jpeg::JpegEncoder::new(&mut out))
            .unwrap();
        out
    }

    /// A PNG header declaring `width` by `height` pixels, with a tiny body.
    fn png_declaring(width: u32, height: u32) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(width.to_be_bytes());
        ihdr.extend(height.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        png.extend(13u32.to_be_bytes());
        png.extend(&ihdr);
        png.extend(crc32(&ihdr).to_be_bytes());
        png.extend(0u32.to_be_bytes());
        png.extend(b"IEND");
        png.extend(crc32(b"IEND").to_be_bytes());
        png
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for byte in data {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn a_photo_gets_its_size_a_preview_and_a_thumbnail() {
        let prepared = prepare(&Bytes::from(jpeg(2000, 1000))).unwrap();
        assert_eq!(prepared.size, (2000, 1000));
        let preview = image::load_from_memory(&prepared.preview).unwrap();
        assert_eq!((preview.width(), preview.height()), (1280, 640));
        let thumbnail = image::load_from_memory(&prepared.thumbnail).unwrap();
        assert_eq!((thumbnail.width(), thumbnail.height()), (256, 128));
    }

    #[test]
    fn a_photo_smaller_than_a_preview_is_never_enlarged() {
        let prepared = prepare(&Bytes::from(jpeg(200, 100))).unwrap();
        let preview = image::load_from_memory(&prepared.preview).unwrap();
        assert_eq!((preview.width(), preview.height()), (200, 100));
        let thumbnail = image::load_from_memory(&prepared.thumbnail).unwrap();
        assert_eq!((thumbnail.width(), thumbnail.height()), (200, 100));
    }

    #[test]
    fn an_avatar_is_the_centre_square_of_the_image_at_256_pixels() {
        let square = square(&jpeg(600, 300)).unwrap();
        let image = image::load_from_memory(&square).unwrap();
        assert_eq!((image.width(), image.height()), (SQUARE_SIDE, SQUARE_SIDE));
        assert!(super::square(&png_declaring(100_000, 100_000)).is_err());
        assert!(super::square(b"not an image").is_err());
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_it_is_decoded() {
        let bomb = png_declaring(100_000, 100_000);
        let started = std::time::Instant::now();
        assert!(prepare(&Bytes::from(bomb)).is_err());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn exif_is_stripped_but_for_the_orientation() {
        let plain = jpeg(8, 4);
        let mut with_gps = plain[..2].to_vec();
        let mut exif = b"Exif\0\0MM\x00\x2a\x00\x00\x00\x08".to_vec();
        exif.extend(b"GPS-secret-place");
        with_gps.extend([0xFF, 0xE1]);
        with_gps.extend(u16::try_from(exif.len() + 2).unwrap().to_be_bytes());
        with_gps.extend(&exif);
        with_gps.extend(&plain[2..]);
        let stripped = strip_metadata(&Bytes::from(with_gps), 1).unwrap().unwrap();
        assert!(!stripped.windows(16).any(|w| w == b"GPS-secret-place"));
        assert!(image::load_from_memory(&stripped).is_ok());
        assert_eq!(strip_metadata(&Bytes::from(plain), 1).unwrap(), None);
        let turned = strip_metadata(&Bytes::from(jpeg(8, 4)), 6)
            .unwrap()
            .unwrap();
        assert_eq!(
            image::metadata::Orientation::from_exif_chunk(
                &DynImage::from_bytes(turned)
                    .unwrap()
                    .unwrap()
                    .exif()
                    .unwrap()
            ),
            Some(image::metadata::Orientation::Rotate90)
        );
    }
}
