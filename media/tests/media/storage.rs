//! The store under both back ends: streamed writes and reads, ranges, limits, aborted uploads,
//! renames and deletion by age.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{StreamExt, stream};
use media::storage::{PART_SIZE, Storage, StorageError};
use object_store::path::Path;

/// The byte at offset `i` of every test file: not all zeros, so a part written in the wrong place
/// shows.
fn byte_at(i: u64) -> u8 {
    (i % 251) as u8
}

/// `size` bytes of the test pattern in chunks of 64 KiB, made as they are read.
fn body(size: u64) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
    const CHUNK: u64 = 64 * 1024;
    stream::iter((0..size).step_by(CHUNK as usize)).map(move |start| {
        let end = (start + CHUNK).min(size);
        Ok(Bytes::from((start..end).map(byte_at).collect::<Vec<u8>>()))
    })
}

async fn read_all(storage: &Storage, key: &Path, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    let mut download = storage.get(key, range).await.expect("the file reads");
    let mut bytes = Vec::new();
    while let Some(chunk) = download.body.next().await {
        bytes.extend_from_slice(&chunk.expect("a chunk"));
    }
    bytes
}

#[tokio::test]
async fn a_file_of_several_parts_streams_in_and_out_whole() {
    let (_dir, configs) = super::backends();
    for config in configs {
        let storage = Storage::open(&config).expect("the store opens");
        let key = Path::from("uploads/a/big.bin");
        let size = 2 * PART_SIZE as u64 + 12_345;
        let stored = storage
            .put_stream(&key, body(size), 25 << 20)
            .await
            .unwrap_or_else(|e| panic!("{:?}: the upload is stored: {e}", config.backend));
        assert_eq!(stored, size);
        assert_eq!(storage.stat(&key).await.expect("stat").size, size);

        let whole = read_all(&storage, &key, None).await;
        assert_eq!(whole.len() as u64, size, "{:?}", config.backend);
        assert!(
            whole
                .iter()
                .enumerate()
                .all(|(i, b)| *b == byte_at(i as u64))
        );

        // A range across the first part's end, as a video player asks for it.
        let edge = PART_SIZE as u64;
        let range = read_all(&storage, &key, Some(edge - 3..edge + 5)).await;
        assert_eq!(range, (edge - 3..edge + 5).map(byte_at).collect::<Vec<_>>());

        storage.delete(&key).await.expect("delete");
        assert!(matches!(
            storage.stat(&key).await,
            Err(StorageError::NotFound)
        ));
    }
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_and_nothing_is_stored() {
    let (_dir, configs) = super::backends();
    for config in configs {
        let storage = Storage::open(&config).expect("the store opens");
        let key = Path::from("uploads/b/too-big.bin");
        let refused = storage.put_stream(&key, body(3 << 20), 1 << 20).await;
        assert!(
            matches!(refused, Err(StorageError::TooLarge { limit }) if limit == 1 << 20),
            "{:?}: {refused:?}",
            config.backend
        );
        assert!(matches!(
            storage.stat(&key).await,
            Err(StorageError::NotFound)
        ));
        assert_eq!(
            storage
                .delete_under(&Path::from("uploads"), None)
                .await
                .expect("list"),
            0
        );
    }
}

#[tokio::test]
async fn an_upload_cut_short_leaves_nothing() {
    let (_dir, configs) = super::backends();
    for config in configs {
        let storage = Storage::open(&config).expect("the store opens");
        let key = Path::from("uploads/c/cut.bin");
        let cut = body(PART_SIZE as u64 + 10).chain(stream::iter([Err(std::io::Error::other(
            "the client went away",
        ))]));
        let refused = storage.put_stream(&key, cut, 25 << 20).await;
        assert!(
            matches!(refused, Err(StorageError::Aborted(_))),
            "{refused:?}"
        );
        assert!(matches!(
            storage.stat(&key).await,
            Err(StorageError::NotFound)
        ));
    }
}

#[tokio::test]
async fn a_file_moves_once_and_only_once() {
    let (_dir, configs) = super::backends();
    for config in configs {
        let storage = Storage::open(&config).expect("the store opens");
        let from = Path::from("uploads/d/photo.png");
        let to = Path::from("attachments/1/2/photo.png");
        storage
            .put(&from, Bytes::from_static(b"png"))
            .await
            .expect("put");
        storage.rename(&from, &to).await.expect("the first move");
        let again = storage
            .rename(&from, &Path::from("attachments/1/3/photo.png"))
            .await;
        assert!(
            matches!(again, Err(StorageError::NotFound)),
            "{:?}: {again:?}",
            config.backend
        );
        assert_eq!(read_all(&storage, &to, None).await, b"png");
    }
}

#[tokio::test]
async fn deleting_by_age_keeps_newer_files_and_other_folders() {
    let (_dir, configs) = super::backends();
    for config in configs {
        let storage = Storage::open(&config).expect("the store opens");
        let old = Path::from("uploads/e/old.bin");
        let kept = Path::from("attachments/e/kept.bin");
        storage
            .put(&old, Bytes::from_static(b"old"))
            .await
            .expect("put");
        storage
            .put(&kept, Bytes::from_static(b"kept"))
            .await
            .expect("put");
        let cutoff = SystemTime::now() + Duration::from_secs(60);
        let past = SystemTime::now() - Duration::from_secs(3600);

        let uploads = Path::from("uploads");
        assert_eq!(
            storage
                .delete_under(&uploads, Some(past))
                .await
                .expect("sweep"),
            0
        );
        assert_eq!(
            storage
                .delete_under(&uploads, Some(cutoff))
                .await
                .expect("sweep"),
            1
        );
        assert!(matches!(
            storage.stat(&old).await,
            Err(StorageError::NotFound)
        ));
        assert_eq!(storage.stat(&kept).await.expect("kept").size, 4);
    }
}
