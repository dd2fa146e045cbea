//! The LiveKit server: its Twirp room service, called with tokens Natter signs itself
//! (`smoke::livekit`).

use std::time::Duration;

use smoke::livekit::{AccessToken, CreateRoom, LiveKitError, RoomService, VideoGrants};
use smoke::{Engines, Secret, unique};

/// A token allowed to create, list and delete rooms, signed with `secret`.
fn admin_token(api_key: &str, secret: &Secret) -> String {
    AccessToken::new(
        "natter-smoke",
        Duration::from_secs(300),
        VideoGrants {
            room_create: true,
            room_list: true,
            room_admin: true,
            ..VideoGrants::default()
        },
    )
    .sign(api_key, secret)
    .expect("sign a LiveKit token")
}

fn rooms(token: String) -> RoomService {
    RoomService::new(&Engines::get().livekit.http_url(), token).expect("a room service client")
}

#[tokio::test]
async fn a_room_is_created_listed_and_deleted_with_a_token_natter_signed() {
    let livekit = Engines::get().livekit;
    let client = rooms(admin_token(&livekit.api_key, &livekit.api_secret));
    let name = unique("room");

    let room = client
        .create_room(&CreateRoom {
            name: name.clone(),
            empty_timeout: 60,
            max_participants: 25,
            ..CreateRoom::default()
        })
        .await
        .expect("create a room");
    assert_eq!(room.name, name);
    assert!(!room.sid.is_empty(), "the room has a server id");
    assert_eq!(room.max_participants, 25);

    let listed = client
        .list_rooms(std::slice::from_ref(&name))
        .await
        .expect("list rooms");
    assert_eq!(
        listed.iter().map(|r| (&r.name, &r.sid)).collect::<Vec<_>>(),
        [(&room.name, &room.sid)]
    );

    // Multi-node routing: the room and this node are in the stack's Redis, where a second
    // LiveKit node would find them.
    let redis = redis::Client::open(livekit.redis_url.as_str()).expect("LiveKit's Redis URL");
    let mut redis = redis
        .get_multiplexed_async_connection()
        .await
        .expect("reach LiveKit's Redis");
    let stored: bool = redis::cmd("HEXISTS")
        .arg("rooms")
        .arg(&name)
        .query_async(&mut redis)
        .await
        .expect("HEXISTS rooms");
    assert!(stored, "the room is kept in Redis");
    let nodes: u64 = redis::cmd("HLEN")
        .arg("nodes")
        .query_async(&mut redis)
        .await
        .expect("HLEN nodes");
    assert!(nodes >= 1, "the node registered itself in Redis");

    client.delete_room(&name).await.expect("delete the room");
    let after = client
        .list_rooms(std::slice::from_ref(&name))
        .await
        .expect("list rooms again");
    assert!(after.is_empty(), "a deleted room is gone, got {after:?}");
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused() {
    let livekit = Engines::get().livekit;
    let name = unique("forged");
    let forged = rooms(admin_token(
        &livekit.api_key,
        &Secret::new("not-the-api-secret-not-the-api-secret-0000"),
    ));

    let refused = forged
        .create_room(&CreateRoom {
            name: name.clone(),
            ..CreateRoom::default()
        })
        .await;
    assert!(
        matches!(
            refused,
            Err(LiveKitError::Refused {
                status: reqwest::StatusCode::UNAUTHORIZED,
                ..
            })
        ),
        "a forged token is refused: {refused:?}"
    );

    let genuine = rooms(admin_token(&livekit.api_key, &livekit.api_secret));
    let listed = genuine.list_rooms(&[name]).await.expect("list rooms");
    assert!(listed.is_empty(), "no room was created: {listed:?}");
}
