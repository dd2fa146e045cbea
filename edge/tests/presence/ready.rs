//! READY grows with channels, members and presences: it must arrive whole however large.

use serde_json::json;

use crate::support::{Client, World};

#[tokio::test]
async fn a_ready_larger_than_64_kib_arrives_whole() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
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
    assert_eq!(ann_1.ready["d"]["channels"].as_array().unwrap().len(), 70);
}
