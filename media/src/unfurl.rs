//! Link previews: the links in a new message's text (at most five, not in angle brackets or
//! code, `proto::api::embeds::links`) are fetched and read for their OpenGraph, Twitter card and
//! oEmbed data, and their image is fetched, shrunk and stored under the message's files, served
//! through media's signed URLs like any attachment: whoever views the message never contacts the
//! site.
//!
//! Everything fetched passes [`guard`] (public addresses only, checked after resolution and at
//! every redirect) and is capped: [`MAX_REDIRECTS`] redirects, [`MAX_PAGE`] bytes of a page
//! (what comes after is not read), [`MAX_IMAGE`] bytes of an image (a larger one is not used),
//! and the whole of one link, page, oEmbed and image together, within the configured time.

pub mod guard;
mod page;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proto::api::embeds::{Embed, EmbedProvider, EmbedThumbnail, EmbedType};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use url::Url;

use self::guard::{Guard, GuardedResolver, Refused};
pub use self::page::PageData;

/// The most redirects followed from one link.
pub const MAX_REDIRECTS: usize = 5;
/// How much of a page is read: the `<head>` of any real page is well inside.
pub const MAX_PAGE: usize = 1024 * 1024;
/// The largest image fetched for a preview.
pub const MAX_IMAGE: usize = 8 * 1024 * 1024;
/// The largest oEmbed answer read.
const MAX_OEMBED: usize = 64 * 1024;
/// A preview image's longest side.
pub const THUMBNAIL_SIDE: u32 = 400;

/// What the unfurler may do.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The longest one link may take, everything it fetches included.
    pub timeout: Duration,
    /// One address let through the guard (tests' fixture server); `None` in production.
    pub allow: Option<SocketAddr>,
}

/// Why a link got no preview.
#[derive(Debug, thiserror::Error)]
pub enum UnfurlError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("the request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("the answer was {0}")]
    Status(reqwest::StatusCode),
    #[error("a type that is not previewed: {0}")]
    Type(String),
    #[error("larger than {0} bytes")]
    TooLarge(usize),
    #[error("it took longer than the time allowed")]
    Timeout,
    #[error("nothing to show")]
    Empty,
    #[error("the image cannot be read: {0}")]
    Image(String),
}

/// A response's body, read up to a cap.
struct Fetched {
    url: Url,
    content_type: String,
    body: Bytes,
}

/// What was asked for: how much may be read, and what happens past it.
#[derive(Clone, Copy)]
enum Want {
    /// A page: read up to the cap and stop (what comes after is not needed).
    Page,
    /// An image or oEmbed answer: all of it within the cap, or nothing.
    Whole(usize),
}

/// A preview image made from fetched bytes, ready to store.
#[derive(Debug)]
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// One link's preview before its image is stored.
#[derive(Debug)]
pub struct Unfurled {
    pub embed: Embed,
    pub thumbnail: Option<Thumbnail>,
}

/// Fetches links' previews through the guard. Cheap to clone.
#[derive(Clone)]
pub struct Unfurler {
    http: reqwest::Client,
    guard: Arc<Guard>,
    timeout: Duration,
}

