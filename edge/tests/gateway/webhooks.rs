//! A private LiveKit this test starts itself, with its `webhook.urls` pointed at this world's
//! auth (the stack's LiveKit sends none): a participant removed through the room API is gone
//! from the room and, within the bound, from everyone's list; a participant whose client crashed
//! (a real WebRTC peer, killed) is cleared by LiveKit's `participant_left` webhook alone.
//!
//! LiveKit sends `participant_joined`/`participant_left` only for a participant whose media
//! connected (a participant that only opened the signalling socket, as [`connect_media`] does,
//! gets neither, while `room_started` arrives), so the crashed client is `media_peer.py`: LiveKit's
//! Python SDK, which carries libwebrtc, joins with the token and publishes a microphone track.
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use auth::livekit::LiveKit;
use kit::config::Secret;
use proto::Snowflake;
use serde_json::{Value, json};
use testkit::LiveKitServer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{Client, User, World};
use crate::voice::{connect_media, listed, until_participant, voice};

/// How long a departure may take to reach everyone (two polling intervals, on a loaded machine).
const BOUND: Duration = Duration::from_secs(60);

/// A world of `edges` edges whose auth a private LiveKit tells of departures by webhook, and a
/// room-service client of that LiveKit. `reconcile` is auth's `--voice-reconcile-interval`
/// (`0s`: no polling, so only a webhook clears a state).
async fn world_with_livekit(edges: usize, reconcile: &str) -> (World, LiveKitServer, LiveKit) {
    let mut media_server = LiveKitServer::reserve();
    let mut args = media_server.auth_args();
    args.push(format!("--voice-reconcile-interval={reconcile}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let world = World::start_with_auth(edges, &[], &args).await;
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
    (world, media_server, livekit)
}

#[tokio::test]
async fn a_participant_removed_by_a_private_livekits_room_api_leaves_everyones_list() {
    let (world, _media_server, livekit) = world_with_livekit(2, "2s").await;

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
    let joined = state_about(&mut ann_1, &carol, &mut [&mut carol_1], BOUND).await;
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
    let left = state_about(&mut ann_1, &carol, &mut [&mut carol_1], BOUND).await;
    assert_eq!(left["channel_id"], Value::Null, "{left}");
    eprintln!(
        "a removed participant left everyone's list after {:?}",
        removed.elapsed()
    );
}

/// How long a crashed client may take to leave everyone's list: LiveKit notices the departure
/// when the peer connection fails or its departure timeout (20 s) passes, then sends the webhook
/// (generous, on a loaded machine).
const CRASH_BOUND: Duration = Duration::from_secs(120);

/// The Python that runs `media_peer.py`: `$NATTER_PYTHON`, else the stack's venv
/// (`$NATTER_CACHE/venv`, default `~/.cache/natter/venv`), where `deploy/stack-media.sh`
/// installs LiveKit's SDK.
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("NATTER_PYTHON") {
        return PathBuf::from(python);
    }
    let cache = std::env::var_os("NATTER_CACHE").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/natter")
        },
        PathBuf::from,
    );
    cache.join("venv/bin/python")
}

/// A real WebRTC participant joined with the token of `server` (a VOICE_SERVER_UPDATE), once it
/// says its room is connected and its track published. Killed when dropped.
async fn media_peer(server: &Value) -> Child {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/gateway/media_peer.py");
    let mut peer = Command::new(python())
        .arg(script)
        .arg(server["d"]["endpoint"].as_str().expect("an endpoint"))
        .arg(server["d"]["token"].as_str().expect("a token"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run media_peer.py (deploy/stack-media.sh installs LiveKit's Python SDK)");
    let mut lines = BufReader::new(peer.stdout.take().expect("its stdout")).lines();
    let joined = tokio::time::timeout(BOUND, lines.next_line())
        .await
        .expect("the peer joins the room within the bound");
    assert_eq!(
        joined.expect("its stdout").as_deref(),
        Some("joined"),
        "the peer did not join (its error is above)"
    );
    peer
}

/// The next VOICE_STATE_UPDATE about `user` on `watcher` within `bound`, heartbeating every
/// client meanwhile so that no gateway connection times out.
async fn state_about(
    watcher: &mut Client,
    user: &User,
    others: &mut [&mut Client],
    bound: Duration,
) -> Value {
    let deadline = Instant::now() + bound;
    let mut beat = Instant::now();
    loop {
        assert!(
            Instant::now() < deadline,
            "no voice state for {} within {bound:?}",
            user.name
        );
        if beat.elapsed() > Duration::from_secs(5) {
            watcher.send_raw(json!({"op": 1, "d": null})).await;
            for other in others.iter_mut() {
                other.send_raw(json!({"op": 1, "d": null})).await;
            }
            beat = Instant::now();
        }
        let Some(frame) = watcher.next_within(Duration::from_millis(500)).await else {
            continue;
        };
        if frame["t"] == "VOICE_STATE_UPDATE" && frame["d"]["user_id"] == user.id.to_string() {
            return frame["d"].clone();
        }
    }
}

#[tokio::test]
async fn a_crashed_clients_voice_state_is_cleared_by_livekits_webhook() {
    // No polling: only the webhook can clear the state.
    let (world, _media_server, livekit) = world_with_livekit(1, "0s").await;

    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, _) = world.guild(&ann, "Band").await;
    let lounge: Snowflake = world
        .guild_channel(guild, &ann, "lounge", json!({"kind": "voice"}))
        .await;
    world.join_guild(guild, &ann, &bob).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;

    // Bob joins the voice channel and his client connects its media for real.
    let server = voice(&mut bob_1, Some(guild), Some(lounge)).await;
    assert_eq!(server["t"], "VOICE_SERVER_UPDATE", "{server}");
    let mut peer = media_peer(&server).await;
    listed(&livekit, lounge, &bob).await;
    let joined = state_about(&mut ann_1, &bob, &mut [&mut bob_1], BOUND).await;
    assert_eq!(joined["channel_id"], lounge.to_string(), "{joined}");

    // His media client crashes: killed, it never says goodbye to LiveKit. His gateway socket
    // stays open (heartbeating), so nothing but LiveKit's webhook tells Natter he is gone.
    let crashed = Instant::now();
    peer.start_kill().expect("kill the peer");
    peer.wait().await.expect("the peer is gone");
    let left = state_about(&mut ann_1, &bob, &mut [&mut bob_1], CRASH_BOUND).await;
    assert_eq!(left["channel_id"], Value::Null, "{left}");
    eprintln!(
        "a crashed client left everyone's list {:?} after it was killed",
        crashed.elapsed()
    );
    until_participant(&livekit, lounge, &bob, "he stays in the room", |p| {
        p.is_none()
    })
    .await;

    // A new session of Ann's is told nobody is in the channel (READY's server).
    let again = Client::connect(&world.gateway(0), &ann).await;
    let listed_guild = &again.ready["d"]["guilds"][0];
    assert_eq!(listed_guild["id"], guild.to_string(), "{listed_guild}");
    let states = &listed_guild["voice_states"];
    assert!(
        states.as_array().is_none_or(Vec::is_empty),
        "READY still lists {states}"
    );
}
