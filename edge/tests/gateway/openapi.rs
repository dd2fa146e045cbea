//! The one OpenAPI document (auth serves it) describes the edges' routes too: every route it says
//! an edge serves is one this edge answers (with 401 to a bad token, never "no such route").

use serde_json::Value;

use crate::support::World;

#[tokio::test]
async fn every_route_the_document_gives_to_the_edges_is_one_an_edge_answers() {
    let world = World::start(1, &[]).await;
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(world.auth.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(servers) = item["servers"].as_array() else {
            continue;
        };
        assert!(
            servers[0]["url"].as_str().unwrap().contains("{edge}"),
            "{path}: {servers:?}"
        );
        // Ids in the path: any will do, the token is refused first.
        let concrete = path.replace("{id}", "1").replace("{message_id}", "2");
        for method in ["get", "post", "put", "patch", "delete"] {
            if item[method].is_null() {
                continue;
            }
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = http
                .request(method.clone(), world.edge_url(0, &concrete))
                .bearer_auth("not-a-token")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                (status, &body["code"]),
                (401, &Value::from("unauthorized")),
                "{method} {path}: {body}"
            );
            checked += 1;
        }
    }
    // History, send, edit, delete, ack, reactions (add, remove, who, clear), pins (list, pin,
    // unpin), presences and search (a server's, a channel's).
    assert_eq!(checked, 15, "the document names {checked} edge routes");
}
