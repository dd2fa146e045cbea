//! Calls in DMs and group channels, as their people see them: a call nobody answers stops
//! ringing by itself, one every callee declines ends at once, and either leaves "Missed call" in
//! the channel as a real message (live on every device, once, and in history); an answered one
//! leaves who was in it.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Client, User, World};
use crate::voice::{connect_media, voice, voice_leave};

/// The next MESSAGE_CREATE in `client`'s stream.
async fn next_message(client: &mut Client) -> Value {
    client.next_event("MESSAGE_CREATE").await["d"].clone()
}

/// The newest message of `channel`'s history as `user` reads it from edge 0, once the persister
/// has it.
async fn newest_in_history(world: &World, user: &User, channel: proto::Snowflake) -> Value {
    world.persisted().await;
    let path = format!("/api/v1/channels/{channel}/messages?limit=5");
    let (status, page) = world.edge_call(0, Method::GET, &path, user, None).await;
    assert_eq!(status, 200, "{page}");
    page["messages"][0].clone()
}

#[tokio::test]
async fn a_call_nobody_answers_stops_ringing_by_itself_and_leaves_a_missed_call() {
    // A short ring so the test does not wait Discord's minute; the sweep runs every second.
    let world = World::start_with_auth(2, &[], &["--call-ring-timeout=3s"]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let dm = world.dm(&ann, &bob).await;
    world.dm(&bob, &ann).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(1), &bob).await;

    let server = voice(&mut ann_1, None, Some(dm)).await;
    assert_eq!(server["t"], "VOICE_SERVER_UPDATE", "{server}");
    let _media = connect_media(&server)
        .await
        .expect("LiveKit takes the token");
    let call = bob_1.next_event("CALL_CREATE").await;
    assert_eq!(call["d"]["ringing"], json!([bob.id.to_string()]));

    // Nobody answers: the ringing ends, ann is taken out, and both see the missed call (the
    // message and the call's end travel on different streams: in either order).
    for client in [&mut ann_1, &mut bob_1] {
        let (mut missed, mut ended, mut hung_up) = (None, false, false);
        while missed.is_none() || !ended || !hung_up {
            let frame = client.next().await.expect("the call's end and its message");
            match frame["t"].as_str() {
                Some("MESSAGE_CREATE") => missed = Some(frame["d"].clone()),
                Some("CALL_DELETE") => ended = frame["d"]["channel_id"] == dm.to_string(),
                Some("VOICE_STATE_UPDATE") if frame["d"]["user_id"] == ann.id.to_string() => {
                    hung_up = frame["d"]["channel_id"].is_null();
                }
                _ => {}
            }
        }
        let missed = missed.unwrap();
        assert_eq!(missed["type"], 3, "{missed}");
        assert_eq!(missed["author_id"], ann.id.to_string());
        assert_eq!(missed["call"]["participants"], json!([ann.id.to_string()]));
        assert!(missed["call"]["ended_timestamp"].as_u64().unwrap() > 0);
    }
    let stored = newest_in_history(&world, &bob, dm).await;
    assert_eq!(stored["type"], 3, "{stored}");
    assert_eq!(stored["call"]["participants"], json!([ann.id.to_string()]));
    // Delivered once: nothing else follows.
    assert!(
        bob_1
            .next_within(Duration::from_secs(2))
            .await
            .is_none_or(|f| f["t"] != "MESSAGE_CREATE"),
        "the missed call came twice"
    );
}

#[tokio::test]
async fn a_declined_call_ends_at_once_and_an_answered_one_says_who_was_in_it() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let carol = world.sign_up("carol").await;
    let dm = world.dm(&ann, &bob).await;
    world.dm(&bob, &ann).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;

    let server = voice(&mut ann_1, None, Some(dm)).await;
    assert_eq!(server["t"], "VOICE_SERVER_UPDATE", "{server}");
    bob_1.next_event("CALL_CREATE").await;
    // Someone outside the DM cannot touch its call.
    let path = format!("/api/v1/channels/{dm}/call/stop-ringing");
    let (status, body) = world
        .call(Method::POST, &path, Some(&carol.token), json!({}))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = world
        .call(
            Method::POST,
            &path,
            Some(&bob.token),
            json!({"recipients": ["x"]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // Bob declines: the call ends now, not at the timeout.
    let (status, body) = world
        .call(Method::POST, &path, Some(&bob.token), json!({}))
        .await;
    assert_eq!(status, 204, "{body}");
    bob_1.next_event("CALL_DELETE").await;
    let missed = next_message(&mut ann_1).await;
    assert_eq!(missed["type"], 3, "{missed}");
    assert_eq!(missed["call"]["participants"], json!([ann.id.to_string()]));

    // The next call bob answers: it stops ringing him, and its message names them both.
    let server = voice(&mut ann_1, None, Some(dm)).await;
    assert_eq!(server["t"], "VOICE_SERVER_UPDATE", "{server}");
    bob_1.next_event("CALL_CREATE").await;
    let answered = voice(&mut bob_1, None, Some(dm)).await;
    assert_eq!(answered["t"], "VOICE_SERVER_UPDATE", "{answered}");
    let update = ann_1.next_event("CALL_UPDATE").await;
    assert_eq!(update["d"]["ringing"], json!([]));
    voice_leave(&mut ann_1).await;
    voice_leave(&mut bob_1).await;
    // (The missed call may still be queued for bob: its message and CALL_DELETE race.)
    let call = loop {
        let message = next_message(&mut bob_1).await;
        if message["id"] != missed["id"] {
            break message;
        }
    };
    assert_eq!(call["type"], 3, "{call}");
    assert_eq!(
        call["call"]["participants"],
        json!([ann.id.to_string(), bob.id.to_string()])
    );
    let c = &call["call"];
    assert!(c["ended_timestamp"].as_u64() >= c["started_timestamp"].as_u64());
    let stored = newest_in_history(&world, &ann, dm).await;
    assert_eq!(stored["id"], call["id"]);
    assert_eq!(stored["call"], call["call"]);
}
