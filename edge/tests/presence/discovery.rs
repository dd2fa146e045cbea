//! Discovery: new clients go to the less-loaded edge; a draining edge and a killed one are no
//! longer offered.

use std::time::Duration;

use serde_json::Value;
use shared::testing;

use crate::support::{Client, World};
use crate::world::{EDGE, EdgeProcess};

async fn gateway(world: &World) -> (u16, Value) {
    world
        .call(reqwest::Method::GET, "/api/v1/gateway", None, Value::Null)
        .await
}

fn offered(body: &Value) -> Vec<String> {
    let mut urls = vec![body["url"].as_str().unwrap_or_default().to_owned()];
    urls.extend(
        body["alternatives"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str().map(str::to_owned)),
    );
    urls
}

#[tokio::test]
async fn new_clients_are_sent_to_the_less_loaded_edge() {
    let world = World::start(2, EDGE).await;
    let ann = world.sign_up("ann").await;
    let mut busy = Vec::new();
    for _ in 0..3 {
        busy.push(Client::connect(&world.gateway(0), &ann).await);
    }
    for _ in 0..5 {
        let (status, body) = gateway(&world).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["url"], world.gateway(1), "{body}");
        assert_eq!(body["alternatives"], serde_json::json!([world.gateway(0)]));
    }
    // Once edge 0 empties and edge 1 fills, the choice follows.
    drop(busy);
    let mut other = Vec::new();
    for _ in 0..3 {
        other.push(Client::connect(&world.gateway(1), &ann).await);
    }
    testing::eventually(
        "discovery to follow the load",
        Duration::from_secs(10),
        || async { (gateway(&world).await.1["url"] == world.gateway(0)).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_draining_edge_and_a_killed_edge_are_no_longer_offered() {
    let mut world = World::start(2, EDGE).await;
    let mut doomed = EdgeProcess::start(&world, 9, EDGE).await;
    // A new edge is offered once it answers discovery (a process just started on a loaded
    // machine may miss the first deadline).
    let body = testing::eventually(
        "all three edges to be offered",
        Duration::from_secs(15),
        || async {
            let (_, body) = gateway(&world).await;
            (offered(&body).len() == 3).then_some(body)
        },
    )
    .await;
    assert!(offered(&body).contains(&doomed.gateway()), "{body}");

    // A killed edge answers no discovery request, so it is no longer offered.
    doomed.kill();
    testing::eventually(
        "the killed edge to be dropped",
        Duration::from_secs(30),
        || async {
            let (_, body) = gateway(&world).await;
            (!offered(&body).contains(&doomed.gateway())).then_some(())
        },
    )
    .await;

    let draining_url = world.gateway(1);
    let draining = world.edges.remove(1);
    let drained = tokio::spawn(draining.stop());
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..5 {
        let (status, body) = gateway(&world).await;
        assert_eq!(status, 200, "{body}");
        assert!(!offered(&body).contains(&draining_url), "{body}");
        assert_eq!(body["url"], world.gateway(0));
    }
    drained.await.unwrap();

    let last = world.edges.remove(0);
    last.stop().await;
    let (status, body) = gateway(&world).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no gateway"),
        "{body}"
    );
}
