//! READY grows with channels, never with their members: a user in the most channels, each full,
//! still gets a small READY and can identify and resume; and a large one arrives whole.

use serde_json::json;

use crate::support::{Client, World};

/// READY for the most channels (the channel limit, 200), each full (the member limit, 100), stays
/// under this: 64 KiB is a few hundred bytes per channel, what a phone on a slow link reads in a
/// moment, and 1/64 of the edge's 4 MiB write buffer. The old READY, which inlined every member
/// (and their presence), was about 3 MB here, and at about 1,100 such channels passed the write
/// buffer, so IDENTIFY and RESUME failed outright.
const READY_BOUND: usize = 64 * 1024;

#[tokio::test]
async fn a_user_in_the_most_channels_each_full_gets_a_small_ready_and_can_identify_and_resume() {
    let world = World::start(2, &[]).await;
    let vic = world.sign_up("vic").await;
    let base = vic.id.as_i64() + 1_000_000;
    let channels: Vec<i64> = (0..200).map(|i| base + 10_000 + i).collect();
    // The owner, 98 more and vic: 100 members each.
    let mut members: Vec<i64> = (0..99).map(|i| base + i).collect();
    members.push(vic.id.as_i64());
    world.populate(&channels, &members).await;

    let mut vic_1 = Client::connect(&world.gateway(0), &vic).await;
    let size = vic_1.ready.to_string().len();
    eprintln!("READY for 200 channels of 100 members: {size} bytes");
    assert!(size < READY_BOUND, "READY is {size} bytes");
    let listed = vic_1.ready["d"]["channels"].as_array().unwrap();
    assert_eq!(listed.len(), 200);
    assert!(
        listed
            .iter()
            .all(|c| c["member_count"] == 100 && c["role"] == "member")
    );
    assert!(listed.iter().all(|c| c.get("members").is_none()));

    // That is the most: nobody can add vic to one more, even with vic's consent.
    world.allow_adds(&vic).await;
    let host = world.sign_up("host").await;
    let (_, room) = world
        .call(
            reqwest::Method::POST,
            "/api/v1/channels",
            Some(&host.token),
            json!({"name": "one more"}),
        )
        .await;
    let (status, body) = world
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/channels/{}/members", room["id"].as_str().unwrap()),
            Some(&host.token),
            json!({"username": "vic"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "channel_limit_reached");

    // Members come on request: all 100 of one channel, in one chunk.
    vic_1
        .send_raw(json!({"op": 8, "d": {"channel_id": channels[7].to_string(), "limit": 1000, "nonce": "m"}}))
        .await;
    let chunk = vic_1.next_event("CHANNEL_MEMBERS_CHUNK").await;
    assert_eq!(chunk["d"]["members"].as_array().unwrap().len(), 100);
    assert_eq!(chunk["d"]["chunk_count"], 1);

    // RESUME, on the other edge: RESUMED is as small.
    let session = vic_1.session_id();
    let seq = vic_1.seq;
    drop(vic_1);
    let (resumed, _) = Client::resume(&world.gateway(1), &vic, &session, seq).await;
    let size = resumed.ready.to_string().len();
    assert!(size < READY_BOUND, "RESUMED is {size} bytes");
    assert_eq!(
        resumed.ready["d"]["channels"].as_array().map(Vec::len),
        Some(200)
    );
}

#[tokio::test]
async fn a_ready_larger_than_64_kib_arrives_whole() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    // Channel topics are up to 1,024 characters: READY can pass 64 KiB with long ones (at most
    // about 4.7 KiB a channel, under 1 MiB for the most channels), and still arrives whole.
    let topic = "t".repeat(1024);
    for i in 0..70 {
        let (status, body) = world
            .call(
                reqwest::Method::POST,
                "/api/v1/channels",
                Some(&ann.token),
                json!({"name": format!("room-{i}"), "topic": topic}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let ann_1 = Client::connect(&world.gateway(0), &ann).await;
    assert!(ann_1.ready.to_string().len() > 70 * 1024);
    assert_eq!(
        ann_1.ready["d"]["channels"].as_array().map(Vec::len),
        Some(70)
    );
}