impl Unfurler {
    pub fn new(settings: &Settings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.timeout)
            .user_agent("Mozilla/5.0 (compatible; Natter link preview)")
            .build()?;
        Ok(Self {
            http,
            guard: Arc::new(Guard {
                allow: settings.allow,
            }),
            timeout: settings.timeout,
        })
    }

    /// One link's preview, within the time allowed.
    pub async fn unfurl(&self, url: &Url) -> Result<Unfurled, UnfurlError> {
        tokio::time::timeout(self.timeout, self.unfurl_unbounded(url))
            .await
            .map_err(|_| UnfurlError::Timeout)?
    }

    async fn unfurl_unbounded(&self, url: &Url) -> Result<Unfurled, UnfurlError> {
        let fetched = self
            .fetch(
                url.clone(),
                &["text/html", "application/xhtml+xml", "image/"],
                Want::Page,
            )
            .await?;
        let provider = |name: Option<String>| {
            name.or_else(|| fetched.url.host_str().map(str::to_owned))
                .map(|name| EmbedProvider { name })
        };
        if fetched.content_type.starts_with("image/") {
            // A link straight to an image: the image is the preview. Its bytes were read as a
            // page's, so it must have fit within the page's cap whole.
            if fetched.body.len() >= MAX_PAGE {
                let again = self
                    .fetch(fetched.url.clone(), &["image/"], Want::Whole(MAX_IMAGE))
                    .await?;
                return image_embed(url, again.body, provider(None)).await;
            }
            return image_embed(url, fetched.body.clone(), provider(None)).await;
        }
        let html = String::from_utf8_lossy(&fetched.body).into_owned();
        let base = fetched.url.clone();
        let mut data = tokio::task::spawn_blocking(move || PageData::read(&html, &base))
            .await
            .map_err(|_| UnfurlError::Empty)?;
        if let Some(oembed) = data.oembed.take()
            && (data.title.is_none() || data.image.is_none())
            && let Ok(answer) = self
                .fetch(
                    oembed,
                    &["application/json", "text/json", "application/json+oembed"],
                    Want::Whole(MAX_OEMBED),
                )
                .await
        {
            data.fill_from_oembed(&answer.body, &fetched.url);
        }
        if data.title.is_none() && data.description.is_none() && data.image.is_none() {
            return Err(UnfurlError::Empty);
        }
        let thumbnail = match data.image.take() {
            Some(image) => match self.thumbnail(image).await {
                Ok(made) => Some(made),
                Err(e) => {
                    tracing::debug!(error = %e, "a preview's image is left out");
                    None
                }
            },
            None => None,
        };
        Ok(Unfurled {
            embed: Embed {
                kind: data.kind.unwrap_or(EmbedType::Link),
                url: url.to_string(),
                title: data.title,
                description: data.description,
                provider: provider(data.site),
                thumbnail: None,
                color: data.color,
            },
            thumbnail,
        })
    }

    async fn thumbnail(&self, url: Url) -> Result<Thumbnail, UnfurlError> {
        let fetched = self.fetch(url, &["image/"], Want::Whole(MAX_IMAGE)).await?;
        shrink(fetched.body).await
    }

    /// GETs `url`, following redirects through the guard, and reads its body within `want`'s
    /// cap. Refuses a type that does not begin with one of `types`.
    async fn fetch(
        &self,
        mut url: Url,
        types: &[&str],
        want: Want,
    ) -> Result<Fetched, UnfurlError> {
        let mut redirects = 0;
        let mut response = loop {
            self.guard.check(&url)?;
            let response = self.http.get(url.clone()).send().await?;
            if !response.status().is_redirection() {
                break response;
            }
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(UnfurlError::TooManyRedirects);
            }
            let next = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or(UnfurlError::Status(response.status()))?;
            url = next;
        };
        if !response.status().is_success() {
            return Err(UnfurlError::Status(response.status()));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|t| t.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !types.iter().any(|t| content_type.starts_with(t)) {
            return Err(UnfurlError::Type(content_type));
        }
        let cap = match want {
            Want::Page => MAX_PAGE,
            Want::Whole(cap) => cap,
        };
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.parse::<usize>().ok());
        if matches!(want, Want::Whole(_)) && declared.is_some_and(|l| l > cap) {
            return Err(UnfurlError::TooLarge(cap));
        }
        let mut body = Vec::with_capacity(declared.unwrap_or(0).min(cap));
        while let Some(chunk) = response.chunk().await? {
            let room = cap - body.len();
            if chunk.len() > room {
                if matches!(want, Want::Whole(_)) {
                    return Err(UnfurlError::TooLarge(cap));
                }
                body.extend_from_slice(&chunk[..room]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            url,
            content_type,
            body: Bytes::from(body),
        })
    }
}

async fn image_embed(
    url: &Url,
    bytes: Bytes,
    provider: Option<EmbedProvider>,
) -> Result<Unfurled, UnfurlError> {
    let thumbnail = shrink(bytes).await?;
    Ok(Unfurled {
        embed: Embed {
            kind: EmbedType::Image,
            url: url.to_string(),
            title: None,
            description: None,
            provider,
            thumbnail: None,
            color: None,
        },
        thumbnail: Some(thumbnail),
    })
}

/// Decodes an image within the same limits as attachments (so a bomb is refused) and shrinks
/// it to [`THUMBNAIL_SIDE`]; metadata is not carried over.
async fn shrink(bytes: Bytes) -> Result<Thumbnail, UnfurlError> {
    tokio::task::spawn_blocking(move || crate::processing::shrink(&bytes, THUMBNAIL_SIDE))
        .await
        .map_err(|e| UnfurlError::Image(e.to_string()))?
        .map(|(bytes, width, height)| Thumbnail {
            bytes,
            width,
            height,
        })
        .map_err(|e| UnfurlError::Image(e.to_string()))
}

/// The thumbnail's place in an embed, once stored as `id`.
pub fn thumbnail_of(id: proto::Snowflake, made: &Thumbnail) -> EmbedThumbnail {
    EmbedThumbnail {
        url: String::new(),
        proxy_url: String::new(),
        width: made.width,
        height: made.height,
        id,
    }
}
