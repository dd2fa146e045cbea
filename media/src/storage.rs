//! Where files live: one API over the local filesystem and S3-compatible object stores, through
//! the `object_store` crate, so a single machine and a fleet run the same code.
//!
//! Bytes always travel as streams: an upload is written in chunks of [`PART_SIZE`] (a multipart
//! upload on S3, a temporary file on disk, renamed into place when complete), and a download is
//! read as a stream too (the store's response body on S3, [`FILE_READ_SIZE`] at a time from disk),
//! so a 25 MiB file never sits whole in the process's memory.
//!
//! On S3 a client's upload does not pass through media at all: [`Storage::presigned_put`] hands
//! out a presigned PUT straight to the store, whose signature binds the key, the expiry and the
//! announced size (`content-length` is a signed header, so the store refuses any other size
//! before it stores a byte).

use std::io::SeekFrom;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use kit::config::Secret;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

/// The size of each part an upload is written in. S3 refuses parts under 5 MiB but the last.
pub const PART_SIZE: usize = 5 * 1024 * 1024;

/// How many parts of one upload may be on their way to the store at once: with the part being
/// filled, an upload holds at most three parts (15 MiB) in memory whatever the file's size.
const PARTS_IN_FLIGHT: usize = 2;

/// Which kind of store holds the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// A folder on this machine's disk (`--storage-dir`).
    Local,
    /// An S3-compatible object store (`--s3-*`).
    S3,
}

/// Where the files are kept.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageConfig {
    /// The kind of store: `local` (a folder, for one machine) or `s3` (any S3-compatible store).
    #[arg(
        long = "storage",
        env = "NATTER_MEDIA_STORAGE",
        value_enum,
        default_value = "local"
    )]
    pub backend: Backend,

    /// The folder files are kept in with `--storage local` (created when missing).
    #[arg(
        long = "storage-dir",
        env = "NATTER_MEDIA_DIR",
        default_value = ".natter/media"
    )]
    pub dir: PathBuf,

    /// A folder inside the store every key begins with, so deployments (and test runs) can share
    /// one bucket or folder without seeing each other's files.
    #[arg(
        id = "storage_prefix",
        long = "storage-prefix",
        env = "NATTER_MEDIA_PREFIX",
        default_value = "media"
    )]
    pub prefix: String,

    /// The S3 endpoint (`http://127.0.0.1:18333` for the development stack's SeaweedFS); unset
    /// means AWS itself, in `--s3-region`.
    #[arg(long = "s3-endpoint", env = "NATTER_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Where clients reach the store, when not at `--s3-endpoint` (a public name in front of a
    /// store media reaches on a private network): presigned upload URLs point there.
    #[arg(long = "s3-public-endpoint", env = "NATTER_S3_PUBLIC_ENDPOINT")]
    pub s3_public_endpoint: Option<String>,

    /// The bucket files are kept in with `--storage s3`.
    #[arg(long = "s3-bucket", env = "NATTER_S3_BUCKET", default_value = "natter")]
    pub s3_bucket: String,

    #[arg(
        long = "s3-region",
        env = "NATTER_S3_REGION",
        default_value = "us-east-1"
    )]
    pub s3_region: String,

    #[arg(long = "s3-access-key-id", env = "NATTER_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,

    #[arg(long = "s3-secret-access-key", env = "NATTER_S3_SECRET_ACCESS_KEY")]
    pub s3_secret_access_key: Option<Secret<String>>,
}

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the storage folder {0} cannot be made: {1}")]
    Folder(PathBuf, std::io::Error),
    #[error("no such file")]
    NotFound,
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the upload was cut short: {0}")]
    Aborted(String),
    #[error("the store failed: {0}")]
    Store(#[from] object_store::Error),
    #[error("the file cannot be read: {0}")]
    Read(std::io::Error),
    #[error("the S3 endpoint {0:?} cannot be used: {1}")]
    Endpoint(String, String),
}

impl StorageError {
    fn from_store(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Self::NotFound,
            e => Self::Store(e),
        }
    }
}

/// How much of a file on local disk one read takes. `object_store` reads one 8 KiB at a time,
/// each read a task of its own on the blocking pool: 3,200 of them for a 25 MiB file, which made
/// downloads from disk a fifth as fast as uploads to it.
const FILE_READ_SIZE: usize = 256 * 1024;

