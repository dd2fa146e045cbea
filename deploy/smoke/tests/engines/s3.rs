//! SeaweedFS's S3 gateway with the identity and bucket `deploy/stack.sh` made, through
//! `smoke::s3` (requests presigned with `rusty-s3`, sent with reqwest).

use std::time::Duration;

use smoke::s3::{Client, S3Error};
use smoke::{Engines, Secret, unique};

fn store(secret_access_key: &str) -> Client {
    let s3 = Engines::get().s3;
    Client::new(&smoke::S3 {
        secret_access_key: Secret::new(secret_access_key),
        ..s3
    })
    .expect("an S3 client for the stack's SeaweedFS")
}

fn configured_store() -> Client {
    Client::new(&Engines::get().s3).expect("an S3 client for the stack's SeaweedFS")
}

/// `PREFIX/name`, under a prefix no other run uses.
fn key(name: &str) -> String {
    format!("{}/{name}", unique("s3"))
}

#[tokio::test]
async fn an_object_is_stored_read_listed_and_deleted_with_the_configured_keys() {
    let store = configured_store();
    let path = key("hello.txt");
    let body = b"hello from natter".repeat(1000);

    store.put(&path, body.clone()).await.expect("put an object");
    let read = store.get(&path).await.expect("get the object");
    assert_eq!(read.as_ref(), body.as_slice());
    assert_eq!(
        store.head(&path).await.expect("head the object").size,
        body.len() as u64
    );

    let (prefix, _) = path.split_once('/').expect("a prefix");
    let listed = store
        .list(&format!("{prefix}/"))
        .await
        .expect("list the prefix");
    assert_eq!(
        listed.objects.iter().map(|o| &o.key).collect::<Vec<_>>(),
        [&path]
    );

    store.delete(&path).await.expect("delete the object");
    let gone = store.get(&path).await;
    assert!(
        matches!(gone, Err(S3Error::NotFound)),
        "a deleted object is gone, got {gone:?}"
    );
}

#[tokio::test]
async fn presigned_urls_upload_and_download_without_the_keys() {
    let store = configured_store();
    let path = key("upload.bin");
    let body: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
    let http = reqwest::Client::new();

    // What a browser does with an upload_url: a plain PUT, no credentials of its own.
    let put_url = store.presign_put(&path, Duration::from_secs(300));
    let put = http
        .put(put_url.as_str())
        .body(body.clone())
        .send()
        .await
        .expect("PUT to the presigned URL");
    assert!(put.status().is_success(), "presigned PUT: {}", put.status());

    let get_url = store.presign_get(&path, Duration::from_secs(300));
    let get = http
        .get(get_url.as_str())
        .send()
        .await
        .expect("GET the presigned URL");
    assert!(get.status().is_success(), "presigned GET: {}", get.status());
    assert_eq!(
        get.bytes().await.expect("the body").as_ref(),
        body.as_slice()
    );

    // A URL whose signature was tampered with is refused.
    let mut forged = get_url.clone();
    let pairs: Vec<(String, String)> = get_url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "X-Amz-Signature" {
                "0".repeat(v.len())
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let refused = http
        .get(forged.as_str())
        .send()
        .await
        .expect("GET the forged URL");
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);

    store.delete(&path).await.expect("delete the object");
}

#[tokio::test]
async fn requests_without_the_keys_are_refused_and_store_nothing() {
    let s3 = Engines::get().s3;
    let path = key("intruder.txt");
    let http = reqwest::Client::new();
    let url = format!("{}/{}/{path}", s3.endpoint, s3.bucket);

    let anonymous_put = http
        .put(&url)
        .body("anonymous")
        .send()
        .await
        .expect("anonymous PUT");
    assert_eq!(anonymous_put.status(), reqwest::StatusCode::FORBIDDEN);
    let anonymous_list = http
        .get(format!("{}/{}", s3.endpoint, s3.bucket))
        .send()
        .await
        .expect("anonymous list");
    assert_eq!(anonymous_list.status(), reqwest::StatusCode::FORBIDDEN);

    let wrong_secret = store("not-the-secret-access-key-0000000000000000");
    let refused = wrong_secret.put(&path, "forged").await;
    assert!(
        matches!(
            refused,
            Err(S3Error::Refused {
                status: reqwest::StatusCode::FORBIDDEN,
                ..
            })
        ),
        "a wrong secret is refused: {refused:?}"
    );

    let nothing = configured_store().head(&path).await;
    assert!(
        matches!(nothing, Err(S3Error::NotFound)),
        "nothing was stored, got {nothing:?}"
    );
}
