//! Serves the browser client (`web/dist`, built by `npm run build` in `web/`) next to the API, so
//! the client calls the REST API same-origin. Any path that is not a file is a client-side route
//! and gets `index.html` (the single-page app's fallback); `/api/*` never does, so an unknown API
//! route still answers with the API's JSON 404.

use std::path::Path;

use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// The client's files under `dir`, with `index.html` for every other path.
pub fn router(dir: &Path) -> Router {
    let index = dir.join("index.html");
    let files = ServeDir::new(dir)
        .precompressed_gzip()
        .fallback(ServeFile::new(index));
    Router::new()
        .fallback_service(files)
        // Defence in depth for the page that holds the tokens: no framing, no sniffing, and
        // scripts only from this origin.
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
