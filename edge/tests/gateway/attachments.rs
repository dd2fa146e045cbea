//! Files in messages through the edge: media (in process, on a folder of local disk, or on the
//! stack's SeaweedFS over S3) takes the uploads a send names, every copy of the message carries
//! working links, and deleting the message deletes its files.

use proto::Snowflake;
use proto::permissions::Permissions;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Client, User, WAIT, World};

const SECRET: &str = "a secret the edge and media share in these tests";

/// A world with media, and one edge that knows where media is and signs its links.
pub(crate) struct Files {
    pub(crate) world: World,
    pub(crate) media: testkit::Running,
    pub(crate) http: reqwest::Client,
}

/// A small PNG header: 3 by 2 pixels (media reads the size from it).
pub(crate) fn png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(3u32.to_be_bytes());
    png.extend(2u32.to_be_bytes());
    png.extend([8, 6, 0, 0, 0]);
    png.extend([0u8; 64]);
    png
}

impl Files {
    pub(crate) async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// As [`Files::start`], with more settings for media.
    pub(crate) async fn start_with(media_args: &[String]) -> Self {
        let dir = std::env::temp_dir().join(testkit::unique("edge-media"));
        std::fs::create_dir_all(&dir).expect("a folder for media");
        let local = [
            "--storage=local".to_owned(),
            format!("--storage-dir={}", dir.display()),
        ];
        Self::start_on(&local, media_args).await
    }

    /// As [`Files::start`], media keeping its files on the stack's SeaweedFS (S3), under a
    /// prefix of this test's own.
    pub(crate) async fn start_on_s3() -> Self {
        let s3 = testkit::Stack::get().s3();
        let storage = [
            "--storage=s3".to_owned(),
            format!("--s3-endpoint={}", s3.endpoint),
            format!("--s3-bucket={}", s3.bucket),
            format!("--s3-region={}", s3.region),
            format!("--s3-access-key-id={}", s3.access_key_id),
            format!("--s3-secret-access-key={}", s3.secret_access_key),
            format!("--storage-prefix={}", testkit::unique("edge-media")),
        ];
        Self::start_on(&storage, &[]).await
    }

    /// Media on the store `storage` names, with more settings `media_args`.
    async fn start_on(storage: &[String], media_args: &[String]) -> Self {
        let mut world = World::start(0, &[]).await;
        let config: media::Config = kit::config::try_parse_from(
            [
                "media".to_owned(),
                format!("--nats-url={}", world.engines.nats_url),
                format!("--nats-prefix={}", world.prefix),
                "--http-addr=127.0.0.1:0".to_owned(),
                "--metrics-addr=127.0.0.1:0".to_owned(),
                format!("--auth-url={}", world.auth.url("")),
                format!("--url-signing-secret={SECRET}"),
                "--log-filter=warn".to_owned(),
            ]
            .into_iter()
            .chain(storage.iter().cloned())
            .chain(media_args.iter().cloned()),
        )
        .expect("valid media config");
        let media = testkit::spawn(media::Media::build(config).await.expect("media starts"));
        testkit::wait_ready(&media).await;
        let media_url = format!("--media-url={}", media.url(""));
        let secret = format!("--media-url-signing-secret={SECRET}");
        // Refused sends count against the send budget too; these tests send many.
        world
            .add_edge(
                1,
                &[
                    &media_url,
                    &secret,
                    "--send-rate=100/5s",
                    "--media-max-file-size=4096",
                ],
            )
            .await;
        Self {
            world,
            media,
            http: reqwest::Client::new(),
        }
    }

    /// A URL media handed out, as this test reaches media (the path and query).
    fn on_media(&self, handed_out: &str) -> String {
        let url = url::Url::parse(handed_out).expect("a URL");
        self.media.url(&format!(
            "{}?{}",
            url.path(),
            url.query().unwrap_or_default()
        ))
    }

    /// Asks media for an upload slot: its URL and the upload's name.
    async fn slot(
        &self,
        user: &User,
        channel: Snowflake,
        filename: &str,
        size: usize,
    ) -> (String, String) {
        let response = self
            .http
            .post(
                self.media
                    .url(&format!("/api/v1/channels/{channel}/attachments")),
            )
            .bearer_auth(&user.token)
            .json(&json!({"files": [{"id": "0", "filename": filename, "file_size": size}]}))
            .send()
            .await
            .expect("media answers");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("slots");
        let slot = &body["attachments"][0];
        (
            slot["upload_url"].as_str().unwrap().to_owned(),
            slot["upload_filename"].as_str().unwrap().to_owned(),
        )
    }