/// `range` of a file on local disk, read [`FILE_READ_SIZE`] at a time.
fn read_file(
    file: std::fs::File,
    range: Range<u64>,
) -> futures::stream::BoxStream<'static, Result<Bytes, StorageError>> {
    let mut file = tokio::fs::File::from_std(file);
    futures::stream::once(async move {
        file.seek(SeekFrom::Start(range.start)).await?;
        let wanted = file.take(range.end - range.start);
        Ok::<_, std::io::Error>(ReaderStream::with_capacity(wanted, FILE_READ_SIZE))
    })
    .try_flatten()
    .map_err(StorageError::Read)
    .boxed()
}

/// A stored file's size and when it was last written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub modified: SystemTime,
}

/// Part of a stored file, as a stream of chunks.
pub struct Download {
    /// The whole file's size.
    pub size: u64,
    /// Which bytes `body` holds.
    pub range: Range<u64>,
    pub body: futures::stream::BoxStream<'static, Result<Bytes, StorageError>>,
}

/// The files' store: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    backend: Backend,
    /// Signs upload URLs straight to the store: S3 with keys configured.
    presigner: Option<Arc<Presigner>>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens the configured store. Nothing is asked of a remote store yet (see [`check`]).
    ///
    /// [`check`]: Self::check
    pub fn open(config: &StorageConfig) -> Result<Self, StorageError> {
        let inner: Arc<dyn ObjectStore> = match config.backend {
            Backend::Local => {
                std::fs::create_dir_all(&config.dir)
                    .map_err(|e| StorageError::Folder(config.dir.clone(), e))?;
                // Empty folders left by deleted files are removed, so the tree does not grow.
                Arc::new(
                    LocalFileSystem::new_with_prefix(&config.dir)?.with_automatic_cleanup(true),
                )
            }
            Backend::S3 => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&config.s3_bucket)
                    .with_region(&config.s3_region);
                if let Some(endpoint) = &config.s3_endpoint {
                    // A self-hosted store is addressed by path (`/bucket/key`), and may be plain
                    // HTTP on a private network.
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                if let Some(id) = &config.s3_access_key_id {
                    builder = builder.with_access_key_id(id);
                }
                if let Some(secret) = &config.s3_secret_access_key {
                    builder = builder.with_secret_access_key(secret.expose());
                }
                Arc::new(builder.build()?)
            }
        };
        let store: Arc<dyn ObjectStore> = if config.prefix.is_empty() {
            inner
        } else {
            Arc::new(PrefixStore::new(inner, config.prefix.as_str()))
        };
        let presigner = match config.backend {
            Backend::S3 => Presigner::new(config)?.map(Arc::new),
            Backend::Local => None,
        };
        if config.backend == Backend::S3 && presigner.is_none() {
            tracing::warn!(
                "no --s3-access-key-id and --s3-secret-access-key: uploads cannot be presigned, \
                 so they pass through media"
            );
        }
        Ok(Self {
            store,
            backend: config.backend,
            presigner,
        })
    }

    /// A URL that PUTs exactly `size` bytes to `key` straight into the store until `ttl` has
    /// passed, when the store takes presigned uploads (S3); `None` means uploads go through
    /// media.
    pub fn presigned_put(&self, key: &Path, size: u64, ttl: Duration) -> Option<String> {
        Some(self.presigner.as_ref()?.put(key, size, ttl))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Writes `body` to `key` as it arrives, refusing it once it passes `limit` bytes: the parts
    /// written so far are then deleted and nothing is left at `key`. Returns the size stored.
    pub async fn put_stream<S, E>(
        &self,
        key: &Path,
        body: S,
        limit: u64,
    ) -> Result<u64, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let upload = self
            .store
            .put_multipart(key)
            .await
            .map_err(StorageError::from_store)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        match write_all(&mut writer, body, limit).await {
            Ok(size) => {
                writer.finish().await.map_err(StorageError::from_store)?;
                Ok(size)
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, "cannot abort a refused upload");
                }
                Err(e)
            }
        }
    }

    /// Writes a small file whole (an avatar's variants, a test's fixture).
    pub async fn put(&self, key: &Path, bytes: Bytes) -> Result<(), StorageError> {
        self.store
            .put(key, bytes.into())
            .await
            .map_err(StorageError::from_store)?;
        Ok(())
    }

    /// Reads `range` of the file at `key` (all of it when `None`) as a stream.
    pub async fn get(
        &self,
        key: &Path,
        range: Option<Range<u64>>,
    ) -> Result<Download, StorageError> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(key, options)
            .await
            .map_err(StorageError::from_store)?;
        let (size, range) = (result.meta.size, result.range.clone());
        let body = match result.payload {
            GetResultPayload::File(file, _) => read_file(file, range.clone()),
            GetResultPayload::Stream(stream) => stream.map_err(StorageError::from_store).boxed(),
        };
        Ok(Download { size, range, body })
    }

    pub async fn stat(&self, key: &Path) -> Result<Stat, StorageError> {
        let meta = self
            .store
            .head(key)
            .await
            .map_err(StorageError::from_store)?;
        Ok(Stat {
            size: meta.size,
            modified: meta.last_modified.into(),
        })
    }

    /// Moves a file to another key. Fails with [`StorageError::NotFound`] when there is nothing
    /// at `from` (it was moved already).
    pub async fn rename(&self, from: &Path, to: &Path) -> Result<(), StorageError> {
        self.store
            .rename(from, to)
            .await
            .map_err(StorageError::from_store)
    }

    /// Deletes a file; deleting what is not there is no error.
    pub async fn delete(&self, key: &Path) -> Result<(), StorageError> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every file under `prefix` last written before `before` (all of them when `None`),
    /// returning how many went.
    pub async fn delete_under(
        &self,
        prefix: &Path,
        before: Option<SystemTime>,
    ) -> Result<usize, StorageError> {
        let doomed: Vec<Path> = self
            .store
            .list(Some(prefix))
            .try_filter_map(|meta| async move {
                let old = before.is_none_or(|before| SystemTime::from(meta.last_modified) < before);
                Ok(old.then_some(meta.location))
            })
            .try_collect()
            .await?;
        for key in &doomed {
            self.delete(key).await?;
        }
        Ok(doomed.len())
    }

    /// Whether the store answers: a read of a key that is never written, which any working store
    /// answers "not found" (readiness gives it its deadline).
    pub async fn check(&self) -> Result<(), String> {
        match self.store.head(&Path::from("readiness-probe")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Presigned PUTs to S3 (SigV4 in the query), signed by `rusty-s3`: object_store's own signer
/// will not put `content-length` among the signed headers, and without it a presigned PUT takes a
/// body of any size.
struct Presigner {
    /// The bucket as clients reach it: by path on a self-hosted store (as media addresses it),
    /// by its own host name on AWS.
    bucket: rusty_s3::Bucket,
    credentials: rusty_s3::Credentials,
    /// What `Storage` puts before every key.
    prefix: Path,
}

impl Presigner {
    fn new(config: &StorageConfig) -> Result<Option<Self>, StorageError> {
        let (Some(id), Some(secret)) = (&config.s3_access_key_id, &config.s3_secret_access_key)
        else {
            return Ok(None);
        };
        let (endpoint, style) = match (&config.s3_public_endpoint, &config.s3_endpoint) {
            (Some(endpoint), _) | (None, Some(endpoint)) => {
                (endpoint.clone(), rusty_s3::UrlStyle::Path)
            }
            (None, None) => (
                format!("https://s3.{}.amazonaws.com", config.s3_region),
                rusty_s3::UrlStyle::VirtualHost,
            ),
        };
        let url = url::Url::parse(&endpoint)
            .map_err(|e| StorageError::Endpoint(endpoint.clone(), e.to_string()))?;
        let bucket = rusty_s3::Bucket::new(
            url,
            style,
            config.s3_bucket.clone(),
            config.s3_region.clone(),
        )
        .map_err(|e| StorageError::Endpoint(endpoint, e.to_string()))?;
        Ok(Some(Self {
            bucket,
            credentials: rusty_s3::Credentials::new(id.clone(), secret.expose().clone()),
            prefix: Path::from(config.prefix.as_str()),
        }))
    }

    fn put(&self, key: &Path, size: u64, ttl: Duration) -> String {
        use rusty_s3::S3Action;
        // The object's key as object_store writes it (under the prefix).
        let full = Path::from_iter(self.prefix.parts().chain(key.parts()));
        let mut put =
            rusty_s3::actions::PutObject::new(&self.bucket, Some(&self.credentials), full.as_ref());
        put.headers_mut().insert("content-length", size.to_string());
        put.sign(ttl).into()
    }
}

async fn write_all<S, E>(
    writer: &mut WriteMultipart,
    mut body: S,
    limit: u64,
) -> Result<u64, StorageError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| StorageError::Aborted(e.to_string()))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(StorageError::TooLarge { limit });
        }
        writer
            .wait_for_capacity(PARTS_IN_FLIGHT)
            .await
            .map_err(StorageError::from_store)?;
        writer.put(chunk);
    }
    Ok(size)
}
