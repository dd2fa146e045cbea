//! Bad input on the socket: each kind gets its documented close code or error, and other sessions
//! on the same edge carry on.

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Client, World, closed, send_json};
use futures::{SinkExt, StreamExt};

#[tokio::test]
async fn each_kind_of_bad_input_closes_only_its_own_socket_with_its_code() {
    let world = World::start(1, &["--frames-per-minute=20", "--identify-timeout=1s"]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let url = world.gateway(0);
    // A bystander on the same edge, who must notice none of this.
    let mut bob_1 = Client::connect(&url, &bob).await;

    let (mut s, _) = Client::open(&url).await;
    s.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(closed(&mut s).await, Some(4002), "malformed JSON");

    let (mut s, _) = Client::open(&url).await;
    send_json(&mut s, json!({"op": 99, "d": {}})).await;
    assert_eq!(closed(&mut s).await, Some(4001), "unknown opcode");

    let (mut s, _) = Client::open(&url).await;
    send_json(&mut s, json!({"op": 2, "d": {"token": "x".repeat(20_000)}})).await;
    assert_eq!(closed(&mut s).await, Some(4002), "a frame over 16 KiB");

    let (mut s, _) = Client::open(&url).await;
    s.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    assert_eq!(closed(&mut s).await, Some(4002), "a binary frame");

    let (mut s, _) = Client::open(&url).await;
    send_json(
        &mut s,
        json!({"op": 20, "d": {"channel_id": room, "content": "hi", "nonce": "n"}}),
    )
    .await;
    assert_eq!(closed(&mut s).await, Some(4003), "send before identify");

    let (mut s, _) = Client::open(&url).await;
    assert_eq!(
        closed(&mut s).await,
        Some(4003),
        "no identify within the timeout"
    );

    let (mut s, _) = Client::open(&url).await;
    send_json(&mut s, json!({"op": 2, "d": {"token": "not.a.token"}})).await;
    assert_eq!(closed(&mut s).await, Some(4004), "a garbage token");

    let expired = expired_token(&ann);
    let (mut s, _) = Client::open(&url).await;
    send_json(&mut s, json!({"op": 2, "d": {"token": expired}})).await;
    assert_eq!(closed(&mut s).await, Some(4004), "a tampered token");

    let mut ann_1 = Client::connect(&url, &ann).await;
    ann_1
        .send_raw(json!({"op": 2, "d": {"token": ann.token}}))
        .await;
    assert_eq!(ann_1.closed().await, Some(4005), "identify twice");

    // Sending to a channel you are not in is an error on an open socket, not a close.
    let cat = world.sign_up("cat").await;
    let mut cat_1 = Client::connect(&url, &cat).await;
    let refused = cat_1.send(room, "let me in", "n-1").await;
    assert_eq!(refused["op"], 25, "{refused}");
    assert_eq!(refused["d"]["code"], "unknown_channel");
    let blank = cat_1.send(room, "   ", "n-2").await;
    assert_eq!(blank["op"], 25, "{blank}");

    // A flood past 20 frames a minute (this edge's setting) closes with 4008.
    for _ in 0..25 {
        cat_1.send_raw(json!({"op": 1, "d": null})).await;
    }
    assert_eq!(cat_1.closed().await, Some(4008), "a flood");

    // Through all of it, Bob's session carried on.
    let mut ann_2 = Client::connect(&url, &ann).await;
    ann_2.send(room, "still here?", "n-3").await;
    assert_eq!(bob_1.messages(1).await, ["still here?"]);
}

#[tokio::test]
async fn a_message_that_shows_nothing_or_stacks_marks_is_refused_and_reaches_no_one() {
    let world = World::start(1, &[]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let url = world.gateway(0);
    let mut ann_1 = Client::connect(&url, &ann).await;
    let mut bob_1 = Client::connect(&url, &bob).await;

    let zalgo = format!("a{}", "\u{591}".repeat(30));
    for (content, nonce) in [
        ("\u{200B}", "n-1"),
        ("\u{2800}\u{3164}", "n-2"),
        (zalgo.as_str(), "n-3"),
    ] {
        let refused = ann_1.send(room, content, nonce).await;
        assert_eq!(refused["op"], 25, "{content:?}: {refused}");
        assert_eq!(refused["d"]["code"], "invalid_content", "{refused}");
        assert!(
            refused["d"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("a message ")),
            "{refused}"
        );
    }
    // Any script, and emoji joined into one, still go through.
    let fine = "Привет 👋🏽 👩\u{200D}💻 नमस्ते";
    let ack = ann_1.send(room, fine, "n-4").await;
    assert_eq!(ack["op"], 24, "{ack}");
    assert_eq!(bob_1.messages(1).await, [fine]);
}

/// A token whose payload was edited (to expire long ago), so its signature no longer matches.
fn expired_token(user: &crate::support::User) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts: Vec<String> = user.token.split('.').map(str::to_owned).collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&engine.decode(&parts[1]).unwrap()).unwrap();
    claims["exp"] = json!(1);
    parts[1] = engine.encode(claims.to_string());
    parts.join(".")
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_the_others_keep_receiving() {
    let world = World::start(
        1,
        &[
            "--session-queue=16",
            "--write-timeout=1s",
            "--send-rate=100000/1s",
            "--frames-per-minute=100000",
        ],
    )
    .await;
    let (ann, bob, cat) = (
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("cat").await,
    );
    let room = world.channel(&ann, "room", &[&bob, &cat]).await;
    let url = world.gateway(0);
    let mut ann_1 = Client::connect(&url, &ann).await;
    // Bob connects and then never reads again.
    let bob_1 = Client::connect(&url, &bob).await;
    let mut cat_1 = Client::connect(&url, &cat).await;

    let big = "x".repeat(4_000);
    let mut sent = 0;
    let mut cat_got = 0;
    while sent < 3_000 {
        let ack = ann_1.send(room, &big, &format!("n-{sent}")).await;
        assert_eq!(ack["op"], 24, "{ack}");
        sent += 1;
        cat_got += cat_1.messages(1).await.len();
        if sent % 25 == 0 {
            let metrics = world.edge_metrics(0).await;
            // Bob is counted once, however many deliveries found his queue full meanwhile.
            let closes = metrics
                .lines()
                .find_map(|l| {
                    l.strip_prefix("natter_edge_slow_client_closes_total{service=\"edge\"} ")
                })
                .map(str::trim);
            if closes.is_some_and(|n| n != "0") {
                assert_eq!(closes, Some("1"), "one slow client, counted once");
                break;
            }
        }
    }
    assert!(
        sent < 3_000,
        "the edge never gave up on the client that does not read"
    );
    assert_eq!(
        cat_got, sent,
        "a reading member got every message meanwhile"
    );
    drop(bob_1);
}

#[tokio::test]
async fn a_client_that_vanishes_is_not_counted_as_bad_input() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let metrics = || world.edge_metrics(0);
    // Gone without a closing handshake: the TCP connection just ends.
    drop(Client::connect(&world.gateway(0), &ann).await);
    testkit::eventually("the session to end", crate::support::WAIT, || async {
        metrics()
            .await
            .contains("natter_edge_sessions{service=\"edge\"} 0")
            .then_some(())
    })
    .await;
    let metrics = metrics().await;
    assert!(!metrics.contains("reason=\"DecodeError\""), "{metrics}");
}