    /// Uploads `bytes` as `filename` for `channel`; answers the upload's name.
    pub(crate) async fn upload(
        &self,
        user: &User,
        channel: Snowflake,
        filename: &str,
        bytes: &[u8],
    ) -> String {
        let (url, name) = self.slot(user, channel, filename, bytes.len()).await;
        let put = self
            .http
            .put(self.on_media(&url))
            .body(bytes.to_vec())
            .send()
            .await
            .expect("media answers");
        assert_eq!(put.status(), 204);
        name
    }

    /// GETs a file link a message carried: its status and bytes.
    pub(crate) async fn fetch(&self, url: &str) -> (u16, Vec<u8>) {
        let response = self.http.get(url).send().await.expect("media answers");
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap_or_default().to_vec())
    }

    /// Waits until a link answers `status`.
    async fn until_status(&self, url: &str, status: u16) {
        testkit::eventually("the file link's answer", WAIT * 4, || async {
            (self.fetch(url).await.0 == status).then_some(())
        })
        .await;
    }

    /// A REST send of `body` to `channel` as `user`.
    pub(crate) async fn post(&self, user: &User, channel: Snowflake, body: Value) -> (u16, Value) {
        self.world
            .edge_call(
                0,
                Method::POST,
                &format!("/api/v1/channels/{channel}/messages"),
                user,
                Some(body),
            )
            .await
    }

    /// The channel's newest messages, as `user` reads them.
    pub(crate) async fn history(&self, user: &User, channel: Snowflake) -> Vec<Value> {
        let (status, body) = self
            .world
            .edge_call(
                0,
                Method::GET,
                &format!("/api/v1/channels/{channel}/messages"),
                user,
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["messages"].as_array().unwrap().clone()
    }
}

