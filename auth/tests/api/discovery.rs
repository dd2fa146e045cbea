//! `GET /api/v1/gateway`: a live edge's URL found over NATS, or 503 when none answers.

use reqwest::{Method, StatusCode};

use crate::support::{self, assert_error};

#[tokio::test]
async fn with_no_edge_running_the_gateway_endpoint_says_so_with_503() {
    // The production deadline: with nobody to answer, the 503 comes right after it.
    let auth = support::start_with(&["--discovery-timeout=150ms".to_owned()]).await;
    let started = std::time::Instant::now();
    let (status, body) = auth.call(Method::GET, "/api/v1/gateway", None, None).await;
    let message = assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    );
    assert!(message.contains("no gateway"), "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[tokio::test]
async fn with_two_edges_running_the_gateway_endpoint_answers_one_and_offers_the_other() {
    let auth = support::start().await;
    let mut urls = Vec::new();
    let mut edges = Vec::new();
    for _ in 0..2 {
        let config: edge::Config = kit::config::try_parse_from([
            "edge".to_owned(),
            "--http-addr=127.0.0.1:0".to_owned(),
            "--metrics-addr=127.0.0.1:0".to_owned(),
            format!("--nats-url={}", auth.stack.nats_url),
            format!("--nats-prefix={}", auth.prefix),
            "--stream-max-age=1h".to_owned(),
            "--stream-max-bytes=67108864".to_owned(),
            format!("--cql-nodes={}", auth.stack.cql_nodes),
        ])
        .unwrap();
        let edge = testkit::spawn(edge::Edge::build(config).await.unwrap());
        urls.push(format!("ws://127.0.0.1:{}/gateway", edge.port));
        edges.push(edge);
    }
    // An edge just started answers discovery once its task runs; on a loaded machine that can
    // be after auth's first deadline. Wait until both are offered, then check the answer's shape.
    let body = testkit::eventually(
        "discovery to offer both edges",
        std::time::Duration::from_secs(30),
        || async {
            let (status, body) = auth.call(Method::GET, "/api/v1/gateway", None, None).await;
            let offered = body["alternatives"].as_array().map_or(0, Vec::len) + 1;
            (status == StatusCode::OK && offered == 2).then_some(body)
        },
    )
    .await;
    let url = body["url"].as_str().unwrap().to_owned();
    assert!(urls.contains(&url), "{url} is not one of {urls:?}");
    let other: Vec<&String> = urls.iter().filter(|u| **u != url).collect();
    assert_eq!(body["alternatives"], serde_json::json!(other));
    assert_eq!(
        body["media_url"], "http://127.0.0.1:8084",
        "where avatars are uploaded"
    );

    let js = async_nats::jetstream::new(auth.nats.clone());
    let _ = js.delete_stream(format!("{}_chat", auth.prefix)).await;
    for edge in edges {
        edge.stop().await;
    }
}
