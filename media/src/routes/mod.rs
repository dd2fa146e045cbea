//! Media's HTTP routes, grouped by resource.
//!
//! - [`uploads`]: upload slots for a message's files, and the signed PUT that stores their bytes.
//! - [`files`]: a message's files, served to holders of their signed URLs.
//! - [`images`]: avatars and server icons, squared, set through auth, served to anyone.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post, put};

use crate::access::Access;
use crate::files::Files;
use crate::storage::Storage;
use kit::signing::UrlSigner;

pub mod files;
pub mod images;
pub mod uploads;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub storage: Storage,
    pub access: Access,
    pub signer: UrlSigner,
    pub files: Files,
    pub settings: Arc<Settings>,
}

/// The rules uploads follow.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where clients reach this service (upload and file URLs begin with it).
    pub public_url: String,
    /// The largest file accepted, in bytes.
    pub max_file_size: u64,
    /// How long an upload slot's URL stays valid.
    pub upload_url_ttl: Duration,
}

pub fn router(state: AppState) -> Router {
    // Browsers on any page may call media: every route that changes anything takes a bearer
    // token (never a cookie), and files are served to holders of their signed URLs.
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([
            axum::http::Method::GET,
            axum::http::Method::POST,
            axum::http::Method::PUT,
        ])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
        ])
        .max_age(Duration::from_secs(600));
    Router::new()
        .route(
            "/api/v1/channels/{id}/attachments",
            post(uploads::create_slots),
        )
        .route(
            "/api/v1/uploads/{channel}/{user}/{nonce}/{filename}",
            put(uploads::upload),
        )
        .route(
            "/attachments/{channel}/{message}/{attachment}/{filename}",
            get(files::file),
        )
        .route("/api/v1/users/@me/avatar", put(images::avatar))
        .route("/api/v1/guilds/{id}/icon", put(images::icon))
        .route("/avatars/{owner}/{name}", get(images::serve_avatar))
        .route("/icons/{owner}/{name}", get(images::serve_icon))
        .layer(cors)
        .with_state(state)
}