#[tokio::test]
async fn a_ping_flood_counts_against_the_frame_limit_and_closes_with_4008() {
    let world = World::start(1, &["--frames-per-minute=20"]).await;
    let ann = world.sign_up("ann").await;
    let url = world.gateway(0);

    // Before identifying: pings alone.
    let (mut s, _) = Client::open(&url).await;
    for _ in 0..30 {
        s.send(Message::Ping(b"are you there".to_vec().into()))
            .await
            .unwrap();
    }
    assert_eq!(closed(&mut s).await, Some(4008), "a ping flood");

    // And pongs, on an identified session.
    let mut ann_1 = Client::connect(&url, &ann).await;
    for _ in 0..30 {
        ann_1.send_message(Message::Pong(Vec::new().into())).await;
    }
    assert_eq!(ann_1.closed().await, Some(4008), "a pong flood");
}

#[tokio::test]
async fn a_frame_too_large_to_write_closes_the_socket_with_4000_instead_of_dropping_it() {
    // Frames larger than the socket's write buffer cannot be written at all.
    let world = World::start(1, &["--max-write-buffer-bytes=2048"]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    // Ann posts over REST: 1,000 three-byte characters make a MESSAGE_CREATE over 3 KB.
    let path = format!("/api/v1/channels/{room}/messages");
    let body = json!({"content": "€".repeat(1_000)});
    let (status, sent) = world
        .edge_call(0, reqwest::Method::POST, &path, &ann, Some(body))
        .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(
        bob_1.closed().await,
        Some(4000),
        "the unwritable frame closed the socket with a code"
    );
    // Small frames still go through, to a new session.
    let mut bob_2 = Client::connect(&world.gateway(0), &bob).await;
    world
        .edge_call(
            0,
            reqwest::Method::POST,
            &path,
            &ann,
            Some(json!({"content": "short"})),
        )
        .await;
    assert_eq!(bob_2.messages(1).await, ["short"]);
}

#[tokio::test]
async fn the_edges_rest_errors_are_json_in_the_one_error_shape() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let room = world.channel(&ann, "room", &[]).await;
    let http = reqwest::Client::new();
    let call = |request: reqwest::RequestBuilder| json_answer(request.bearer_auth(&ann.token));
    let messages = world.edge_url(0, &format!("/api/v1/channels/{room}/messages"));

    // Past the body limit (axum's own default is 2 MB, so this passes both).
    let huge = format!("{{\"content\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let (status, body) = call(
        http.post(&messages)
            .header("content-type", "application/json")
            .body(huge),
    )
    .await;
    assert_eq!((status, &body["code"]), (413, &json!("payload_too_large")));

    for query in ["?limit=5&limit=6", "?before=1&before=2"] {
        let (status, body) = call(http.get(format!("{messages}{query}"))).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["code"], "validation_failed", "{query}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("duplicate"),
            "{body}"
        );
    }
    let presences = world.edge_url(0, "/api/v1/presences?user_ids=1&user_ids=2");
    let (status, body) = call(http.get(presences)).await;
    assert_eq!((status, &body["code"]), (400, &json!("validation_failed")));

    let (status, body) = call(http.get(world.edge_url(0, "/api/v1/nothing-here"))).await;
    assert_eq!((status, &body["code"]), (404, &json!("not_found")));
    let (status, body) = call(http.put(&messages)).await;
    assert_eq!((status, &body["code"]), (405, &json!("method_not_allowed")));

    // The gateway's URL opened as a page, not a WebSocket: what the request lacks, said.
    let (status, body) = call(http.get(world.edge_url(0, "/gateway"))).await;
    assert_eq!((status, &body["code"]), (400, &json!("validation_failed")));
    assert!(
        body["message"].as_str().unwrap().contains("Connection"),
        "{body}"
    );
}

