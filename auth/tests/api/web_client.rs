//! `--web-dir`: auth serves the browser client next to the API.

use reqwest::StatusCode;

use crate::support::start_with;

fn client_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(shared::testing::unique("web"));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>Natter</title>",
    )
    .unwrap();
    std::fs::write(dir.join("assets/app.js"), "console.log('hi')").unwrap();
    dir
}

#[tokio::test]
async fn the_client_is_served_with_index_html_for_its_own_routes() {
    let dir = client_dir();
    let auth = start_with(&[format!("--web-dir={}", dir.display())]).await;
    let get = |path: &str| auth.http.get(auth.url(path)).send();

    let index = get("/").await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert!(index.text().await.unwrap().contains("<title>Natter"));

    let script = get("/assets/app.js").await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert_eq!(script.headers()["x-content-type-options"], "nosniff");

    // A client-side route is the app's page, not a 404.
    let route = get("/c/123").await.unwrap();
    assert_eq!(route.status(), StatusCode::OK);
    assert!(route.text().await.unwrap().contains("<title>Natter"));
}

#[tokio::test]
async fn an_unknown_api_route_is_still_a_json_404_when_the_client_is_served() {
    let dir = client_dir();
    let auth = start_with(&[format!("--web-dir={}", dir.display())]).await;
    let response = auth
        .http
        .get(auth.url("/api/v1/no-such-thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
}