impl Files {
    /// A multipart send of `payload_json` and `files` ((part name, filename, bytes)).
    async fn post_multipart(
        &self,
        user: &User,
        channel: Snowflake,
        payload: Option<Value>,
        files: &[(&str, &str, &[u8])],
    ) -> (u16, Value) {
        let boundary = "natter-test-boundary-7c1f";
        let mut body: Vec<u8> = Vec::new();
        if let Some(payload) = payload {
            body.extend(
                format!(
                    "--{boundary}\r\ncontent-disposition: form-data; name=\"payload_json\"\r\n\
                 content-type: application/json\r\n\r\n{payload}\r\n"
                )
                .bytes(),
            );
        }
        for (part, filename, bytes) in files {
            body.extend(
                format!(
                    "--{boundary}\r\ncontent-disposition: form-data; name=\"{part}\"; \
                 filename=\"{filename}\"\r\ncontent-type: application/octet-stream\r\n\r\n"
                )
                .bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend(b"\r\n");
        }
        body.extend(format!("--{boundary}--\r\n").bytes());
        let response = self
            .http
            .post(
                self.world
                    .edge_url(0, &format!("/api/v1/channels/{channel}/messages")),
            )
            .bearer_auth(&user.token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .expect("the edge answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

pub(crate) fn named(name: &str, filename: &str) -> Value {
    json!([{"id": "0", "filename": filename, "uploaded_filename": name}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_sent_over_the_gateway_reaches_bob_with_its_size_and_a_link_that_works() {
    let files = Files::start().await;
    let world = &files.world;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let channel = world.channel(&ann, "photos", &[&bob]).await;
    let mut ann_socket = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_socket = Client::connect(&world.gateway(0), &bob).await;
    let bob_session = bob_socket.session_id();
    let bob_seq = bob_socket.ready["d"]["seq"].as_u64().unwrap();
    let photo = png();
    let name = files.upload(&ann, channel, "cat.png", &photo).await;

    // Files alone, without text, as on Discord.
    let ack = ann_socket
        .request(
            json!({"op": 20, "d": {"channel_id": channel, "content": "", "nonce": "p1",
                        "attachments": named(&name, "cat.png")}}),
        )
        .await;
    assert_eq!(ack["op"], 24, "{ack}");
    let sent = &ack["d"]["message"];
    assert_eq!(sent["attachments"][0]["filename"], "cat.png");

    let created = bob_socket.next_event("MESSAGE_CREATE").await;
    let file = &created["d"]["attachments"][0];
    assert_eq!(file["filename"], "cat.png", "{created}");
    assert_eq!(file["size"], photo.len());
    assert_eq!(file["content_type"], "image/png");
    assert_eq!(
        (file["width"].as_u64(), file["height"].as_u64()),
        (Some(3), Some(2))
    );
    let url = file["url"].as_str().unwrap();
    assert_eq!(file["proxy_url"], format!("{url}&variant=preview"));
    assert_eq!(files.fetch(url).await, (200, photo.clone()));

    // Read again later, from the store: the link is signed afresh and works.
    world.persisted().await;
    let history = files.history(&bob, channel).await;
    // By its id: the channel's other messages (the photo sent over REST) may be newer.
    let stored = &history
        .iter()
        .find(|m| m["id"] == sent["id"])
        .unwrap_or_else(|| panic!("the message is in the history: {history:?}"))["attachments"][0];
    assert_eq!(stored["filename"], "cat.png", "{history:?}");
    assert_eq!(stored["width"], 3);
    assert_eq!(
        files.fetch(stored["url"].as_str().unwrap()).await,
        (200, photo.clone())
    );

    // Pinned, it is listed whole among the pins, with a working link.
    let id = sent["id"].as_str().unwrap();
    let pin = format!("/api/v1/channels/{channel}/pins/{id}");
    let (status, body) = world.edge_call(0, Method::PUT, &pin, &ann, None).await;
    assert_eq!(status, 204, "{body}");
    let pins = format!("/api/v1/channels/{channel}/pins");
    let (status, pinned) = world.edge_call(0, Method::GET, &pins, &bob, None).await;
    assert_eq!(status, 200, "{pinned}");
    let pinned_url = pinned[0]["attachments"][0]["url"].as_str().unwrap();
    assert_eq!(files.fetch(pinned_url).await, (200, photo.clone()));

    // An edit keeps the files, and its MESSAGE_UPDATE carries working links.
    let path = format!("/api/v1/channels/{channel}/messages/{id}");
    let edit = |content: &str| {
        world.edge_call(
            0,
            Method::PATCH,
            &path,
            &ann,
            Some(json!({ "content": content })),
        )
    };
    let (status, edited) = edit("a cat").await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["attachments"][0]["filename"], "cat.png", "{edited}");
    let mut bob_live = Client::connect(&world.gateway(0), &bob).await;
    assert_eq!(edit("a cat, again").await.0, 200);
    let update = bob_live.next_event("MESSAGE_UPDATE").await;
    let updated_url = update["d"]["attachments"][0]["url"].as_str().unwrap();
    assert_eq!(files.fetch(updated_url).await, (200, photo.clone()));

    // A resume's replay carries a working link too.
    drop(bob_socket);
    let (_bob_again, replayed) =
        Client::resume(&world.gateway(0), &bob, &bob_session, bob_seq).await;
    let replay = replayed
        .iter()
        .find(|f| f["t"] == "MESSAGE_CREATE")
        .expect("the photo is replayed");
    let replayed_url = replay["d"]["attachments"][0]["url"].as_str().unwrap();
    assert_eq!(files.fetch(replayed_url).await, (200, photo));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_naming_an_upload_it_may_not_take_is_refused_and_nothing_is_stored() {
    let files = Files::start().await;
    let world = &files.world;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let channel = world.channel(&ann, "photos", &[&bob]).await;
    let other = world.channel(&ann, "elsewhere", &[]).await;
    let mut ann_socket = Client::connect(&world.gateway(0), &ann).await;

    // Bob's upload, in ann's message.
    let bobs = files.upload(&bob, channel, "bob.png", &png()).await;
    let refused = ann_socket
        .request(
            json!({"op": 20, "d": {"channel_id": channel, "content": "mine now",
                        "nonce": "r1", "attachments": named(&bobs, "bob.png")}}),
        )
        .await;
    assert_eq!(refused["op"], 25, "{refused}");
    assert_eq!(refused["d"]["code"], "forbidden", "{refused}");
    assert!(
        refused["d"]["message"]
            .as_str()
            .unwrap()
            .starts_with("attachments.0"),
        "{refused}"
    );

    // An upload for another channel.
    let elsewhere = files.upload(&ann, other, "a.png", &png()).await;
    let (status, body) = files
        .post(
            &ann,
            channel,
            json!({"content": "x", "attachments": named(&elsewhere, "a.png")}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["fields"]["attachments.0"].is_string(), "{body}");

    // A slot never uploaded to, and a name that was never handed out.
    let (_, unfinished) = files.slot(&ann, channel, "later.png", 10).await;
    let (status, body) = files
        .post(
            &ann,
            channel,
            json!({"content": "x", "attachments": named(&unfinished, "later.png")}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = files
        .post(
            &ann,
            channel,
            json!({"content": "x", "attachments": named("nothing", "x.png")}),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // One good upload and one bad: neither is taken, so the good one still sends afterwards.
    let good = files.upload(&ann, channel, "good.png", &png()).await;
    let both = json!([
        {"id": "0", "filename": "good.png", "uploaded_filename": good},
        {"id": "1", "filename": "bob.png", "uploaded_filename": bobs},
    ]);
    let (status, body) = files
        .post(&ann, channel, json!({"content": "x", "attachments": both}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["fields"]["attachments.1"].is_string(), "{body}");
    let (status, body) = files
        .post(
            &ann,
            channel,
            json!({"content": "x", "attachments": named(&good, "good.png")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Used once, never twice.
    let (status, body) = files
        .post(
            &ann,
            channel,
            json!({"content": "again", "attachments": named(&good, "good.png")}),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Eleven files are refused before media is asked.
    let eleven: Vec<Value> = (0..11)
        .map(|i| json!({"id": i.to_string(), "filename": "a.png", "uploaded_filename": good}))
        .collect();
    let (status, body) = files
        .post(
            &ann,
            channel,
            json!({"content": "x", "attachments": eleven}),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Only the message that took its file was stored.
    world.persisted().await;
    let history = files.history(&ann, channel).await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["attachments"][0]["filename"], "good.png");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_message_deletes_its_files_and_its_links_answer_404() {
    let files = Files::start().await;
    let world = &files.world;
    let ann = world.sign_up("ann").await;
    let channel = world.channel(&ann, "photos", &[]).await;
    let name = files.upload(&ann, channel, "cat.png", &png()).await;
    let (status, sent) = files
        .post(
            &ann,
            channel,
            json!({"content": "look", "attachments": named(&name, "cat.png")}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let url = sent["attachments"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(files.fetch(&url).await.0, 200);
    let id = sent["id"].as_str().unwrap();
    let (status, body) = world
        .edge_call(
            0,
            Method::DELETE,
            &format!("/api/v1/channels/{channel}/messages/{id}"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    files.until_status(&url, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_channel_refuses_files_from_who_lacks_attach_files() {
    let files = Files::start().await;
    let world = &files.world;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, _) = world.guild(&ann, "club").await;
    world.join_guild(guild, &ann, &bob).await;
    let attach = Permissions::ATTACH_FILES.bits().to_string();
    let text_only = world
        .guild_channel(
            guild,
            &ann,
            "text-only",
            json!({"permission_overwrites": [{"id": guild.to_string(), "type": 0, "deny": attach}]}),
        )
        .await;
    let mut bob_socket = Client::connect(&world.gateway(0), &bob).await;
    let attachments = named(&format!("{text_only}/{}/n/a.png", bob.id), "a.png");
    let refused = bob_socket
        .request(
            json!({"op": 20, "d": {"channel_id": text_only, "content": "x", "nonce": "g1",
                        "attachments": attachments}}),
        )
        .await;
    assert_eq!(refused["d"]["code"], "forbidden", "{refused}");
    assert!(
        refused["d"]["message"]
            .as_str()
            .unwrap()
            .contains("attach files"),
        "{refused}"
    );
    let (status, body) = files
        .post(
            &bob,
            text_only,
            json!({"content": "x", "attachments": attachments}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("attach files"),
        "{body}"
    );
    // Text still goes.
    let ack = bob_socket.send(text_only, "just words", "g2").await;
    assert_eq!(ack["op"], 24, "{ack}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_sends_files_in_one_multipart_request_and_bad_parts_are_refused() {
    let files = Files::start().await;
    let world = &files.world;
    let ann = world.sign_up("ann").await;
    let channel = world.channel(&ann, "photos", &[]).await;
    let photo = png();
    let notes = b"milk, eggs, violet kettle drums".to_vec();
    let (status, sent) = files
        .post_multipart(
            &ann,
            channel,
            Some(json!({"content": "two files", "nonce": "m1"})),
            &[
                ("files[0]", "cat.png", &photo),
                ("files[1]", "notes.txt", &notes),
            ],
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["content"], "two files");
    let sent_files = sent["attachments"].as_array().unwrap();
    assert_eq!(sent_files.len(), 2, "{sent}");
    assert_eq!(sent_files[0]["filename"], "cat.png");
    assert_eq!(sent_files[0]["width"], 3);
    assert_eq!(sent_files[1]["filename"], "notes.txt");
    assert_eq!(sent_files[1]["content_type"], "text/plain; charset=utf-8");
    assert_eq!(
        files.fetch(sent_files[0]["url"].as_str().unwrap()).await,
        (200, photo.clone())
    );
    assert_eq!(
        files.fetch(sent_files[1]["url"].as_str().unwrap()).await,
        (200, notes.clone())
    );

    // Files alone, without payload_json.
    let (status, body) = files
        .post_multipart(&ann, channel, None, &[("files[0]", "again.png", &photo)])
        .await;
    assert_eq!(status, 200, "{body}");

    // Over the edge's limit (4096 bytes here), empty, a path in the name, a part of another name.
    let big = vec![7u8; 5000];
    let (status, body) = files
        .post_multipart(&ann, channel, None, &[("files[0]", "big.bin", &big)])
        .await;
    assert_eq!(status, 413, "{body}");
    let (status, body) = files
        .post_multipart(&ann, channel, None, &[("files[0]", "empty.txt", b"")])
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["fields"]["files[0]"].is_string(), "{body}");
    let (status, body) = files
        .post_multipart(
            &ann,
            channel,
            None,
            &[("files[0]", "../etc/passwd", &notes)],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = files
        .post_multipart(&ann, channel, None, &[("avatar", "a.png", &photo)])
        .await;
    assert_eq!(status, 400, "{body}");
    let eleven: Vec<(String, &str, &[u8])> = (0..11)
        .map(|i| (format!("files[{i}]"), "a.txt", notes.as_slice()))
        .collect();
    let eleven: Vec<(&str, &str, &[u8])> = eleven
        .iter()
        .map(|(p, f, b)| (p.as_str(), *f, *b))
        .collect();
    let (status, body) = files.post_multipart(&ann, channel, None, &eleven).await;
    assert_eq!(status, 400, "{body}");

    world.persisted().await;
    assert_eq!(files.history(&ann, channel).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_s3_a_scripts_files_go_straight_to_the_store_and_come_back_through_their_links() {
    // The edge PUTs each file of a multipart send to the presigned URL media hands out, so media
    // never holds the bytes; the message's links then serve them from the store.
    let files = Files::start_on_s3().await;
    let world = &files.world;
    let ann = world.sign_up("ann").await;
    let channel = world.channel(&ann, "photos", &[]).await;
    let photo = png();
    let notes = "milk, eggs, violet kettle drums (été)".as_bytes().to_vec();
    let (status, sent) = files
        .post_multipart(
            &ann,
            channel,
            Some(json!({"content": "two files", "nonce": "s3"})),
            &[
                ("files[0]", "cat photo.png", &photo),
                ("files[1]", "liste #1 été.txt", &notes),
            ],
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let sent_files = sent["attachments"].as_array().unwrap();
    assert_eq!(sent_files.len(), 2, "{sent}");
    assert_eq!(sent_files[0]["filename"], "cat photo.png");
    assert_eq!(sent_files[0]["width"], 3);
    assert_eq!(sent_files[1]["filename"], "liste #1 été.txt");
    assert_eq!(sent_files[1]["size"], notes.len());
    assert_eq!(
        files.fetch(sent_files[0]["url"].as_str().unwrap()).await,
        (200, photo)
    );
    assert_eq!(
        files.fetch(sent_files[1]["url"].as_str().unwrap()).await,
        (200, notes)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_channel_or_a_server_deletes_every_file_sent_in_it() {
    let files = Files::start().await;
    let world = &files.world;
    let ann = world.sign_up("ann").await;
    let group = world.channel(&ann, "photos", &[]).await;
    let (guild, general) = world.guild(&ann, "club").await;
    let mut links = Vec::new();
    for channel in [group, general] {
        let name = files.upload(&ann, channel, "cat.png", &png()).await;
        let (status, sent) = files
            .post(
                &ann,
                channel,
                json!({"content": "", "attachments": named(&name, "cat.png")}),
            )
            .await;
        assert_eq!(status, 200, "{sent}");
        let url = sent["attachments"][0]["url"].as_str().unwrap().to_owned();
        assert_eq!(files.fetch(&url).await.0, 200);
        links.push(url);
    }
    let (status, body) = world
        .auth_call(
            Method::DELETE,
            &format!("/api/v1/channels/{group}"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    files.until_status(&links[0], 404).await;
    assert_eq!(
        files.fetch(&links[1]).await.0,
        200,
        "another channel's files stay"
    );
    let (status, body) = world
        .auth_call(
            Method::DELETE,
            &format!("/api/v1/guilds/{guild}"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    files.until_status(&links[1], 404).await;
}

/// A photo as a phone takes it: `width` by `height`, with EXIF naming where it was taken, and
/// more metadata than media reads when the message takes it (so its size comes with processing).
fn phone_photo(width: u32, height: u32) -> Vec<u8> {
    let image = image::DynamicImage::new_rgb8(width, height);
    let mut plain = Vec::new();
    image
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new(&mut plain))
        .unwrap();
    let mut exif = b"Exif\0\0MM\x00\x2a\x00\x00\x00\x08".to_vec();
    exif.extend(b"GPS 52.5200N 13.4050E");
    exif.resize(60_000, b' ');
    let mut photo = plain[..2].to_vec();
    for block in [
        &exif[..],
        b"http://ns.adobe.com/xap/1.0/\0GPS 52.5200N 13.4050E",
    ] {
        photo.extend([0xFF, 0xE1]);
        photo.extend(u16::try_from(block.len() + 2).unwrap().to_be_bytes());
        photo.extend(block);
    }
    let mut comment = vec![b'x'; 20_000];
    comment[..21].copy_from_slice(b"GPS 52.5200N 13.4050E");
    photo.extend([0xFF, 0xFE]);
    photo.extend(u16::try_from(comment.len() + 2).unwrap().to_be_bytes());
    photo.extend(&comment);
    photo.extend(&plain[2..]);
    photo
}

/// A PNG that declares 100,000 by 100,000 pixels (40 GB decoded) in a few bytes.
fn bomb() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(100_000u32.to_be_bytes());
    png.extend(100_000u32.to_be_bytes());
    png.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
    png.extend([0u8; 64]);
    png
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_photo_is_served_without_its_location_and_bob_sees_its_size_in_an_update() {
    let files = Files::start().await;
    let world = &files.world;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let channel = world.channel(&ann, "photos", &[&bob]).await;
    let mut bob_socket = Client::connect(&world.gateway(0), &bob).await;

    // A bomb first: processing refuses it and goes on to the next image.
    let name = files.upload(&ann, channel, "bomb.png", &bomb()).await;
    let (status, body) = files
        .post(
            &ann,
            channel,
            json!({"content": "", "attachments": named(&name, "bomb.png")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let photo = phone_photo(64, 48);
    let name = files.upload(&ann, channel, "beach.jpg", &photo).await;
    let (status, sent) = files
        .post(
            &ann,
            channel,
            json!({"content": "", "attachments": named(&name, "beach.jpg")}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let id = sent["id"].clone();
    // Its metadata went as media took it: the link handed out with the message never serves
    // the location, not even before processing finishes; and its header, behind 80 KB of
    // metadata in the upload, is read at once.
    let (status, served_at_once) = files
        .fetch(sent["attachments"][0]["url"].as_str().unwrap())
        .await;
    assert_eq!(status, 200);
    assert!(
        !served_at_once.windows(3).any(|w| w == b"GPS"),
        "the photo is served with its location before processing"
    );
    assert_eq!(
        sent["attachments"][0]["size"],
        served_at_once.len(),
        "{sent}"
    );
    assert_eq!(sent["attachments"][0]["width"], 64, "{sent}");

    let update = loop {
        let update = bob_socket.next_event("MESSAGE_UPDATE").await;
        if update["d"]["id"] == id {
            break update;
        }
    };
    let file = &update["d"]["attachments"][0];
    assert_eq!(
        (file["width"].as_u64(), file["height"].as_u64()),
        (Some(64), Some(48)),
        "{update}"
    );
    assert!(
        update["d"]["edited_at"].is_null(),
        "processing is not an edit: {update}"
    );
    let (status, served) = files.fetch(file["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(
        !served.windows(3).any(|w| w == b"GPS"),
        "the photo is served with its location"
    );
    assert_eq!(file["size"], served.len());
    let shown = image::load_from_memory(&served).expect("still a JPEG");
    assert_eq!((shown.width(), shown.height()), (64, 48));
    let (status, preview) = files.fetch(file["proxy_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(image::load_from_memory(&preview).is_ok());

    // The size is stored: history has it.
    world.persisted().await;
    let history = files.history(&bob, channel).await;
    let stored = history.iter().find(|m| m["id"] == id).expect("the photo");
    assert_eq!(stored["attachments"][0]["width"], 64, "{stored}");
}
