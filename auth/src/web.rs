//! Serves the browser client (`web/dist`, built by `npm run build` in `web/`) next to the API, so
//! the client calls the REST API same-origin.
//!
//! - A path that names a file gets that file, as brotli or gzip when the browser accepts it (the
//!   build writes `.br` and `.gz` copies beside each file; nothing is compressed per request).
//! - A path that looks like a file (under `/assets/`, or with an extension) and is missing is a
//!   404 in the API's JSON error shape, never the page: a stale script or a missing icon must not
//!   be answered with HTML.
//! - Any other path is a client-side route and gets `index.html`. `/api/*` never reaches this
//!   router, so an unknown API route still answers with the API's JSON 404.
//!
//! Vite names everything under `assets/` after its content hash, so those files are cached for a
//! year as immutable; everything else (`index.html` first) is revalidated on every load, so a
//! deploy shows at the next reload.
//!
//! Every answer carries a strict Content-Security-Policy: the page holds the tokens in
//! localStorage, so scripts come from this origin only (no inline script, no eval), and it may
//! connect only to itself and the edges named by `--edge-origins`.

use std::fmt;
use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use kit::error::ApiError;
use proto::api::error::ErrorCode;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// Where Vite puts the files it names by content hash.
const HASHED: &str = "/assets/";
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");

/// An edge the client may connect to, as given to `--edge-origins` (`http://127.0.0.1:8080`,
/// `wss://edge.example.com`, `https://*.edges.example.com`): its HTTP origin, for the message
/// routes, and its WebSocket origin, for the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeOrigin {
    http: String,
    ws: String,
}

impl EdgeOrigin {
    /// Takes an origin with any of the four schemes; a leading `*.` in the host allows every
    /// subdomain. Paths, queries and credentials are refused: a CSP source is an origin.
    pub fn parse(s: &str) -> Result<Self, String> {
        let refuse = || format!("'{s}' is not an edge origin like https://edge.example.com");
        let s = s.trim().trim_end_matches('/');
        let (scheme, rest) = s.split_once("://").ok_or_else(refuse)?;
        let (http, ws) = match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => ("http", "ws"),
            "https" | "wss" => ("https", "wss"),
            _ => return Err(refuse()),
        };
        // The url crate checks the host and port; the wildcard label is put back afterwards.
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let url = url::Url::parse(&format!("{http}://{rest}")).map_err(|_| refuse())?;
        let host = url.host_str().ok_or_else(refuse)?;
        let plain = url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none()
            && !rest.contains(['/', '?', '#', '@']);
        // Only the characters a host can have, so nothing can end the directive or add another.
        let host_chars = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
        if !plain || !host_chars {
            return Err(refuse());
        }
        let host = if wildcard {
            format!("*.{host}")
        } else {
            host.to_owned()
        };
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        Ok(Self {
            http: format!("{http}://{authority}"),
            ws: format!("{ws}://{authority}"),
        })
    }
}

impl fmt::Display for EdgeOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.http, self.ws)
    }
}

/// The page's Content-Security-Policy. Styles from this origin only: React sets the virtualised
/// list's positions through the DOM's style properties, which the policy does not govern. Images
/// from this origin and media's only (`media`, an origin), so no avatar or file is ever fetched
/// from anywhere else (and `blob:`, the page's own previews of files it is about to upload);
/// uploads go to media too, and recordings and videos play from media alone (`media-src`).
pub fn content_security_policy(edges: &[EdgeOrigin], media: &str) -> String {
    let connect: String = edges.iter().map(|e| format!(" {e}")).collect();
    [
        "default-src 'none'".to_owned(),
        "script-src 'self'".to_owned(),
        "style-src 'self'".to_owned(),
        format!("img-src 'self' blob: {media}"),
        format!("media-src {media}"),
        format!("connect-src 'self'{connect} {media}"),
        "object-src 'none'".to_owned(),
        "base-uri 'none'".to_owned(),
        "form-action 'none'".to_owned(),
        "frame-ancestors 'none'".to_owned(),
    ]
    .join("; ")
}

