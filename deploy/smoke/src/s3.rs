//! An S3 client small enough to lift into a media service: `rusty-s3` signs each request (AWS
//! Signature V4, carried in the URL's query string) and reqwest sends it. Signing is all an S3 SDK
//! would add, and doing it this way keeps the AWS SDK's C crypto (`aws-lc-sys`) out of the build.
//!
//! Every request the client makes is itself a presigned URL, valid for [`REQUEST_TTL`]; the URLs
//! handed to browsers ([`Client::presign_put`], [`Client::presign_get`]) are the same thing with a
//! longer life, so what the server does and what a browser does are checked by one code path.

use std::time::Duration;

use bytes::Bytes;
use reqwest::{Response, StatusCode};
use rusty_s3::actions::ListObjectsV2;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use url::Url;

use crate::S3;

/// How long the URL of one of the client's own requests stays valid: long enough for a slow
/// upload to start, short enough that a URL seen in a log is soon useless.
pub const REQUEST_TTL: Duration = Duration::from_secs(60);

/// Why an S3 call failed.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("no such object")]
    NotFound,
    /// S3's error code (`AccessDenied`, `SignatureDoesNotMatch`, ...) when its XML body named one.
    #[error("S3 answered {status} {code}")]
    Refused { status: StatusCode, code: String },
    #[error("S3 could not be reached: {0}")]
    Http(#[from] reqwest::Error),
    #[error("S3 sent a listing that does not parse: {0}")]
    Listing(String),
    #[error("the S3 endpoint {endpoint:?} is not usable: {reason}")]
    Endpoint { endpoint: String, reason: String },
}

/// Size and entity tag of a stored object, from a `HEAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub etag: Option<String>,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
}

/// What one level below a prefix holds: the objects right there, and the "folders" (common
/// prefixes, ending in `/`) that hold more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub objects: Vec<ListedObject>,
    pub prefixes: Vec<String>,
}

/// One bucket, reached with one identity. Keys are plain strings (`a/b/c.png`); the bucket is
/// addressed path-style (`ENDPOINT/BUCKET/KEY`), which S3-compatible servers on one host need.
#[derive(Debug, Clone)]
pub struct Client {
    bucket: Bucket,
    credentials: Credentials,
    http: reqwest::Client,
}

impl Client {
    /// A client for the bucket and identity `s3` names.
    ///
    /// # Errors
    /// When the endpoint is not an `http(s)://host[:port]` URL.
    pub fn new(s3: &S3) -> Result<Self, S3Error> {
        let bad = |reason: String| S3Error::Endpoint {
            endpoint: s3.endpoint.clone(),
            reason,
        };
        let endpoint: Url = s3.endpoint.parse().map_err(|e| bad(format!("{e}")))?;
        let bucket = Bucket::new(
            endpoint,
            UrlStyle::Path,
            s3.bucket.clone(),
            s3.region.clone(),
        )
        .map_err(|e| bad(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            bucket,
            credentials: Credentials::new(&s3.access_key_id, s3.secret_access_key.expose()),
            http,
        })
    }

    /// A URL that lets whoever holds it `PUT` the object at `key` (a plain `PUT` with the bytes
    /// as its body, no credentials of its own) for `ttl`.
    pub fn presign_put(&self, key: &str, ttl: Duration) -> Url {
        self.bucket
            .put_object(Some(&self.credentials), key)
            .sign(ttl)
    }

    /// A URL that lets whoever holds it `GET` the object at `key` for `ttl`.
    pub fn presign_get(&self, key: &str, ttl: Duration) -> Url {
        self.bucket
            .get_object(Some(&self.credentials), key)
            .sign(ttl)
    }

    /// Stores `body` at `key`, replacing what was there.
    ///
    /// # Errors
    /// [`S3Error::Refused`] when S3 refuses the request; [`S3Error::Http`] when it cannot be
    /// reached.
    pub async fn put(&self, key: &str, body: impl Into<reqwest::Body>) -> Result<(), S3Error> {
        let url = self.presign_put(key, REQUEST_TTL);
        let response = self.http.put(url).body(body).send().await?;
        checked(response).await.map(drop)
    }

    /// The bytes stored at `key`.
    ///
    /// # Errors
    /// [`S3Error::NotFound`] when there is no such object; otherwise as [`Client::put`].
    pub async fn get(&self, key: &str) -> Result<Bytes, S3Error> {
        let url = self.presign_get(key, REQUEST_TTL);
        let response = checked(self.http.get(url).send().await?).await?;
        Ok(response.bytes().await?)
    }

