//! A private LiveKit this test starts itself, with its `webhook.urls` pointed at this world's
//! auth (the stack's LiveKit sends none): a participant removed through the room API is gone
//! from the room and, within the bound, from everyone's list.
//!
//! What is not here: LiveKit sends `participant_joined`/`participant_left` only for a
//! participant whose media connected (seen here: a participant that only opened the signalling
//! socket, as these tests' clients do, gets neither, while `room_started` arrives), so a crashed
//! client's webhook needs a real WebRTC peer; the web end-to-end test (a browser) is that client.
//! Here auth's polling (`--voice-reconcile-interval`) is what clears the state.

use std::time::{Duration, Instant};

use auth::livekit::LiveKit;
use kit::config::Secret;
use proto::Snowflake;
use serde_json::{Value, json};
use testkit::LiveKitServer;

use crate::support::{Client, User, World};
use crate::voice::{connect_media, listed, until_participant, voice};

/// How long a departure may take to reach everyone (two polling intervals, on a loaded machine).
const BOUND: Duration = Duration::from_secs(60);

/// The next VOICE_STATE_UPDATE about `user` within [`BOUND`], while `keep_alive` heartbeats so
/// its gateway connection never times out meanwhile.
async fn state_within(client: &mut Client, user: &User, keep_alive: &mut Client) -> Value {
    let deadline = Instant::now() + BOUND;
    let mut beat = Instant::now();
    loop {
        assert!(
            Instant::now() < deadline,
            "no voice state for {} within {BOUND:?}",
            user.name
        );
        if beat.elapsed() > Duration::from_secs(5) {
            keep_alive.send_raw(json!({"op": 1, "d": null})).await;
            beat = Instant::now();
        }
        let Some(frame) = client.next_within(Duration::from_millis(500)).await else {
            continue;
        };
        if frame["t"] == "VOICE_STATE_UPDATE" && frame["d"]["user_id"] == user.id.to_string() {
            return frame["d"].clone();
        }
    }
}

#[tokio::test]
async fn a_participant_removed_by_a_private_livekits_room_api_leaves_everyones_list() {
    let mut media_server = LiveKitServer::reserve();
    let mut args = media_server.auth_args();
    args.push("--voice-reconcile-interval=2s".to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let world = World::start_with_auth(2, &[], &args).await;
    media_server
        .start(&world.auth.url("/api/v1/voice/livekit"))
        .await;
    let livekit = LiveKit::new(
        &media_server.url().replacen("ws", "http", 1),
        &media_server.url(),
        media_server.api_key.clone(),
        Secret::new(media_server.api_secret.clone()),
    )
    .expect("a LiveKit client");

    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let carol = world.sign_up("carol").await;
    let (guild, _) = world.guild(&ann, "Band").await;
    let lounge: Snowflake = world
        .guild_channel(guild, &ann, "lounge", json!({"kind": "voice"}))
        .await;
    world.join_guild(guild, &ann, &bob).await;
    world.join_guild(guild, &ann, &carol).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut carol_1 = Client::connect(&world.gateway(0), &carol).await;

    // Carol is removed through the room API (as an operator's tool would): LiveKit drops her and
    // tells auth, which clears her state for everyone.
    let server = voice(&mut carol_1, Some(guild), Some(lounge)).await;
    assert_eq!(server["t"], "VOICE_SERVER_UPDATE", "{server}");
    let _media = connect_media(&server)
        .await
        .expect("LiveKit takes the token");
    listed(&livekit, lounge, &carol).await;
    let joined = state_within(&mut ann_1, &carol, &mut carol_1).await;
    assert_eq!(joined["channel_id"], lounge.to_string());
    let removed = Instant::now();
    livekit
        .remove(&lounge.to_string(), &carol.id.to_string())
        .await
        .expect("the room service removes her");
    until_participant(&livekit, lounge, &carol, "she stays in the room", |p| {
        p.is_none()
    })
    .await;
    let left = state_within(&mut ann_1, &carol, &mut carol_1).await;
    assert_eq!(left["channel_id"], Value::Null, "{left}");
    eprintln!(
        "a removed participant left everyone's list after {:?}",
        removed.elapsed()
    );
}
