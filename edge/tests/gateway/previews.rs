//! Link previews through the edge: media (in process) fetches a local fixture site that its
//! test-only allowance lets through, and both members see the preview arrive as MESSAGE_UPDATE;
//! history keeps it; a link to a private address in the same message gets nothing and is never
//! contacted; the author removes the previews for everyone; a server's channel without
//! EMBED_LINKS gets none.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use proto::Snowflake;
use proto::permissions::Permissions;
use reqwest::Method;
use serde_json::{Value, json};

use crate::attachments::Files;
use crate::support::{Client, User, WAIT};

/// A site the previews are made of: a page with OpenGraph tags and its image.
async fn fixture_site() -> SocketAddr {
    let page = r##"<!doctype html><html><head>
        <title>Not this one</title>
        <meta property="og:title" content="The Fixture &amp; Co">
        <meta property="og:description" content="A page made for the test">
        <meta property="og:site_name" content="Fixture Site">
        <meta property="og:image" content="/cover.png">
        <meta name="theme-color" content="#336699">
        </head><body>hello</body></html>"##;
    let cover = {
        let image = image::RgbImage::from_pixel(40, 30, image::Rgb([200, 30, 30]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(image)
            .write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
            .expect("a PNG");
        out
    };
    let app = Router::new()
        .route(
            "/page",
            get(
                move || async move { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page) },
            ),
        )
        .route(
            "/cover.png",
            get(move || {
                let cover = cover.clone();
                async move { ([(header::CONTENT_TYPE, "image/png")], cover).into_response() }
            }),
        );
    serve(app).await
}

/// A server that only counts what reaches it: what the guard refuses must never arrive.
async fn counter() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let app = Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            (
                [(header::CONTENT_TYPE, "text/html")],
                r#"<meta property="og:title" content="secret">"#,
            )
        }
    });
    (serve(app).await, hits)
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The next MESSAGE_UPDATE of message `id`, waiting long enough for media to fetch a site (or
/// read a file's headers) on a loaded machine.
pub(crate) async fn update_of(client: &mut Client, id: &Value) -> Value {
    let waited = std::time::Instant::now();
    loop {
        let frame = client
            .next_within(WAIT * 6)
            .await
            .expect("an update within the wait");
        if frame["t"] == "MESSAGE_UPDATE" && frame["d"]["id"] == *id {
            return frame["d"].clone();
        }
        assert!(waited.elapsed() < WAIT * 6, "no update of {id}");
    }
}

async fn history(files: &Files, user: &User, channel: Snowflake, id: &Value) -> Value {
    files.world.persisted().await;
    let page = files.history(user, channel).await;
    page.into_iter()
        .find(|m| m["id"] == *id)
        .expect("the message is in history")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pages_preview_reaches_both_members_and_stays_until_its_author_removes_it() {
    let site = fixture_site().await;
    let (private, hits) = counter().await;
    let files = Files::start_with(&[
        format!("--unfurl-allow-address={site}"),
        "--unfurl-timeout=10s".to_owned(),
    ])
    .await;
    let world = &files.world;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let channel = world.channel(&ann, "links", &[&bob]).await;
    let mut ann_socket = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_socket = Client::connect(&world.gateway(0), &bob).await;

    let content = format!(
        "look http://{site}/page and http://{private}/admin, not <http://{site}/page?quiet>"
    );
    let ack = ann_socket.send(channel, &content, "l1").await;
    assert_eq!(ack["op"], 24, "{ack}");
    let id = ack["d"]["message"]["id"].clone();
    assert!(
        ack["d"]["message"]["embeds"].is_null(),
        "previews come later: {ack}"
    );

    let seen_by_bob = update_of(&mut bob_socket, &id).await;
    let seen_by_ann = update_of(&mut ann_socket, &id).await;
    for update in [&seen_by_bob, &seen_by_ann] {
        assert_eq!(update["content"], content.as_str(), "{update}");
        assert!(
            update["edited_at"].is_null(),
            "a preview is not an edit: {update}"
        );
        let embeds = update["embeds"].as_array().expect("embeds");
        assert_eq!(
            embeds.len(),
            1,
            "only the fixture page gets a preview: {update}"
        );
        let embed = &embeds[0];
        assert_eq!(embed["type"], "link");
        assert_eq!(embed["url"], format!("http://{site}/page"));
        assert_eq!(embed["title"], "The Fixture & Co");
        assert_eq!(embed["description"], "A page made for the test");
        assert_eq!(embed["provider"]["name"], "Fixture Site");
        assert_eq!(embed["color"], 0x33_66_99);
        assert_eq!(
            (
                embed["thumbnail"]["width"].as_u64(),
                embed["thumbnail"]["height"].as_u64()
            ),
            (Some(40), Some(30))
        );
    }
    // The image is Natter's copy, served by media: the viewer never contacts the site.
    let thumbnail = seen_by_bob["embeds"][0]["thumbnail"]["url"]
        .as_str()
        .unwrap();
    assert!(
        thumbnail.starts_with(&files.media.url("/attachments/")),
        "{thumbnail}"
    );
    let (status, bytes) = files.fetch(thumbnail).await;
    assert_eq!(status, 200);
    let shown = image::load_from_memory(&bytes).expect("an image");
    assert_eq!((shown.width(), shown.height()), (40, 30));
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the private address was contacted"
    );

    // History keeps it, with a freshly signed image link.
    let stored = history(&files, &bob, channel, &id).await;
    assert_eq!(stored["embeds"][0]["title"], "The Fixture & Co", "{stored}");
    let (status, _) = files
        .fetch(stored["embeds"][0]["thumbnail"]["url"].as_str().unwrap())
        .await;
    assert_eq!(status, 200);

    // Bob may not remove ann's previews; ann may, for everyone.
    let path = format!(
        "/api/v1/channels/{channel}/messages/{}",
        id.as_str().unwrap()
    );
    let (status, body) = world
        .edge_call(0, Method::PATCH, &path, &bob, Some(json!({"flags": 4})))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = world
        .edge_call(0, Method::PATCH, &path, &ann, Some(json!({"flags": 4})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["flags"], 4, "{body}");
    assert!(body["embeds"].is_null(), "{body}");
    let suppressed = update_of(&mut bob_socket, &id).await;
    assert_eq!(suppressed["flags"], 4, "{suppressed}");
    assert!(suppressed["embeds"].is_null(), "{suppressed}");
    assert!(suppressed["edited_at"].is_null(), "{suppressed}");
    assert_eq!(suppressed["content"], content.as_str());
    let stored = history(&files, &bob, channel, &id).await;
    assert!(stored["embeds"].is_null(), "{stored}");
    assert_eq!(stored["flags"], 4, "{stored}");

    // Other flags are not the client's to set.
    let (status, body) = world
        .edge_call(0, Method::PATCH, &path, &ann, Some(json!({"flags": 1})))
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_get_no_preview_where_the_author_lacks_embed_links_or_asks_for_none() {
    let site = fixture_site().await;
    let files = Files::start_with(&[format!("--unfurl-allow-address={site}")]).await;
    let world = &files.world;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, general) = world.guild(&ann, "club").await;
    world.join_guild(guild, &ann, &bob).await;
    let embed = Permissions::EMBED_LINKS.bits().to_string();
    let plain = world
        .guild_channel(
            guild,
            &ann,
            "plain",
            json!({"permission_overwrites": [{"id": guild.to_string(), "type": 0, "deny": embed}]}),
        )
        .await;
    let mut bob_socket = Client::connect(&world.gateway(0), &bob).await;
    let link = format!("http://{site}/page");

    // Without EMBED_LINKS the message is sent with its previews suppressed.
    let ack = bob_socket.send(plain, &link, "e1").await;
    assert_eq!(ack["d"]["message"]["flags"], 4, "{ack}");
    let (status, posted) = files.post(&bob, plain, json!({"content": link})).await;
    assert_eq!(status, 200, "{posted}");
    assert_eq!(posted["flags"], 4, "{posted}");

    // A send may ask for none itself; other bits are dropped.
    let dm = world.channel(&ann, "chat", &[&bob]).await;
    let mut bob_socket = Client::connect(&world.gateway(0), &bob).await;
    let ack = bob_socket
        .request(json!({"op": 20, "d": {"channel_id": dm, "content": link, "nonce": "e2", "flags": 4 | 1}}))
        .await;
    assert_eq!(ack["d"]["message"]["flags"], 4, "{ack}");
    // And a message sent right after, with previews, is updated: the suppressed ones never are.
    let ack = bob_socket.send(dm, &link, "e3").await;
    let id = ack["d"]["message"]["id"].clone();
    loop {
        let frame = bob_socket.next_within(WAIT * 6).await.expect("an update");
        if frame["t"] == "MESSAGE_UPDATE" {
            assert_eq!(
                frame["d"]["id"], id,
                "only the message with previews is updated: {frame}"
            );
            assert_eq!(frame["d"]["embeds"][0]["title"], "The Fixture & Co");
            break;
        }
    }

    // Where the server allows previews, the update names the message's mentions as the send
    // did (the store keeps their ids only; the edge asks auth for the channel's server).
    let mention = format!("<@{}> look at {link}", ann.id);
    let ack = bob_socket.send(general, &mention, "e4").await;
    assert_eq!(
        ack["d"]["message"]["mentions"][0]["username"],
        ann.name.as_str(),
        "{ack}"
    );
    let update = update_of(&mut bob_socket, &ack["d"]["message"]["id"]).await;
    assert_eq!(update["embeds"][0]["title"], "The Fixture & Co", "{update}");
    assert_eq!(update["mentions"][0]["id"], ann.id.to_string(), "{update}");
    assert_eq!(
        update["mentions"][0]["username"],
        ann.name.as_str(),
        "{update}"
    );
}
