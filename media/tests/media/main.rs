//! Media against the real stores, one test binary: every test runs on both back ends, a folder on
//! local disk and the stack's SeaweedFS over S3.

mod files;
mod images;
mod service;
mod storage;
mod support;
mod unfurl;
mod uploads;

use media::storage::{Backend, StorageConfig};

/// A store of each kind, each isolated from every other test by a key prefix of its own. The
/// folder lives as long as the returned guard.
fn backends() -> (tempfile::TempDir, Vec<StorageConfig>) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let s3 = testkit::Stack::get().s3();
    let prefix = testkit::unique("media");
    let local = StorageConfig {
        backend: Backend::Local,
        dir: dir.path().to_owned(),
        prefix: prefix.clone(),
        s3_endpoint: None,
        s3_public_endpoint: None,
        s3_bucket: String::new(),
        s3_region: String::new(),
        s3_access_key_id: None,
        s3_secret_access_key: None,
    };
    let remote = StorageConfig {
        backend: Backend::S3,
        dir: dir.path().to_owned(),
        prefix,
        s3_endpoint: Some(s3.endpoint),
        s3_public_endpoint: None,
        s3_bucket: s3.bucket,
        s3_region: s3.region,
        s3_access_key_id: Some(s3.access_key_id),
        s3_secret_access_key: Some(kit::config::Secret::new(s3.secret_access_key)),
    };
    (dir, vec![local, remote])
}
