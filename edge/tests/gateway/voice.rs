//! Voice on the gateway against the real media server (the stack's LiveKit): op 4 answered with a
//! token LiveKit accepts, whose grants follow CONNECT, SPEAK and STREAM; voice states on every
//! edge, in READY; moderation applied in the room at once; a member who loses CONNECT (kicked),
//! or whose connection ends, leaves the room and everyone's list.

use std::time::Duration;

use auth::livekit::{LiveKit, Participant};
use futures::StreamExt;
use kit::config::Secret;
use proto::Snowflake;
use proto::permissions::Permissions;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::WebSocketStream;

use crate::support::{Client, User, World};

/// How long a test waits for the media server to reflect a change (a loaded machine).
const BOUND: Duration = Duration::from_secs(20);

fn livekit() -> LiveKit {
    let endpoint = testkit::Stack::get()
        .livekit()
        .expect("the stack runs LiveKit (./natter up --stack)");
    LiveKit::new(
        &endpoint.url.replacen("ws", "http", 1),
        &endpoint.url,
        endpoint.api_key,
        Secret::new(endpoint.api_secret),
    )
    .expect("a LiveKit client")
}

/// A media connection: LiveKit's signalling socket opened with a join token (LiveKit makes the
/// participant when it opens; no WebRTC needed to be listed).
type Media = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn connect_media(server: &Value) -> Result<Media, String> {
    let d = &server["d"];
    let url = format!(
        "{}/rtc?access_token={}&protocol=15&sdk=rust&version=0.0.0&auto_subscribe=1",
        d["endpoint"].as_str().unwrap().trim_end_matches('/'),
        d["token"].as_str().unwrap()
    );
    tokio_tungstenite::connect_async(url)
        .await
        .map(|(socket, _)| socket)
        .map_err(|e| e.to_string())
}