    /// The size and entity tag of the object at `key`, without its bytes.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn head(&self, key: &str) -> Result<ObjectMeta, S3Error> {
        let url = self
            .bucket
            .head_object(Some(&self.credentials), key)
            .sign(REQUEST_TTL);
        let response = checked(self.http.head(url).send().await?).await?;
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        // A HEAD has no body, so `Response::content_length` would say 0: read the header.
        let size = header(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        Ok(ObjectMeta {
            size,
            etag: header(reqwest::header::ETAG),
        })
    }

    /// Deletes the object at `key`. Deleting an object that is not there succeeds, as in S3.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), key)
            .sign(REQUEST_TTL);
        checked(self.http.delete(url).send().await?).await.map(drop)
    }

    /// The objects and sub-prefixes one level below `prefix` (`/` separates levels; pass
    /// `"uploads/"` for what is in `uploads`). Follows continuation tokens to the end.
    ///
    /// # Errors
    /// As [`Client::put`], and [`S3Error::Listing`] when the answer does not parse.
    pub async fn list(&self, prefix: &str) -> Result<Listing, S3Error> {
        let mut listing = Listing::default();
        let mut token: Option<String> = None;
        loop {
            let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
            action.with_prefix(prefix);
            action.with_delimiter("/");
            if let Some(token) = &token {
                action.with_continuation_token(token.as_str());
            }
            let url = action.sign(REQUEST_TTL);
            let body = checked(self.http.get(url).send().await?)
                .await?
                .text()
                .await?;
            let page = ListObjectsV2::parse_response(&body)
                .map_err(|e| S3Error::Listing(e.to_string()))?;
            listing
                .objects
                .extend(page.contents.into_iter().map(|o| ListedObject {
                    key: o.key,
                    size: o.size.unwrap_or_default(),
                }));
            listing
                .prefixes
                .extend(page.common_prefixes.into_iter().map(|p| p.prefix));
            token = page.next_continuation_token;
            if token.is_none() {
                return Ok(listing);
            }
        }
    }
}

/// The response when it succeeded; otherwise the error S3 gave.
async fn checked(response: Response) -> Result<Response, S3Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status == StatusCode::NOT_FOUND {
        return Err(S3Error::NotFound);
    }
    let body = response.text().await.unwrap_or_default();
    Err(S3Error::Refused {
        status,
        code: error_code(&body).unwrap_or_default().to_owned(),
    })
}

/// The `<Code>` of an S3 XML error body (`<Error><Code>AccessDenied</Code>...`).
fn error_code(body: &str) -> Option<&str> {
    let start = body.find("<Code>")? + "<Code>".len();
    let len = body[start..].find("</Code>")?;
    Some(&body[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    fn client() -> Client {
        Client::new(&S3 {
            endpoint: "http://127.0.0.1:18333".to_owned(),
            access_key_id: "NATTERKEY".to_owned(),
            secret_access_key: Secret::new("hunter2-secret"),
            bucket: "natter".to_owned(),
            region: "us-east-1".to_owned(),
        })
        .expect("a client")
    }

    #[test]
    fn a_presigned_url_addresses_the_object_path_style_and_carries_a_signature() {
        let url = client().presign_get("uploads/a b.png", Duration::from_secs(300));
        assert_eq!(url.path(), "/natter/uploads/a%20b.png");
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(query["X-Amz-Expires"], "300");
        assert!(query["X-Amz-Credential"].starts_with("NATTERKEY/"));
        assert!(query["X-Amz-Credential"].ends_with("/us-east-1/s3/aws4_request"));
        assert_eq!(query["X-Amz-Signature"].len(), 64);
        assert!(
            !url.as_str().contains("hunter2"),
            "the secret never travels"
        );
    }

    #[test]
    fn an_endpoint_that_is_not_http_is_refused() {
        let error = Client::new(&S3 {
            endpoint: "ftp://127.0.0.1".to_owned(),
            access_key_id: "k".to_owned(),
            secret_access_key: Secret::new("s"),
            bucket: "natter".to_owned(),
            region: "us-east-1".to_owned(),
        })
        .expect_err("ftp is not S3");
        assert!(matches!(error, S3Error::Endpoint { .. }), "{error}");
    }

    #[test]
    fn the_code_of_an_s3_error_is_read_from_its_body() {
        let body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code>\
                    <Message>no</Message></Error>";
        assert_eq!(error_code(body), Some("SignatureDoesNotMatch"));
        assert_eq!(error_code(""), None);
    }
}