/// Sends `request` and reads its answer, which must be JSON.
async fn json_answer(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} is not JSON: {text:?}"));
    (status, body)
}

#[tokio::test]
async fn a_browser_on_an_allowed_origin_may_call_the_message_routes_and_others_may_not() {
    let world = World::start(1, &[]).await;
    let http = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        http.request(
            reqwest::Method::OPTIONS,
            world.edge_url(0, "/api/v1/channels/1/messages/2"),
        )
        .header("origin", origin)
        .header("access-control-request-method", "PATCH")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
    };
    // The web client is served by auth, so it calls the edge across origins: its preflight must
    // be answered for the edge's allowed origins (the default list names auth's dev origin)...
    let allowed = preflight("http://127.0.0.1:8081").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://127.0.0.1:8081"
    );
    // ...and never for anyone else's.
    let other = preflight("https://evil.example").await.unwrap();
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        other.headers()
    );
}

#[tokio::test]
async fn a_message_in_fragments_is_read_whole_a_ping_answered_and_a_close_echoed() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let (mut s, _) = Client::open(&world.gateway(0)).await;

    // IDENTIFY in three fragments, a ping between the first two, all in one write.
    let identify = json!({"op": 2, "d": {"token": ann.token}}).to_string();
    let (first, rest) = identify.split_at(5);
    let (second, third) = rest.split_at(rest.len() / 2);
    let fragment = |text: &str, opcode, fin| {
        Message::Frame(Frame::message(text.as_bytes().to_vec(), opcode, fin))
    };
    for message in [
        fragment(first, OpCode::Data(Data::Text), false),
        Message::Ping(b"still there?".to_vec().into()),
        fragment(second, OpCode::Data(Data::Continue), false),
        fragment(third, OpCode::Data(Data::Continue), true),
    ] {
        s.feed(message).await.unwrap();
    }
    s.flush().await.unwrap();
    let pong = tokio::time::timeout(crate::support::WAIT, s.next()).await;
    assert!(
        matches!(&pong, Ok(Some(Ok(Message::Pong(payload)))) if payload[..] == b"still there?"[..]),
        "the ping's answer, with its payload, first: {pong:?}"
    );
    let mut ann_1 = Client::from_socket(s).await;
    assert_eq!(ann_1.ready["d"]["user"]["id"], json!(ann.id.to_string()));

    // A Close from the client is answered with its code, and the session ends.
    ann_1
        .send_message(Message::Close(Some(CloseFrame {
            code: 1000.into(),
            reason: "bye".into(),
        })))
        .await;
    assert_eq!(
        ann_1.closed().await,
        Some(1000),
        "the client's code, echoed"
    );
}
