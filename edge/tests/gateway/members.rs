//! Members on request (op 8, Discord's REQUEST_GUILD_MEMBERS): CHANNEL_MEMBERS_CHUNK dispatches of
//! at most 100 members, in user-id order, with the request's nonce; the ids asked for that are not
//! members named; a request the edge cannot answer answered with an ERROR, the socket kept.

use serde_json::{Value, json};

use crate::support::{Client, World};

async fn chunks(client: &mut Client, request: Value) -> Vec<Value> {
    client.send_raw(json!({"op": 8, "d": request})).await;
    let mut chunks = Vec::new();
    loop {
        let chunk = client.next_event("CHANNEL_MEMBERS_CHUNK").await;
        let count = chunk["d"]["chunk_count"].as_u64().unwrap();
        chunks.push(chunk["d"].clone());
        if chunks.len() as u64 == count {
            return chunks;
        }
    }
}

#[tokio::test]
async fn members_come_on_request_in_chunks_of_at_most_100_in_id_order() {
    let world = World::start(1, &[]).await;
    let amy = world.sign_up("amy").await;
    let base = amy.id.as_i64() + 1_000_000;
    let channel = base + 5_000;
    let mut members: Vec<i64> = (0..149).map(|i| base + i).collect();
    members.push(amy.id.as_i64());
    world.populate(&[channel], &members).await;
    let mut amy_1 = Client::connect(&world.gateway(0), &amy).await;

    let all = chunks(
        &mut amy_1,
        json!({"channel_id": channel.to_string(), "limit": 1000, "nonce": "all"}),
    )
    .await;
    assert_eq!(all.len(), 2);
    let mut listed = Vec::new();
    for (index, chunk) in all.iter().enumerate() {
        assert_eq!(chunk["chunk_index"], index);
        assert_eq!(chunk["nonce"], "all");
        assert!(chunk.get("presences").is_none(), "not asked for");
        for member in chunk["members"].as_array().unwrap() {
            listed.push(
                member["user"]["id"]
                    .as_str()
                    .unwrap()
                    .parse::<i64>()
                    .unwrap(),
            );
        }
    }
    let owner = members[0];
    members.sort_unstable();
    assert_eq!(listed, members);
    let roles: Vec<&Value> = all
        .iter()
        .flat_map(|c| c["members"].as_array().unwrap())
        .filter(|m| m["role"] == "owner")
        .map(|m| &m["user"]["id"])
        .collect();
    assert_eq!(roles, [&json!(owner.to_string())]);

    let stranger = base + 9_999;
    let some = chunks(
        &mut amy_1,
        json!({"channel_id": channel.to_string(),
               "user_ids": [members[3].to_string(), stranger.to_string()], "nonce": "some"}),
    )
    .await;
    assert_eq!(some[0]["members"].as_array().unwrap().len(), 1);
    assert_eq!(some[0]["not_found"], json!([stranger.to_string()]));

    // Requests the edge cannot answer get an ERROR with their nonce; the socket stays open.
    for (request, code) in [
        (
            json!({"channel_id": channel.to_string(), "limit": 0, "nonce": "a"}),
            "invalid_request",
        ),
        (
            json!({"channel_id": channel.to_string(), "limit": 5, "user_ids": ["1"], "nonce": "b"}),
            "invalid_request",
        ),
        (
            json!({"channel_id": "42", "limit": 5, "nonce": "c"}),
            "unknown_channel",
        ),
    ] {
        let nonce = request["nonce"].clone();
        let answer = amy_1.request(json!({"op": 8, "d": request})).await;
        assert_eq!(answer["op"], 25, "{answer}");
        assert_eq!(answer["d"]["code"], code, "{answer}");
        assert_eq!(answer["d"]["nonce"], nonce);
    }
    let ok = chunks(
        &mut amy_1,
        json!({"channel_id": channel.to_string(), "limit": 1, "nonce": "still open"}),
    )
    .await;
    assert_eq!(ok[0]["members"].as_array().unwrap().len(), 1);
}
