//! A message's files: taken from uploads once, served to holders of signed URLs with safe
//! headers, and gone with the message.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::World;

/// The first bytes of a 640x480 PNG (its header) and then some.
fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend(640u32.to_be_bytes());
    bytes.extend(480u32.to_be_bytes());
    bytes.extend([8, 6, 0, 0, 0]);
    bytes.extend((0..100u8).collect::<Vec<_>>());
    bytes
}

fn named(filename: &str, uploaded: &str) -> Value {
    json!({"id": "0", "filename": filename, "uploaded_filename": uploaded})
}

#[tokio::test]
async fn a_message_takes_its_uploads_and_they_are_served_with_safe_headers() {
    let (_dir, configs) = super::backends();
    for config in configs {
        let world = World::start(config.clone(), &[]).await;
        let ann = world.sign_up("ann").await;
        let channel = world.channel(&ann).await;
        // Named .txt, really a PNG; named .png, really HTML; an SVG.
        let photo = world.upload(&ann, &channel, "photo.txt", png()).await;
        let page = world
            .upload(
                &ann,
                &channel,
                "page.png",
                b"<html><script>alert(1)</script></html>".to_vec(),
            )
            .await;
        let svg = world
            .upload(
                &ann,
                &channel,
                "logo.svg",
                br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#
                    .to_vec(),
            )
            .await;
        let answer = world
            .claim(
                &channel,
                &ann,
                1 << 30,
                json!([
                    named("photo.txt", &photo),
                    named("page.png", &page),
                    named("logo.svg", &svg)
                ]),
            )
            .await;
        assert_eq!(answer["outcome"], "taken", "{:?}: {answer}", config.backend);
        let files = answer["attachments"].as_array().unwrap();
        assert_eq!(files[0]["content_type"], "image/png");
        assert_eq!(files[0]["size"], png().len());
        // Sized at once, so clients reserve its space before it loads.
        assert_eq!(
            (&files[0]["width"], &files[0]["height"]),
            (&json!(640), &json!(480))
        );
        assert!(files[1]["width"].is_null(), "{answer}");
        assert_ne!(files[1]["content_type"], "image/png", "{answer}");

        let response = world.fetch(files[0]["url"].as_str().unwrap(), &[]).await;
        assert_eq!(response.status(), 200);
        let header =
            |r: &reqwest::Response, name: &str| r.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header(&response, "content-type"), "image/png");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert!(header(&response, "content-disposition").starts_with("inline;"));
        assert_eq!(response.bytes().await.unwrap(), png());

        for file in &files[1..] {
            let response = world.fetch(file["url"].as_str().unwrap(), &[]).await;
            assert_eq!(response.status(), 200);
            let disposition = header(&response, "content-disposition");
            assert!(
                disposition.starts_with("attachment;"),
                "{file}: {disposition}"
            );
            assert!(
                !header(&response, "content-type").contains("html"),
                "{file}"
            );
            assert!(!header(&response, "content-type").contains("svg"), "{file}");
        }

        // A video player's range.
        let response = world
            .fetch(files[0]["url"].as_str().unwrap(), &[("range", "bytes=1-3")])
            .await;
        assert_eq!(response.status(), 206);
        assert_eq!(
            header(&response, "content-range"),
            format!("bytes 1-3/{}", png().len())
        );
        assert_eq!(response.bytes().await.unwrap(), &png()[1..4]);
        let response = world
            .fetch(
                files[0]["url"].as_str().unwrap(),
                &[("range", "bytes=5000-")],
            )
            .await;
        assert_eq!(response.status(), 416);

        // Any change to the URL is refused.
        let url = files[0]["url"].as_str().unwrap();
        let tampered = url.replace("hm=", "hm=00");
        assert_eq!(world.fetch(&tampered, &[]).await.status(), 403);
        let other = url.replacen(
            &format!("/{}/", 1u64 << 30),
            &format!("/{}/", (1u64 << 30) + 1),
            1,
        );
        assert_ne!(other, url);
        assert_eq!(world.fetch(&other, &[]).await.status(), 403);
    }
}

#[tokio::test]
async fn an_upload_goes_into_one_message_of_its_uploader_in_its_channel_only() {
    let (_dir, configs) = super::backends();
    for config in configs {
        let world = World::start(config.clone(), &[]).await;
        let ann = world.sign_up("ann").await;
        let bob = world.sign_up("bob").await;
        let channel = world.channel(&ann).await;
        let other_channel = world.channel(&ann).await;
        let upload = world.upload(&ann, &channel, "a.png", png()).await;

        // Bob names ann's upload: not his.
        let answer = world
            .claim(&channel, &bob, 1, json!([named("a.png", &upload)]))
            .await;
        assert_eq!(
            (answer["outcome"].as_str(), answer["code"].as_str()),
            (Some("refused"), Some("forbidden")),
            "{answer}"
        );
        // Ann, in another channel: not for that channel.
        let answer = world
            .claim(&other_channel, &ann, 2, json!([named("a.png", &upload)]))
            .await;
        assert_eq!(answer["code"], "forbidden", "{answer}");
        // An upload that never happened.
        let missing = format!(
            "{channel}/{}/00000000000000000000000000000000/a.png",
            ann.id
        );
        let answer = world
            .claim(&channel, &ann, 3, json!([named("a.png", &missing)]))
            .await;
        assert_eq!(
            (answer["code"].as_str(), answer["field"].as_str()),
            (Some("validation_failed"), Some("attachments.0")),
            "{answer}"
        );
        // A name with a path in it.
        let answer = world
            .claim(&channel, &ann, 4, json!([named("../a.png", &upload)]))
            .await;
        assert_eq!(answer["code"], "validation_failed", "{answer}");

        // Ann's message takes it; a second message cannot.
        let answer = world
            .claim(&channel, &ann, 5, json!([named("a.png", &upload)]))
            .await;
        assert_eq!(answer["outcome"], "taken", "{answer}");
        let answer = world
            .claim(&channel, &ann, 6, json!([named("a.png", &upload)]))
            .await;
        assert_eq!(answer["outcome"], "refused", "{answer}");
    }
}

#[tokio::test]
async fn deleting_a_message_deletes_its_files_and_their_urls_stop_working() {
    let (_dir, configs) = super::backends();
    for config in configs {
        let world = World::start(config.clone(), &[]).await;
        let ann = world.sign_up("ann").await;
        let channel = world.channel(&ann).await;
        let upload = world.upload(&ann, &channel, "a.png", png()).await;
        let answer = world
            .claim(&channel, &ann, 7, json!([named("a.png", &upload)]))
            .await;
        let url = answer["attachments"][0]["url"].as_str().unwrap().to_owned();
        assert_eq!(world.fetch(&url, &[]).await.status(), 200);

        let forget = json!({"channel_id": channel, "message_id": "7"});
        world
            .nats
            .publish(
                format!("{}.media.forget", world.prefix),
                serde_json::to_vec(&forget).unwrap().into(),
            )
            .await
            .unwrap();
        testkit::eventually(
            "the deleted message's file to be gone",
            Duration::from_secs(30),
            || async { (world.fetch(&url, &[]).await.status() == 404).then_some(()) },
        )
        .await;
    }
}
