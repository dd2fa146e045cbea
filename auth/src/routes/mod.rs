//! The REST API under `/api/v1`, one module per resource, and the OpenAPI document generated from
//! the handlers' annotations (served at `/api/v1/openapi.json`).

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{any, delete, get, patch, post, put};
use kit::error::ApiError;
use proto::api::edge;
use proto::api::error::ErrorCode;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi;

use crate::config::Config;
use crate::state::AppState;

pub mod audit;
pub mod auth;
pub mod channels;
pub mod consent;
pub mod gateway;
pub mod guild_channels;
pub mod guilds;
pub mod invites;
pub mod members;
pub mod notifications;
pub mod roles;
pub mod users;
pub mod voice;

/// The origins the page may connect to besides its own: the edges, and the media server voice
/// and video go through (its public URL).
fn connect_origins(config: &Config) -> Result<Vec<crate::web::EdgeOrigin>, String> {
    let mut origins = config.edge_origins.clone();
    origins.push(crate::web::EdgeOrigin::parse(
        config.notify_url.origin().ascii_serialization().as_str(),
    )?);
    for url in &config.upload_origins {
        origins.push(crate::web::EdgeOrigin::parse(
            url.origin().ascii_serialization().as_str(),
        )?);
    }
    let voice = &config.voice;
    if let Some(url) = voice
        .livekit_public_url
        .as_ref()
        .or(voice.livekit_url.as_ref())
    {
        origins.push(crate::web::EdgeOrigin::parse(
            url.origin().ascii_serialization().as_str(),
        )?);
    }
    Ok(origins)
}

/// Every API route, with the body cap, CORS and JSON answers for unknown routes and methods.
pub fn router(state: AppState, config: &Config) -> Result<Router, String> {
    let api = Router::new()
        .route("/api/v1/auth/sign-up", post(auth::sign_up))
        .route("/api/v1/auth/sign-in", post(auth::sign_in))
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/auth/sign-out", post(auth::sign_out))
        .route("/api/v1/auth/jwks", get(auth::jwks))
        .route("/.well-known/jwks.json", get(auth::jwks))
        .route("/api/v1/users/@me", get(users::me).patch(users::update_me))
        .route(
            "/api/v1/users/@me/channels",
            get(channels::mine).post(channels::open_dm_by_id),
        )
        .route("/api/v1/users/@me/dms", post(channels::open_dm))
        .route("/api/v1/users/@me/guilds", get(guilds::mine))
        .route(
            "/api/v1/users/@me/guilds/settings",
            get(notifications::settings),
        )
        .route(
            "/api/v1/users/@me/guilds/{id}/settings",
            patch(notifications::update_settings),
        )
        .route(
            "/api/v1/users/@me/push-subscriptions",
            post(notifications::subscribe).delete(notifications::unsubscribe),
        )
        .route("/api/v1/users/@me/guilds/{id}", delete(guilds::leave))
        .route("/api/v1/guilds", post(guilds::create))
        .route(
            "/api/v1/guilds/{id}",
            get(guilds::get)
                .patch(guilds::update)
                .delete(guilds::delete),
        )
        .route(
            "/api/v1/guilds/{id}/channels",
            get(guild_channels::list)
                .post(guild_channels::create)
                .patch(guild_channels::reorder),
        )
        .route(
            "/api/v1/guilds/{id}/roles",
            get(roles::list).post(roles::create),
        )
        .route(
            "/api/v1/guilds/{id}/roles/{role}",
            patch(roles::update).delete(roles::delete),
        )
        .route("/api/v1/guilds/{id}/members", get(members::list))
        .route(
            "/api/v1/guilds/{id}/members/{user}",
            get(members::get)
                .patch(members::update)
                .delete(members::kick),
        )
        .route(
            "/api/v1/guilds/{id}/members/{user}/roles/{role}",
            put(members::add_role).delete(members::remove_role),
        )
        .route("/api/v1/guilds/{id}/bans", get(members::bans))
        .route(
            "/api/v1/guilds/{id}/bans/{user}",
            put(members::ban).delete(members::unban),
        )
        .route(
            "/api/v1/guilds/{id}/invites",
            get(invites::list).post(invites::create),
        )
        .route("/api/v1/guilds/{id}/audit-logs", get(audit::audit_log))
        .route(
            "/api/v1/invites/{code}",
            get(invites::preview)
                .post(invites::accept)
                .delete(invites::revoke),
        )
        .route(
            "/api/v1/channels/{id}/invites",
            post(invites::create_in_channel),
        )
        .route(
            "/api/v1/channels/{id}/permissions/{overwrite_id}",
            put(guild_channels::put_overwrite).delete(guild_channels::delete_overwrite),
        )
        .route(
            "/api/v1/users/@me/settings",
            get(consent::settings).patch(consent::update_settings),
        )
        .route(
            "/api/v1/users/@me/relationships",
            get(consent::relationships),
        )
        .route(
            "/api/v1/users/@me/relationships/{user_id}",
            put(consent::block).delete(consent::unblock),
        )
        .route(
            "/api/v1/users/by-username/{username}",
            get(users::by_username),
        )
        .route("/api/v1/users/{id}", get(users::by_id))
        .route("/api/v1/users/{id}/profile", get(users::profile))
        .route("/api/v1/channels", post(channels::create))
        .route(
            "/api/v1/channels/{id}",
            get(channels::get)
                .patch(channels::update)
                .delete(channels::delete),
        )
        .route(
            "/api/v1/channels/{id}/members",
            get(channels::members).post(channels::add_member),
        )
        .route("/api/v1/channels/{id}/members/@me", delete(channels::leave))
        .route(
            "/api/v1/channels/{id}/members/{username}",
            delete(channels::remove_member),
        )
        .route(
            "/api/v1/channels/{id}/moderators/{username}",
            put(channels::add_moderator).delete(channels::remove_moderator),
        )
        .route("/api/v1/gateway", get(gateway::gateway))
        .route("/api/v1/voice/livekit", post(voice::livekit_webhook))
        .route(
            "/api/v1/channels/{id}/call/stop-ringing",
            post(voice::stop_ringing),
        )
        .route("/api/v1/openapi.json", get(openapi_json));
    let api = match &config.web_dir {
        // The browser client's files, with its index.html for any other path; /api/* stays JSON.
        Some(dir) => {
            api.route("/api/{*rest}", any(not_found))
                .fallback_service(crate::web::router(
                    dir,
                    &connect_origins(config)?,
                    &config.media_url,
                ))
        }
        None => api.fallback(not_found),
    };
    let api = api
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state);
    Ok(match cors(&config.cors_origins)? {
        Some(layer) => api.layer(layer),
        None => api,
    })
}

