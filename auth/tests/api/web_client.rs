//! `--web-dir`: auth serves the browser client next to the API: compressed as the browser asks,
//! hashed assets cached for good and the page revalidated, a 404 for a missing file, the page for
//! the client's own routes, and a strict Content-Security-Policy on all of it.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::support::{TestAuth, start_with};

/// The client's real icon, as `web/public` ships it.
fn favicon() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/public/favicon.ico");
    std::fs::read(path).expect("the web client has an icon at web/public/favicon.ico")
}

/// A built client as `npm run build` lays it out, with the `.br` and `.gz` copies its
/// precompress step writes (marked, not compressed: the server sends the bytes it finds).
fn client_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(testkit::unique("web"));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    let write = |path: &str, body: &[u8]| std::fs::write(dir.join(path), body).unwrap();
    write(
        "index.html",
        b"<!doctype html><title>Natter</title><script type=\"module\" src=\"/assets/app-1a2b3c.js\"></script>",
    );
    write("index.html.br", b"br copy of the page");
    write("index.html.gz", b"gzip copy of the page");
    write("assets/app-1a2b3c.js", b"console.log('hi')");
    write("assets/app-1a2b3c.js.br", b"br copy of the script");
    write("assets/app-1a2b3c.js.gz", b"gzip copy of the script");
    write("favicon.ico", &favicon());
    dir
}

async fn start() -> TestAuth {
    start_with(&[
        format!("--web-dir={}", client_dir().display()),
        "--edge-origins=http://127.0.0.1:8080,wss://edge.example.com".to_owned(),
        // Media on S3: the browser PUTs files to the store's public endpoint.
        "--upload-origins=https://files.example.com/natter".to_owned(),
    ])
    .await
}

async fn get(
    auth: &TestAuth,
    path: &str,
    accept_encoding: Option<&str>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = auth.http.get(auth.url(path));
    if let Some(encodings) = accept_encoding {
        request = request.header("accept-encoding", encodings);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn the_client_is_served_with_index_html_for_its_own_routes() {
    let auth = start().await;

    let (status, _, body) = get(&auth, "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("<title>Natter"));

    let (status, headers, _) = get(&auth, "/assets/app-1a2b3c.js", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        header(&headers, "content-type")
            .unwrap()
            .contains("javascript")
    );
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));

    // A client-side route is the app's page, not a 404.
    let (status, _, body) = get(&auth, "/c/123", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("<title>Natter"));
}

#[tokio::test]
async fn files_come_brotli_or_gzip_compressed_as_the_browser_accepts() {
    let auth = start().await;
    for (path, what) in [
        ("/assets/app-1a2b3c.js", "the script"),
        ("/", "the page"),
        ("/c/123", "the page"),
    ] {
        for (accept, encoding, body) in [
            (
                Some("gzip, deflate, br"),
                Some("br"),
                format!("br copy of {what}"),
            ),
            (Some("gzip"), Some("gzip"), format!("gzip copy of {what}")),
            (None, None, String::new()),
        ] {
            let (status, headers, got) = get(&auth, path, accept).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(
                header(&headers, "content-encoding"),
                encoding,
                "{path} for {accept:?}"
            );
            assert_eq!(header(&headers, "vary"), Some("accept-encoding"), "{path}");
            if encoding.is_some() {
                assert_eq!(
                    String::from_utf8(got).unwrap(),
                    body,
                    "{path} for {accept:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn hashed_assets_are_cached_for_a_year_and_the_page_is_revalidated() {
    let auth = start().await;
    let (_, headers, _) = get(&auth, "/assets/app-1a2b3c.js", Some("br")).await;
    assert_eq!(
        header(&headers, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    for path in ["/", "/index.html", "/c/123", "/favicon.ico"] {
        let (_, headers, _) = get(&auth, path, None).await;
        assert_eq!(
            header(&headers, "cache-control"),
            Some("no-cache"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_icon_is_a_real_icon_and_a_missing_file_is_a_json_404_not_the_page() {
    let auth = start().await;
    let (status, headers, body) = get(&auth, "/favicon.ico", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), Some("image/x-icon"));
    assert_eq!(body, favicon());
    assert_eq!(body[..4], [0, 0, 1, 0], "an ICO file");

    for path in [
        "/robots.txt",
        "/assets/app-0ld.js",
        "/assets/",
        "/c/123/app.js",
    ] {
        let (status, headers, body) = get(&auth, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            header(&headers, "cache-control"),
            Some("no-cache"),
            "{path}"
        );
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "not_found", "{path}");
    }
}

#[tokio::test]
async fn every_answer_carries_a_strict_content_security_policy_naming_the_edges_and_the_upload_store()
 {
    let auth = start().await;
    let expected = "default-src 'none'; script-src 'self'; style-src 'self'; \
                    img-src 'self' blob: http://127.0.0.1:8084; \
                    media-src http://127.0.0.1:8084; \
                    connect-src 'self' http://127.0.0.1:8080 ws://127.0.0.1:8080 \
                    https://edge.example.com wss://edge.example.com \
                    http://127.0.0.1:8085 ws://127.0.0.1:8085 \
                    https://files.example.com wss://files.example.com http://127.0.0.1:8084; \
                    object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    for path in ["/", "/c/123", "/assets/app-1a2b3c.js", "/robots.txt"] {
        let (_, headers, _) = get(&auth, path, None).await;
        assert_eq!(
            header(&headers, "content-security-policy"),
            Some(expected),
            "{path}"
        );
        assert_eq!(header(&headers, "x-frame-options"), Some("DENY"), "{path}");
    }
}

#[test]
fn an_edge_origin_that_is_not_an_origin_stops_auth_at_start() {
    let args = |edges: &str| {
        [
            "auth".to_owned(),
            "--database-url=postgres://localhost/natter".to_owned(),
            "--nats-url=nats://127.0.0.1:4222".to_owned(),
            "--redis-url=redis://127.0.0.1:6379".to_owned(),
            format!("--signing-key={}", crate::support::key_path().display()),
            format!("--edge-origins={edges}"),
        ]
    };
    let good = kit::config::try_parse_from::<auth::Config, _, _>(args("http://127.0.0.1:8080"));
    assert!(good.is_ok(), "{:?}", good.err());
    let error = kit::config::try_parse_from::<auth::Config, _, _>(args(
        "http://127.0.0.1:8080,https://edge.example.com/gateway",
    ))
    .unwrap_err();
    assert!(error.contains("is not an edge origin"), "{error}");
}

#[tokio::test]
async fn an_unknown_api_route_is_still_a_json_404_when_the_client_is_served() {
    let auth = start().await;
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
