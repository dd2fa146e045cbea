//! A token whose session auth has ended (signed out, revoked) is refused like any bad token: 401
//! at the edge's REST routes and 4004 at IDENTIFY, so clients sign in again instead of retrying.
//! Auth being unreachable is different: 503 and 4000, worth retrying.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Client, World, send_json};

#[tokio::test]
async fn a_signed_out_token_gets_401_from_the_edges_rest_and_4004_at_identify() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let room = world.channel(&ann, "room", &[]).await;
    let messages = format!("/api/v1/channels/{room}/messages");
    let presences = format!("/api/v1/presences?user_ids={}", ann.id);
    // Still signed in: the edge knows the token (and has auth's keys).
    let (status, body) = world.edge_call(0, Method::GET, &messages, &ann, None).await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = world
        .call(
            Method::POST,
            "/api/v1/auth/sign-out",
            Some(&ann.token),
            Value::Null,
        )
        .await;
    assert_eq!(status, 204, "{body}");

    // The token still verifies (its signature and expiry are fine), but its session is over.
    for (method, path, body) in [
        (Method::GET, messages.as_str(), None),
        (
            Method::POST,
            messages.as_str(),
            Some(json!({"content": "hi"})),
        ),
        (Method::GET, presences.as_str(), None),
    ] {
        let (status, answer) = world.edge_call(0, method.clone(), path, &ann, body).await;
        assert_eq!(status, 401, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "unauthorized", "{method} {path}: {answer}");
    }
    let (mut socket, _) = Client::open(&world.gateway(0)).await;
    send_json(&mut socket, json!({"op": 2, "d": {"token": ann.token}})).await;
    assert_eq!(crate::support::closed(&mut socket).await, Some(4004));
}

#[tokio::test]
async fn auth_being_unreachable_is_503_and_4000_worth_retrying() {
    let mut world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let room = world.channel(&ann, "room", &[]).await;
    let messages = format!("/api/v1/channels/{room}/messages");
    // The edge fetches auth's keys with the first token it sees, and keeps them.
    drop(Client::connect(&world.gateway(0), &ann).await);

    world.auth.halt().await;
    let (status, body) = world.edge_call(0, Method::GET, &messages, &ann, None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "service_unavailable", "{body}");
    let (mut socket, _) = Client::open(&world.gateway(0)).await;
    send_json(&mut socket, json!({"op": 2, "d": {"token": ann.token}})).await;
    assert_eq!(crate::support::closed(&mut socket).await, Some(4000));
}