fn cors(origins: &[String]) -> Result<Option<CorsLayer>, String> {
    let origins: Vec<&str> = origins
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins == ["*"] {
        AllowOrigin::any()
    } else {
        let parsed = origins
            .iter()
            .map(|o| {
                url::Url::parse(o)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .and_then(|_| HeaderValue::from_str(o.trim_end_matches('/')).ok())
                    .ok_or_else(|| format!("'{o}' is not an origin like https://chat.example.com"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(parsed)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::PUT,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static(kit::extract::AUDIT_LOG_REASON),
            ])
            .expose_headers([
                header::RETRY_AFTER,
                header::HeaderName::from_static("x-ratelimit-limit"),
                header::HeaderName::from_static("x-ratelimit-remaining"),
                header::HeaderName::from_static("x-ratelimit-reset"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    ))
}

async fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no such route; see /api/v1/openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take that method",
    )
}

async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
    }
}

/// Every route that takes a body refuses the same bodies the same way (`ApiJson` and the body
/// cap): 400 for JSON that is not the route's shape, 413 over `--max-body-bytes`, 415 for a body
/// that is not `application/json`. Listed on each, generically, so no route can forget them.
struct BodyAnswers;

impl utoipa::Modify for BodyAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::ResponseBuilder;
        use utoipa::openapi::content::ContentBuilder;
        let answers = [
            (
                "400",
                "The body is not JSON of this route's shape, or a field breaks its rule (see `fields`)",
            ),
            (
                "413",
                "The body is larger than the service accepts (`--max-body-bytes`, 64 KiB by default)",
            ),
            ("415", "The body is not `application/json`"),
        ];
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
                &mut item.get,
            ];
            for operation in operations.into_iter().flatten() {
                if operation.request_body.is_none() {
                    continue;
                }
                for (status, description) in answers {
                    let error = ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build();
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(description)
                                .content("application/json", error)
                                .build()
                                .into()
                        });
                }
            }
        }
    }
}

