//! Discord's upload flow on both stores, and every bad input it must refuse with nothing stored.

use std::time::Duration;

use media::storage::{Backend, Storage, StorageError};
use object_store::path::Path;
use serde_json::json;

use crate::support::{World, presigned};

/// Where an upload named `upload_filename` is kept.
fn upload_key(upload_filename: &str) -> Path {
    Path::from_iter(std::iter::once("uploads").chain(upload_filename.split('/')))
}

#[tokio::test]
async fn ann_uploads_a_photo_in_two_steps_on_either_store() {
    let (_dir, configs) = super::backends();
    for config in configs {
        let world = World::start(config.clone(), &[]).await;
        let ann = world.sign_up("ann").await;
        let channel = world.channel(&ann).await;
        let size = 6 * 1024 * 1024 + 7;
        let (status, body) = world
            .slots(
                &ann,
                &channel,
                json!([{"id": "0", "filename": "cat photo.jpg", "file_size": size}]),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let slot = &body["attachments"][0];
        assert_eq!(slot["id"], "0");
        let upload_filename = slot["upload_filename"].as_str().unwrap();
        assert!(
            upload_filename.starts_with(&format!("{channel}/{}/", ann.id)),
            "{upload_filename}"
        );
        assert!(upload_filename.ends_with("/cat photo.jpg"));
        // On S3 the bytes go straight to the store, presigned with the announced size.
        let upload_url = url::Url::parse(slot["upload_url"].as_str().unwrap()).unwrap();
        if config.backend == Backend::S3 {
            assert!(presigned(&upload_url), "{upload_url}");
            let s3 = testkit::Stack::get().s3();
            assert!(
                upload_url.as_str().starts_with(&s3.endpoint),
                "{upload_url}"
            );
            let signed = upload_url
                .query_pairs()
                .find(|(name, _)| name == "X-Amz-SignedHeaders")
                .map(|(_, value)| value.into_owned());
            assert_eq!(
                signed.as_deref(),
                Some("content-length;host"),
                "{upload_url}"
            );
            // A page on another origin may PUT there (SeaweedFS answers CORS for any origin).
            let preflight = world
                .http
                .request(reqwest::Method::OPTIONS, upload_url.as_str())
                .header("origin", "http://127.0.0.1:8081")
                .header("access-control-request-method", "PUT")
                .header("access-control-request-headers", "content-type")
                .send()
                .await
                .expect("the store answers");
            assert_eq!(preflight.status(), 200);
            assert!(
                preflight
                    .headers()
                    .contains_key("access-control-allow-origin"),
                "{:?}",
                preflight.headers()
            );
        } else {
            assert!(!presigned(&upload_url), "{upload_url}");
        }

        let (status, body) = world
            .put(slot["upload_url"].as_str().unwrap(), vec![7; size])
            .await;
        let expected = match config.backend {
            Backend::Local => 204,
            Backend::S3 => 200,
        };
        assert_eq!(status, expected, "{:?}: {body}", config.backend);
        let storage = Storage::open(&config).unwrap();
        let stat = storage
            .stat(&upload_key(upload_filename))
            .await
            .expect("the upload is stored");
        assert_eq!(stat.size, size as u64);
    }
}

#[tokio::test]
async fn bad_slot_requests_are_refused_with_the_reason() {
    let (_dir, configs) = super::backends();
    let world = World::start(configs[0].clone(), &["--max-file-size=1000"]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let channel = world.channel(&ann).await;
    let file = |name: &str, size: u64| json!([{"id": "0", "filename": name, "file_size": size}]);

    let (status, body) = world.slots(&ann, &channel, file("big.bin", 1001)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );
    let (status, body) = world.slots(&ann, &channel, file("empty.txt", 0)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["fields"]["files.0.file_size"].is_string(), "{body}");
    let long = "a".repeat(300);
    for name in [
        "../../etc/passwd",
        "a\\b",
        "bell\u{7}.txt",
        "photo\u{202E}gnp.exe",
        long.as_str(),
    ] {
        let (status, body) = world.slots(&ann, &channel, file(name, 10)).await;
        assert_eq!(status, 400, "{name:?}: {body}");
        assert!(
            body["fields"]["files.0.filename"].is_string(),
            "{name:?}: {body}"
        );
    }
    let eleven: Vec<_> = (0..11)
        .map(|i| json!({"id": i.to_string(), "filename": "a.txt", "file_size": 1}))
        .collect();
    let (status, body) = world.slots(&ann, &channel, json!(eleven)).await;
    assert_eq!(status, 400, "{body}");

    // A channel bob cannot see is one that does not exist, for him.
    let (status, body) = world.slots(&bob, &channel, file("a.txt", 10)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let nobody = crate::support::User {
        id: "1".into(),
        token: "not a token".into(),
    };
    let (status, _) = world.slots(&nobody, &channel, file("a.txt", 10)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing_stored() {
    let (_dir, configs) = super::backends();
    for config in configs {
        let world = World::start(config.clone(), &[]).await;
        let storage = Storage::open(&config).unwrap();
        let ann = world.sign_up("ann").await;
        let channel = world.channel(&ann).await;
        let (_, body) = world
            .slots(
                &ann,
                &channel,
                json!([
                    {"id": "long", "filename": "a.bin", "file_size": 100},
                    {"id": "short", "filename": "b.bin", "file_size": 100},
                    {"id": "twice", "filename": "c.bin", "file_size": 100},
                ]),
            )
            .await;
        let slot = |i: usize| {
            let s = &body["attachments"][i];
            (
                s["upload_url"].as_str().unwrap().to_owned(),
                upload_key(s["upload_filename"].as_str().unwrap()),
            )
        };

        // Media answers with its JSON errors; the store (S3) with its own, the signature it was
        // handed not matching a request of another size or for another key.
        let refused =
            |status: u16, answer: &serde_json::Value, code: &str, media_status: u16| match config
                .backend
            {
                Backend::Local => assert_eq!(
                    (status, answer["code"].as_str()),
                    (media_status, Some(code)),
                    "{answer}"
                ),
                Backend::S3 => assert_eq!(status, 403, "the store refuses it"),
            };

        let (url, key) = slot(0);
        let (status, answer) = world.put(&url, vec![1; 101]).await;
        refused(status, &answer, "payload_too_large", 413);
        assert!(matches!(
            storage.stat(&key).await,
            Err(StorageError::NotFound)
        ));

        let (url, key) = slot(1);
        let (status, answer) = world.put(&url, vec![1; 99]).await;
        refused(status, &answer, "validation_failed", 400);
        assert!(matches!(
            storage.stat(&key).await,
            Err(StorageError::NotFound)
        ));

        // A second PUT: media refuses it; the store takes it in place of the first (the same
        // person's file, of the same size, not yet in a message), so one file is there either way.
        let (url, key) = slot(2);
        assert!((200..300).contains(&world.put(&url, vec![1; 100]).await.0));
        let (status, answer) = world.put(&url, vec![2; 100]).await;
        match config.backend {
            Backend::Local => assert_eq!(
                (status, answer["code"].as_str()),
                (409, Some("conflict")),
                "{answer}"
            ),
            Backend::S3 => assert_eq!(status, 200),
        }
        let bytes = storage.get(&key, Some(0..1)).await.unwrap();
        assert_eq!(bytes.size, 100);

        // A changed size, or another file's name, is not what was signed.
        let forgeries = match config.backend {
            Backend::Local => vec![
                url.replace("size=100", "size=1000"),
                url.replace("/c%2Ebin?", "/d%2Ebin?"),
            ],
            Backend::S3 => vec![
                url.replace("/c.bin?", "/d.bin?"),
                url.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200"),
            ],
        };
        for forged in forgeries {
            assert_ne!(forged, url);
            let (status, answer) = world.put(&forged, vec![1; 100]).await;
            refused(status, &answer, "forbidden", 403);
        }
        let d = Path::from_iter(key.parts().take(4)).join("d.bin");
        assert!(matches!(
            storage.stat(&d).await,
            Err(StorageError::NotFound)
        ));
    }
}

#[tokio::test]
async fn an_expired_upload_link_stores_nothing() {
    let (_dir, configs) = super::backends();
    for config in configs {
        let world = World::start(config.clone(), &["--upload-url-ttl=1s"]).await;
        let storage = Storage::open(&config).unwrap();
        let ann = world.sign_up("ann").await;
        let channel = world.channel(&ann).await;
        let (_, body) = world
            .slots(
                &ann,
                &channel,
                json!([{"id": "0", "filename": "late.txt", "file_size": 4}]),
            )
            .await;
        let slot = &body["attachments"][0];
        let url = slot["upload_url"].as_str().unwrap();
        let key = upload_key(slot["upload_filename"].as_str().unwrap());
        // Signatures count whole seconds: past two, the link has certainly expired.
        let handed_out = std::time::Instant::now();
        testkit::eventually("two seconds to pass", Duration::from_secs(10), || async {
            (handed_out.elapsed() > Duration::from_millis(2100)).then_some(())
        })
        .await;
        let (status, answer) = world.put(url, b"late".to_vec()).await;
        assert_eq!(status, 403, "{:?}: {answer}", config.backend);
        assert!(matches!(
            storage.stat(&key).await,
            Err(StorageError::NotFound)
        ));
    }
}

#[tokio::test]
async fn a_stored_upload_over_the_limit_is_never_taken() {
    // A store that did not check a presigned upload's size (S3 refuses it; another might not):
    // the claim refuses the file and deletes it.
    let (_dir, configs) = super::backends();
    for config in configs {
        let world = World::start(config.clone(), &["--max-file-size=1000"]).await;
        let storage = Storage::open(&config).unwrap();
        let ann = world.sign_up("ann").await;
        let channel = world.channel(&ann).await;
        let upload_filename = format!("{channel}/{}/0123abcd/big.bin", ann.id);
        let key = upload_key(&upload_filename);
        storage
            .put(&key, bytes::Bytes::from(vec![0; 1001]))
            .await
            .unwrap();
        let answer = world
            .claim(
                &channel,
                &ann,
                1,
                json!([{"id": "0", "filename": "big.bin", "uploaded_filename": upload_filename}]),
            )
            .await;
        assert_eq!(answer["code"], "payload_too_large", "{answer}");
        assert_eq!(answer["field"], "attachments.0", "{answer}");
        assert!(matches!(
            storage.stat(&key).await,
            Err(StorageError::NotFound)
        ));
    }
}

#[tokio::test]
async fn an_upload_no_message_takes_is_swept() {
    let (_dir, configs) = super::backends();
    for config in configs {
        let world = World::start(
            config.clone(),
            &["--upload-ttl=1s", "--sweep-interval=200ms"],
        )
        .await;
        let storage = Storage::open(&config).unwrap();
        let ann = world.sign_up("ann").await;
        let channel = world.channel(&ann).await;
        let (_, body) = world
            .slots(
                &ann,
                &channel,
                json!([{"id": "0", "filename": "left.txt", "file_size": 5}]),
            )
            .await;
        let slot = &body["attachments"][0];
        let (status, answer) = world
            .put(slot["upload_url"].as_str().unwrap(), b"hello".to_vec())
            .await;
        assert!((200..300).contains(&status), "{status}: {answer}");
        let key = upload_key(slot["upload_filename"].as_str().unwrap());
        testkit::eventually(
            "the orphaned upload to be swept",
            Duration::from_secs(30),
            || async {
                matches!(storage.stat(&key).await, Err(StorageError::NotFound)).then_some(())
            },
        )
        .await;
    }
}

#[tokio::test]
async fn in_a_servers_channel_attaching_takes_attach_files() {
    let (_dir, configs) = super::backends();
    let world = World::start(configs[0].clone(), &[]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (status, guild) = world
        .auth_call(
            reqwest::Method::POST,
            "/api/v1/guilds",
            Some(&ann.token),
            json!({"name": "Book club"}),
        )
        .await;
    assert_eq!(status, 201, "{guild}");
    let guild_id = guild["id"].as_str().unwrap();
    let general = guild["channels"][0]["id"].as_str().unwrap().to_owned();
    let (status, invite) = world
        .auth_call(
            reqwest::Method::POST,
            &format!("/api/v1/guilds/{guild_id}/invites"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{invite}");
    let code = invite["code"].as_str().unwrap();
    let (status, joined) = world
        .auth_call(
            reqwest::Method::POST,
            &format!("/api/v1/invites/{code}"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert!(status == 200 || status == 201, "{joined}");
    let file = json!([{"id": "0", "filename": "a.png", "file_size": 10}]);
    let (status, body) = world.slots(&bob, &general, file.clone()).await;
    assert_eq!(status, 200, "a member may attach by default: {body}");

    // @everyone (the server's id) loses ATTACH_FILES in #general.
    let (status, body) = world
        .auth_call(
            reqwest::Method::PUT,
            &format!("/api/v1/channels/{general}/permissions/{guild_id}"),
            Some(&ann.token),
            json!({"type": 0, "allow": "0", "deny": (1u64 << 15).to_string()}),
        )
        .await;
    assert!(status == 204 || status == 200, "{status}: {body}");
    let (status, body) = world.slots(&bob, &general, file.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    // The owner keeps every permission.
    assert_eq!(world.slots(&ann, &general, file).await.0, 200);
}