/// The client's files under `dir`, with `index.html` for client routes.
pub fn router(dir: &Path, edges: &[EdgeOrigin], media: &url::Url) -> Router {
    if edges.is_empty() {
        tracing::warn!(
            "--web-dir without --edge-origins: the page may connect to its own origin only, so \
             it cannot reach edges on other origins"
        );
    }
    let media = media.origin().ascii_serialization();
    let csp = HeaderValue::from_str(&content_security_policy(edges, &media))
        .expect("EdgeOrigin::parse lets only header-safe characters through");
    let page = ServeFile::new(dir.join("index.html"))
        .precompressed_br()
        .precompressed_gzip();
    let files = ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(page_or_not_found.with_state(page));
    Router::new()
        .fallback_service(files)
        .layer(middleware::from_fn(cache_control))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        // Defence in depth for browsers without CSP's frame-ancestors, and against sniffing.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}

/// Whether a path asks for a file rather than a page of the client.
fn names_a_file(path: &str) -> bool {
    path.starts_with(HASHED)
        || path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.'))
}

/// No file at this path: the client's page for its own routes, a JSON 404 for a missing file.
async fn page_or_not_found(State(mut page): State<ServeFile>, request: Request) -> Response {
    if names_a_file(request.uri().path()) {
        return ApiError::new(ErrorCode::NotFound, "no such file").into_response();
    }
    match page.try_call(request).await {
        Ok(response) => response.map(Body::new),
        Err(error) => {
            tracing::error!(%error, "cannot read the web client's index.html");
            ApiError::new(ErrorCode::Internal, "the web client is not available").into_response()
        }
    }
}

async fn cache_control(request: Request, next: Next) -> Response {
    let hashed = request.uri().path().starts_with(HASHED);
    let mut response = next.run(request).await;
    let found = matches!(
        response.status(),
        StatusCode::OK | StatusCode::NOT_MODIFIED | StatusCode::PARTIAL_CONTENT
    );
    let value = if hashed && found {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    response.headers_mut().insert(header::CACHE_CONTROL, value);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(s: &str) -> String {
        EdgeOrigin::parse(s).unwrap().to_string()
    }

    #[test]
    fn an_http_origin_allows_its_websocket_origin_too() {
        assert_eq!(
            origin("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080 ws://127.0.0.1:8080"
        );
        assert_eq!(
            origin("wss://edge.example.com/"),
            "https://edge.example.com wss://edge.example.com"
        );
    }

    #[test]
    fn a_wildcard_subdomain_is_kept() {
        assert_eq!(
            origin("https://*.edges.example.com:8443"),
            "https://*.edges.example.com:8443 wss://*.edges.example.com:8443"
        );
    }

    #[test]
    fn anything_but_an_origin_is_refused() {
        for bad in [
            "127.0.0.1:8080",
            "ftp://edge.example.com",
            "https://edge.example.com/gateway",
            "https://edge.example.com?x=1",
            "https://user@edge.example.com",
            "https://edge.example.com; script-src *",
            "https://edge.example.com'unsafe-inline'",
            "https://a.*.example.com",
            "https://",
        ] {
            assert!(EdgeOrigin::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn the_policy_allows_scripts_and_styles_from_the_page_only() {
        let edges = [EdgeOrigin::parse("http://127.0.0.1:8080").unwrap()];
        let csp = content_security_policy(&edges, "http://127.0.0.1:8084");
        assert!(
            csp.contains("img-src 'self' blob: http://127.0.0.1:8084;"),
            "{csp}"
        );
        assert!(csp.contains("media-src http://127.0.0.1:8084;"), "{csp}");
        assert!(csp.contains("script-src 'self';"));
        assert!(csp.contains("style-src 'self';"));
        assert!(csp.contains(
            "connect-src 'self' http://127.0.0.1:8080 ws://127.0.0.1:8080 http://127.0.0.1:8084;"
        ));
        assert!(!csp.contains("unsafe"));
    }

    #[test]
    fn paths_with_an_extension_or_under_assets_name_files() {
        assert!(names_a_file("/favicon.ico"));
        assert!(names_a_file("/assets/index-abc.js"));
        assert!(names_a_file("/assets/"));
        assert!(!names_a_file("/"));
        assert!(!names_a_file("/c/123"));
    }
}