/// The edges' routes are served by the edges: each says so with a server of its own, an edge's
/// HTTP origin, so a client generated from the document calls the right host.
struct EdgeServers;

impl utoipa::Modify for EdgeServers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::server::{ServerBuilder, ServerVariableBuilder};
        let edge = ServerBuilder::new()
            .url("http://{edge}")
            .description(Some(
                "An edge: the host and port of the gateway URL `GET /api/v1/gateway` answers",
            ))
            .parameter(
                "edge",
                ServerVariableBuilder::new().default_value("127.0.0.1:8080"),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let served_by_edges = [&item.get, &item.post, &item.patch, &item.delete]
                .into_iter()
                .flatten()
                .filter_map(|operation| operation.tags.as_ref())
                .flatten()
                .any(|tag| tag == "messages" || tag == "presences");
            if served_by_edges {
                item.servers = Some(vec![edge.clone()]);
            }
        }
    }
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Natter REST API",
        description = "Every REST route of Natter. Auth serves accounts, tokens, profiles, \
                       channels, DMs and servers (this document's origin); the edges serve messages and \
                       presences (each of those routes names its server). Every error is an \
                       ErrorBody. Ids are Snowflakes written as strings."
    ),
    paths(
        auth::sign_up, auth::sign_in, auth::refresh, auth::sign_out, auth::jwks,
        users::me, users::update_me, users::by_id, users::by_username, users::profile,
        consent::settings, consent::update_settings, consent::relationships, consent::block,
        consent::unblock,
        notifications::settings, notifications::update_settings, notifications::subscribe,
        notifications::unsubscribe,
        channels::create, channels::get, channels::update, channels::delete, channels::mine,
        channels::members, channels::add_member, channels::remove_member, channels::leave,
        channels::add_moderator, channels::remove_moderator, channels::open_dm,
        channels::open_dm_by_id,
        guilds::create, guilds::get, guilds::mine, guilds::update, guilds::delete, guilds::leave,
        guild_channels::list, guild_channels::create, guild_channels::reorder,
        guild_channels::put_overwrite, guild_channels::delete_overwrite,
        roles::list, roles::create, roles::update, roles::delete,
        members::list, members::get, members::update, members::kick, members::add_role,
        members::remove_role, members::bans, members::ban, members::unban,
        invites::list, invites::create, invites::create_in_channel, invites::preview,
        invites::accept, invites::revoke,
        audit::audit_log,
        gateway::gateway,
        voice::livekit_webhook, voice::stop_ringing,
        edge::message_history, edge::send_message, edge::edit_message, edge::delete_message,
        edge::mark_read, edge::add_reaction, edge::remove_reaction, edge::reactors,
        edge::clear_reactions, edge::pin_message, edge::unpin_message, edge::pins,
        edge::presences, edge::search_guild_messages, edge::search_channel_messages,
    ),
    modifiers(&BearerAuth, &BodyAnswers, &EdgeServers),
    tags(
        (name = "auth", description = "Sign up, sign in, refresh, sign out, signing keys"),
        (name = "users", description = "Profiles, privacy settings and blocks"),
        (name = "channels", description = "Group channels, DMs and membership; a server's channel \
            by id"),
        (name = "guilds", description = "Servers: channels in categories, roles and \
            permissions, members, moderation and the audit log"),
        (name = "invites", description = "Invites to servers: create, preview, accept, revoke"),
        (name = "gateway", description = "Where to open the WebSocket"),
        (name = "voice", description = "The media server's webhooks (voice and video); \
            declining a call"),
        (name = "messages", description = "History, send, edit, delete, reactions, pins and read markers. Served \
            by the edges, not by auth: at an edge's HTTP origin (the gateway URL from \
            `/api/v1/gateway`, as `http://host:port`)"),
        (name = "presences", description = "Whose presence the caller may see. Served by the \
            edges, like `messages`"),
    )
)]
pub struct ApiDoc;
