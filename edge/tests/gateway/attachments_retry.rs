//! A send that names uploads, retried with the same nonce (the client never got the first ACK:
//! a dropped connection, a lost frame): the retry gets the first try's answer, the message with
//! its files, and the channel sees it once; it is never refused because its files were taken
//! by the first try.

use serde_json::json;

use crate::attachments::{Files, named, png};
use crate::support::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_send_with_files_gets_the_first_tries_answer_and_is_stored_once() {
    let files = Files::start().await;
    let world = &files.world;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let channel = world.channel(&ann, "retries", &[&bob]).await;
    let mut bob_socket = Client::connect(&world.gateway(0), &bob).await;
    let name = files.upload(&ann, channel, "cat.png", &png()).await;
    let send = json!({"op": 20, "d": {"channel_id": channel, "content": "a cat", "nonce": "r1",
                          "attachments": named(&name, "cat.png")}});

    let mut first_socket = Client::connect(&world.gateway(0), &ann).await;
    let first = first_socket.request(send.clone()).await;
    assert_eq!(first["op"], 24, "{first}");
    // The client did not see that ACK (say): it reconnects and sends again, as it must.
    drop(first_socket);
    let mut again = Client::connect(&world.gateway(0), &ann).await;
    let retried = again.request(send.clone()).await;
    assert_eq!(retried["op"], 24, "the retry was refused: {retried}");
    let (a, b) = (&first["d"]["message"], &retried["d"]["message"]);
    assert_eq!(a["id"], b["id"], "{a} {b}");
    assert_eq!(a["attachments"][0]["id"], b["attachments"][0]["id"]);
    let (status, bytes) = files
        .fetch(b["attachments"][0]["url"].as_str().unwrap())
        .await;
    assert_eq!((status, bytes), (200, png()));

    // Over REST too, with the same nonce: the same message.
    let (status, posted) = files
        .post(
            &ann,
            channel,
            json!({"content": "a cat", "nonce": "r1", "attachments": named(&name, "cat.png")}),
        )
        .await;
    assert_eq!(status, 200, "{posted}");
    assert_eq!(posted["id"], a["id"]);

    // Bob got it once.
    let created = bob_socket.next_event("MESSAGE_CREATE").await;
    assert_eq!(created["d"]["id"], a["id"]);
    bob_socket.no_messages().await;

    // Another send naming the same upload with a new nonce is still refused: it is taken.
    let other = again
        .request(
            json!({"op": 20, "d": {"channel_id": channel, "content": "again", "nonce": "r2",
                            "attachments": named(&name, "cat.png")}}),
        )
        .await;
    assert_eq!(other["op"], 25, "{other}");
    world.persisted().await;
    let history = files.history(&ann, channel).await;
    assert_eq!(history.len(), 1, "{history:#?}");
}

/// A retry that comes after the stream has forgotten the nonce (its duplicate window, here made
/// one second long) is answered from history with the message stored the first time: the
/// channel still sees it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_with_files_retried_after_the_duplicate_window_is_still_stored_once() {
    let files = Files::start().await;
    let world = &files.world;
    let subjects = proto::subjects::Subjects::new(world.prefix.clone());
    let js = async_nats::jetstream::new(
        async_nats::connect(world.engines.nats_url.as_str())
            .await
            .unwrap(),
    );
    let stream = js
        .get_stream(subjects.chat_stream_name())
        .await
        .expect("this world's chat stream");
    let mut config = stream.cached_info().config.clone();
    config.duplicate_window = std::time::Duration::from_secs(1);
    js.update_stream(config).await.expect("a short window");

    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let channel = world.channel(&ann, "late-retries", &[&bob]).await;
    let probes = world.channel(&ann, "probes", &[]).await;
    let mut bob_socket = Client::connect(&world.gateway(0), &bob).await;
    let mut ann_socket = Client::connect(&world.gateway(0), &ann).await;
    let name = files.upload(&ann, channel, "cat.png", &png()).await;
    let send = json!({"op": 20, "d": {"channel_id": channel, "content": "a cat", "nonce": "late",
                          "attachments": named(&name, "cat.png")}});
    let first = ann_socket.request(send.clone()).await;
    assert_eq!(first["op"], 24, "{first}");

    // Wait until the stream has forgotten nonces as old as that send's: a plain send retried in
    // another channel comes back as a new message once its own (later) nonce is forgotten.
    let probe = json!({"op": 20, "d": {"channel_id": probes, "content": "probe", "nonce": "p"}});
    let probed = ann_socket.request(probe.clone()).await;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let again = ann_socket.request(probe.clone()).await;
        assert_eq!(again["op"], 24, "{again}");
        if again["d"]["message"]["id"] != probed["d"]["message"]["id"] {
            break;
        }
    }

    let retried = ann_socket.request(send).await;
    assert_eq!(retried["op"], 24, "the late retry was refused: {retried}");
    let (a, b) = (&first["d"]["message"], &retried["d"]["message"]);
    assert_eq!(a["id"], b["id"], "{a} {b}");
    assert_eq!(b["nonce"], "late");
    assert_eq!(a["attachments"][0]["id"], b["attachments"][0]["id"]);
    let (status, bytes) = files
        .fetch(b["attachments"][0]["url"].as_str().unwrap())
        .await;
    assert_eq!((status, bytes), (200, png()));

    let created = bob_socket.next_event("MESSAGE_CREATE").await;
    assert_eq!(created["d"]["id"], a["id"]);
    bob_socket.no_messages().await;
    world.persisted().await;
    let history = files.history(&ann, channel).await;
    assert_eq!(history.len(), 1, "{history:#?}");
}