/// Someone in `room`, once LiveKit lists them (within [`BOUND`]).
pub(crate) async fn listed(livekit: &LiveKit, room: Snowflake, user: &User) -> Participant {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let participants = livekit.participants(&room.to_string()).await.unwrap();
        if let Some(p) = participants
            .into_iter()
            .find(|p| p.identity == user.id.to_string())
        {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never joined room {room}",
            user.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `check` holds for `user`'s place in `room` (`None`: not in it).
pub(crate) async fn until_participant(
    livekit: &LiveKit,
    room: Snowflake,
    user: &User,
    what: &str,
    check: impl Fn(Option<&Participant>) -> bool,
) {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let participants = livekit.participants(&room.to_string()).await.unwrap();
        let found = participants
            .iter()
            .find(|p| p.identity == user.id.to_string());
        if check(found) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {found:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends op 4 and answers what came of it: VOICE_SERVER_UPDATE or ERROR.
pub(crate) async fn voice(
    client: &mut Client,
    guild: Option<Snowflake>,
    channel: Option<Snowflake>,
) -> Value {
    client
        .send_raw(json!({"op": 4, "d": {
            "guild_id": guild, "channel_id": channel, "self_mute": false, "self_deaf": false
        }}))
        .await;
    loop {
        let frame = client.next().await.expect("an answer to op 4");
        if frame["op"] == 25 || frame["t"] == "VOICE_SERVER_UPDATE" {
            return frame;
        }
    }
}

/// The next VOICE_STATE_UPDATE about `user`.
pub(crate) async fn state_of(client: &mut Client, user: &User) -> Value {
    loop {
        let frame = client.next_event("VOICE_STATE_UPDATE").await;
        if frame["d"]["user_id"] == user.id.to_string() {
            return frame["d"].clone();
        }
    }
}

fn deny(guild: Snowflake, denied: Permissions) -> Value {
    json!({"kind": "voice", "permission_overwrites": [
        {"id": guild.to_string(), "type": 0, "deny": denied.bits().to_string()},
    ]})
}

fn sources(p: &Participant) -> Vec<&str> {
    let mut s: Vec<&str> = p
        .permission
        .can_publish_sources
        .iter()
        .map(String::as_str)
        .collect();
    s.sort_unstable();
    s
}

#[tokio::test]
async fn tokens_come_only_with_connect_and_publish_only_with_speak_and_stream() {
    let world = World::start(1, &[]).await;
    let livekit = livekit();
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, text) = world.guild(&ann, "Band").await;
    let lounge = world
        .guild_channel(guild, &ann, "lounge", json!({"kind": "voice"}))
        .await;
    let locked = world
        .guild_channel(guild, &ann, "locked", deny(guild, Permissions::CONNECT))
        .await;
    let quiet = world
        .guild_channel(
            guild,
            &ann,
            "quiet",
            deny(guild, Permissions::SPEAK | Permissions::STREAM),
        )
        .await;
    world.join_guild(guild, &ann, &bob).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;

    let refused = voice(&mut bob_1, Some(guild), Some(locked)).await;
    assert_eq!(refused["op"], 25, "{refused}");
    assert_eq!(refused["d"]["code"], "forbidden");
    assert!(
        refused["d"]["message"]
            .as_str()
            .unwrap()
            .contains("CONNECT"),
        "the missing permission is named: {refused}"
    );
    let text_channel = voice(&mut bob_1, Some(guild), Some(text)).await;
    assert_eq!(text_channel["d"]["code"], "not_found", "{text_channel}");

    let server = voice(&mut bob_1, Some(guild), Some(quiet)).await;
    assert_eq!(server["t"], "VOICE_SERVER_UPDATE", "{server}");
    assert_eq!(server["d"]["channel_id"], quiet.to_string());
    assert_eq!(server["d"]["guild_id"], guild.to_string());
    let _quiet_media = connect_media(&server)
        .await
        .expect("LiveKit takes the token");
    let listener = listed(&livekit, quiet, &bob).await;
    assert!(!listener.permission.can_publish, "{listener:?}");
    assert!(sources(&listener).is_empty(), "{listener:?}");
    assert!(listener.permission.can_subscribe);

    // Joining another channel moves: a new token for the other room.
    let server = voice(&mut bob_1, Some(guild), Some(lounge)).await;
    assert_eq!(server["t"], "VOICE_SERVER_UPDATE", "{server}");
    let _lounge_media = connect_media(&server)
        .await
        .expect("LiveKit takes the token");
    let speaker = listed(&livekit, lounge, &bob).await;
    assert!(speaker.permission.can_publish);
    assert_eq!(
        sources(&speaker),
        ["CAMERA", "MICROPHONE", "SCREEN_SHARE", "SCREEN_SHARE_AUDIO"]
    );
    until_participant(&livekit, quiet, &bob, "out of the room moved from", |p| {
        p.is_none()
    })
    .await;

    // A token LiveKit did not get from Natter is refused.
    let mut forged = server.clone();
    forged["d"]["token"] = json!("not-a-token");
    assert!(connect_media(&forged).await.is_err());
}

#[tokio::test]
async fn voice_states_reach_every_edge_and_ready_and_leave_with_the_connection() {
    let world = World::start(2, &[]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let carol = world.sign_up("carol").await;
    let (guild, _) = world.guild(&ann, "Band").await;
    let lounge = world
        .guild_channel(guild, &ann, "lounge", json!({"kind": "voice"}))
        .await;
    world.join_guild(guild, &ann, &bob).await;
    world.join_guild(guild, &ann, &carol).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_2 = Client::connect(&world.gateway(1), &bob).await;

    let server = voice(&mut bob_2, Some(guild), Some(lounge)).await;
    assert_eq!(server["t"], "VOICE_SERVER_UPDATE", "{server}");
    let joined = state_of(&mut ann_1, &bob).await;
    assert_eq!(joined["channel_id"], lounge.to_string());
    assert_eq!(joined["guild_id"], guild.to_string());
    assert_eq!(joined["self_mute"], false);

    // Flags change without a new token.
    bob_2
        .send_raw(json!({"op": 4, "d": {
            "guild_id": guild, "channel_id": lounge, "self_mute": true, "self_deaf": false
        }}))
        .await;
    let muted = state_of(&mut ann_1, &bob).await;
    assert_eq!(muted["self_mute"], true);
    assert_eq!(muted["channel_id"], lounge.to_string());

    let carol_1 = Client::connect(&world.gateway(0), &carol).await;
    let states = &carol_1.ready["d"]["guilds"][0]["voice_states"];
    assert_eq!(states.as_array().unwrap().len(), 1, "{states}");
    assert_eq!(states[0]["user_id"], bob.id.to_string());
    assert_eq!(states[0]["self_mute"], true);

    // Bob's connection goes without a word (a killed tab): he leaves everyone's list.
    drop(bob_2);
    let left = state_of(&mut ann_1, &bob).await;
    assert_eq!(left["channel_id"], Value::Null, "{left}");
    let carol_again = Client::connect(&world.gateway(1), &carol).await;
    let states = &carol_again.ready["d"]["guilds"][0]["voice_states"];
    assert_eq!(states, &json!([]));
}

#[tokio::test]
async fn a_kicked_member_is_taken_out_of_the_room_at_once() {
    let world = World::start(1, &[]).await;
    let livekit = livekit();
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, _) = world.guild(&ann, "Band").await;
    let lounge = world
        .guild_channel(guild, &ann, "lounge", json!({"kind": "voice"}))
        .await;
    world.join_guild(guild, &ann, &bob).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let server = voice(&mut bob_1, Some(guild), Some(lounge)).await;
    let mut media = connect_media(&server)
        .await
        .expect("LiveKit takes the token");
    listed(&livekit, lounge, &bob).await;
    let joined = state_of(&mut ann_1, &bob).await;
    assert_eq!(joined["channel_id"], lounge.to_string());

    let (status, body) = world
        .auth_call(
            Method::DELETE,
            &format!("/api/v1/guilds/{guild}/members/{}", bob.id),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    until_participant(
        &livekit,
        lounge,
        &bob,
        "the kicked member stays in the room",
        |p| p.is_none(),
    )
    .await;
    let left = state_of(&mut ann_1, &bob).await;
    assert_eq!(left["channel_id"], Value::Null);
    // LiveKit closes the kicked member's media connection.
    let closed = tokio::time::timeout(BOUND, async {
        while let Some(Ok(_)) = media.next().await {}
    })
    .await;
    assert!(closed.is_ok(), "the media connection stays open");
}

#[tokio::test]
async fn a_moderator_mutes_in_the_room_and_disconnects() {
    let world = World::start(1, &[]).await;
    let livekit = livekit();
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let carol = world.sign_up("carol").await;
    let (guild, _) = world.guild(&ann, "Band").await;
    let lounge = world
        .guild_channel(guild, &ann, "lounge", json!({"kind": "voice"}))
        .await;
    world.join_guild(guild, &ann, &bob).await;
    world.join_guild(guild, &ann, &carol).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let server = voice(&mut bob_1, Some(guild), Some(lounge)).await;
    let _media = connect_media(&server)
        .await
        .expect("LiveKit takes the token");
    listed(&livekit, lounge, &bob).await;
    let joined = state_of(&mut ann_1, &bob).await;
    assert_eq!(joined["channel_id"], lounge.to_string());
    let member = format!("/api/v1/guilds/{guild}/members/{}", bob.id);

    // Carol has no MUTE_MEMBERS.
    let (status, body) = world
        .auth_call(Method::PATCH, &member, &carol, Some(json!({"mute": true})))
        .await;
    assert_eq!(status, 403, "{body}");

    let (status, body) = world
        .auth_call(Method::PATCH, &member, &ann, Some(json!({"mute": true})))
        .await;
    assert_eq!(status, 200, "{body}");
    until_participant(
        &livekit,
        lounge,
        &bob,
        "a muted member keeps the microphone",
        |p| {
            p.is_some_and(|p| {
                !p.permission
                    .can_publish_sources
                    .iter()
                    .any(|s| s == "MICROPHONE")
                    && p.permission
                        .can_publish_sources
                        .iter()
                        .any(|s| s == "CAMERA")
            })
        },
    )
    .await;
    let muted = state_of(&mut ann_1, &bob).await;
    assert_eq!(muted["mute"], true, "{muted}");
    let (status, log) = world
        .auth_call(
            Method::GET,
            &format!("/api/v1/guilds/{guild}/audit-logs?action_type=24"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 200, "{log}");
    let recorded = log["audit_log_entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| {
            e["target_id"] == bob.id.to_string()
                && e["changes"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["key"] == "mute" && c["new_value"] == true)
                })
        });
    assert!(recorded, "the server mute is in the audit log: {log}");

    let (status, body) = world
        .auth_call(
            Method::PATCH,
            &member,
            &ann,
            Some(json!({"channel_id": null})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    until_participant(&livekit, lounge, &bob, "a disconnected member stays", |p| {
        p.is_none()
    })
    .await;
    let left = state_of(&mut ann_1, &bob).await;
    assert_eq!(left["channel_id"], Value::Null);

    let (status, body) = world
        .auth_call(Method::PATCH, &member, &ann, Some(json!({"deaf": true})))
        .await;
    assert_eq!(status, 400, "not in voice any more: {body}");
}

#[tokio::test]
async fn a_dm_call_is_for_its_two_members_across_edges() {
    let world = World::start(2, &[]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let carol = world.sign_up("carol").await;
    let dm = world.dm(&ann, &bob).await;
    world.dm(&bob, &ann).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(1), &bob).await;
    let mut carol_1 = Client::connect(&world.gateway(0), &carol).await;

    let server = voice(&mut ann_1, None, Some(dm)).await;
    assert_eq!(server["t"], "VOICE_SERVER_UPDATE", "{server}");
    assert_eq!(server["d"]["guild_id"], Value::Null);
    let _media = connect_media(&server)
        .await
        .expect("LiveKit takes the token");
    let ringing = state_of(&mut bob_1, &ann).await;
    assert_eq!(ringing["channel_id"], dm.to_string());
    let call = bob_1.next_event("CALL_CREATE").await;
    assert_eq!(call["d"]["channel_id"], dm.to_string());
    assert_eq!(call["d"]["ringing"], json!([bob.id.to_string()]));

    let refused = voice(&mut carol_1, None, Some(dm)).await;
    assert_eq!(refused["d"]["code"], "not_found", "{refused}");

    let answered = voice(&mut bob_1, None, Some(dm)).await;
    assert_eq!(answered["t"], "VOICE_SERVER_UPDATE", "{answered}");
    voice_leave(&mut ann_1).await;
    let hung_up = state_of(&mut bob_1, &ann).await;
    assert_eq!(hung_up["channel_id"], Value::Null);
    // Bob is still in it: the call goes on until he leaves too.
    voice_leave(&mut bob_1).await;
    let ended = ann_1.next_event("CALL_DELETE").await;
    assert_eq!(ended["d"]["channel_id"], dm.to_string());
}

pub(crate) async fn voice_leave(client: &mut Client) {
    client
        .send_raw(json!({"op": 4, "d": {"guild_id": null, "channel_id": null}}))
        .await;
}

#[tokio::test]
async fn a_client_that_stops_answering_leaves_voice_within_the_heartbeat_bound() {
    let mut world = World::start(1, &[]).await;
    // Bob's edge expects a heartbeat every second: a silent client is gone after 1.5 s.
    world.add_edge(2, &["--heartbeat-interval=1s"]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, _) = world.guild(&ann, "Band").await;
    let lounge = world
        .guild_channel(guild, &ann, "lounge", json!({"kind": "voice"}))
        .await;
    world.join_guild(guild, &ann, &bob).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_2 = Client::connect(&world.gateway(1), &bob).await;
    let server = voice(&mut bob_2, Some(guild), Some(lounge)).await;
    assert_eq!(server["t"], "VOICE_SERVER_UPDATE", "{server}");
    let joined = state_of(&mut ann_1, &bob).await;
    assert_eq!(joined["channel_id"], lounge.to_string());

    // Bob's tab hangs: its socket stays open, nothing more is sent.
    let left = state_of(&mut ann_1, &bob).await;
    assert_eq!(left["channel_id"], Value::Null, "{left}");
    drop(bob_2);
}

/// A webhook as LiveKit signs it: a token under the API key whose `sha256` is the body's.
fn livekit_signature(body: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    let endpoint = testkit::Stack::get()
        .livekit()
        .expect("the stack runs LiveKit");
    let now = proto::clock::unix_ms() / 1000;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({
            "iss": endpoint.api_key,
            "nbf": now,
            "exp": now + 300,
            "sha256": base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body)),
        }),
        &jsonwebtoken::EncodingKey::from_secret(endpoint.api_secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn livekits_signed_webhook_clears_a_departed_participant_and_a_forged_one_changes_nothing() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, _) = world.guild(&ann, "Band").await;
    let lounge = world
        .guild_channel(guild, &ann, "lounge", json!({"kind": "voice"}))
        .await;
    world.join_guild(guild, &ann, &bob).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    voice(&mut bob_1, Some(guild), Some(lounge)).await;
    let joined = state_of(&mut ann_1, &bob).await;
    let session = joined["session_id"].as_str().unwrap().to_owned();

    let body = serde_json::to_vec(&json!({
        "event": "participant_left",
        "room": {"name": lounge.to_string()},
        "participant": {"identity": bob.id.to_string(), "metadata": session},
    }))
    .unwrap();
    let hook = |authorization: String| {
        reqwest::Client::new()
            .post(world.auth.url("/api/v1/voice/livekit"))
            .header("authorization", authorization)
            .header("content-type", "application/webhook+json")
            .body(body.clone())
            .send()
    };
    // Signed for another body, or not by LiveKit: refused, and Bob stays.
    let forged = hook(livekit_signature(b"{}")).await.unwrap();
    assert_eq!(forged.status(), 401);
    let unsigned = hook("Bearer nothing".to_owned()).await.unwrap();
    assert_eq!(unsigned.status(), 401);
    assert!(
        ann_1
            .next_within(Duration::from_millis(500))
            .await
            .is_none_or(|f| f["t"] != "VOICE_STATE_UPDATE"),
        "a refused webhook changed nothing"
    );

    let signed = hook(livekit_signature(&body)).await.unwrap();
    assert_eq!(signed.status(), 204);
    let left = state_of(&mut ann_1, &bob).await;
    assert_eq!(left["channel_id"], Value::Null, "{left}");
}

#[tokio::test]
async fn a_voice_state_whose_person_never_reached_the_room_is_cleared_by_polling() {
    // What webhooks would miss (none configured here, or an edge that died with its sessions):
    // auth compares the states with LiveKit's rooms every second.
    let world = World::start_with_auth(1, &[], &["--voice-reconcile-interval=1s"]).await;
    let livekit = livekit();
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let carol = world.sign_up("carol").await;
    let (guild, _) = world.guild(&ann, "Band").await;
    let lounge = world
        .guild_channel(guild, &ann, "lounge", json!({"kind": "voice"}))
        .await;
    world.join_guild(guild, &ann, &bob).await;
    world.join_guild(guild, &ann, &carol).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let mut carol_1 = Client::connect(&world.gateway(0), &carol).await;

    // Carol connects her media; Bob never does (his gateway socket stays open).
    let server = voice(&mut carol_1, Some(guild), Some(lounge)).await;
    let _media = connect_media(&server)
        .await
        .expect("LiveKit takes the token");
    listed(&livekit, lounge, &carol).await;
    voice(&mut bob_1, Some(guild), Some(lounge)).await;

    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let state = state_of(&mut ann_1, &bob).await;
        if state["channel_id"].is_null() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob was never cleared"
        );
    }
    // Carol, in the room, stays: READY still lists her alone.
    let again = Client::connect(&world.gateway(0), &ann).await;
    let states = &again.ready["d"]["guilds"][0]["voice_states"];
    assert_eq!(states.as_array().unwrap().len(), 1, "{states}");
    assert_eq!(states[0]["user_id"], carol.id.to_string());
}
