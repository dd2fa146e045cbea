//! Discord's upload flow on both stores, and every bad input it must refuse with nothing stored.

use std::time::Duration;

use media::storage::{Storage, StorageError};
use object_store::path::Path;
use serde_json::json;

use crate::support::World;

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

        let (status, body) = world
            .put(slot["upload_url"].as_str().unwrap(), vec![7; size])
            .await;
        assert_eq!(status, 204, "{:?}: {body}", config.backend);
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

        let (url, key) = slot(0);
        let (status, answer) = world.put(&url, vec![1; 101]).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (413, Some("payload_too_large")),
            "{answer}"
        );
        assert!(matches!(
            storage.stat(&key).await,
            Err(StorageError::NotFound)
        ));

        let (url, key) = slot(1);
        let (status, answer) = world.put(&url, vec![1; 99]).await;
        assert_eq!(status, 400, "{answer}");
        assert!(matches!(
            storage.stat(&key).await,
            Err(StorageError::NotFound)
        ));

        let (url, key) = slot(2);
        assert_eq!(world.put(&url, vec![1; 100]).await.0, 204);
        let (status, answer) = world.put(&url, vec![2; 100]).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (409, Some("conflict")),
            "{answer}"
        );
        let bytes = storage.get(&key, Some(0..1)).await.unwrap();
        assert_eq!(bytes.size, 100);

        // A changed size, or another file's name, is not what was signed.
        for forged in [
            url.replace("size=100", "size=1000"),
            url.replace("/c%2Ebin?", "/d%2Ebin?"),
        ] {
            assert_ne!(forged, url);
            let (status, answer) = world.put(&forged, vec![1; 100]).await;
            assert_eq!(
                (status, answer["code"].as_str()),
                (403, Some("forbidden")),
                "{answer}"
            );
        }
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
        assert_eq!(
            world
                .put(slot["upload_url"].as_str().unwrap(), b"hello".to_vec())
                .await
                .0,
            204
        );
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
