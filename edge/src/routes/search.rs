//! Message search, Discord's routes: `GET /api/v1/guilds/{id}/messages/search` (every channel of
//! a server the caller may read) and `GET /api/v1/channels/{id}/messages/search` (one channel: a
//! DM, a group, or a server's channel).
//!
//! Who may read what is decided here, now, for every search: the caller's member object and the
//! server's roles and overwrites come from auth as they are at this moment, and only channels
//! with VIEW_CHANNEL and READ_MESSAGE_HISTORY are named to the search service, which answers from
//! those alone. A member removed from a server or a channel finds nothing there any more, however
//! old the index. Each hit comes with the messages around it, read from history as the caller
//! would page it (files' URLs signed afresh).

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kit::error::{ApiError, ApiResult};
use kit::extract::{ApiPath, ApiQuery};
use proto::Snowflake;
use proto::api::channels::{MAX_MEMBER_IDS, MembersQuery};
use proto::api::search::{SearchFilter, SearchMessage, SearchQuery, SearchResults};
use proto::permissions::{Permissions, effective};
use proto::search::Found;

use super::messages::{and_former, chat_error, member, server_permissions, users_in};
use super::{Routes, Verified, directory_error, not_found};
use crate::chat::ChatError;
use crate::directory::DirectoryError;
use crate::search::SearchError;

/// Messages shown around each hit: two older, two newer.
const CONTEXT: usize = 5;

/// `GET /api/v1/guilds/{id}/messages/search`
pub(super) async fn in_guild(
    State(routes): State<Routes>,
    verified: Verified,
    ApiPath(guild): ApiPath<Snowflake>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    let filter = query.parse().map_err(ApiError::invalid)?;
    let directory = &routes.state.directory;
    // Asked side by side: the member over REST (auth checks the session is still signed in),
    // the server's roles and channels over NATS.
    let (me, server) = tokio::join!(
        directory.guild_member(&verified.token, guild),
        directory.guild_snapshot(guild)
    );
    let me = match me {
        Ok(me) => me,
        Err(DirectoryError::Status(status)) if status == StatusCode::NOT_FOUND => {
            return Err(not_found("server"));
        }
        Err(e) => return Err(directory_error(&e, "membership")),
    };
    let server = match server {
        Ok(server) => server,
        Err(DirectoryError::NotFound) => return Err(not_found("server")),
        Err(e) => return Err(directory_error(&e, "the server")),
    };
    let subject = me.subject(
        guild,
        server.guild.owner_id,
        &server.roles,
        proto::clock::unix_ms(),
    );
    let readable: Vec<Snowflake> = server
        .channels
        .iter()
        .filter(|c| {
            effective(&subject, Some(&c.permission_overwrites))
                .contains(Permissions::VIEW_CHANNEL | Permissions::READ_MESSAGE_HISTORY)
        })
        .map(|c| c.id)
        .filter(|&c| filter.channel_id.is_none_or(|only| only == c))
        .collect();
    let found = search(&routes, Some(guild), &readable, &filter).await?;
    results(&routes, &verified, Some(guild), found).await
}

/// `GET /api/v1/channels/{id}/messages/search`
pub(super) async fn in_channel(
    State(routes): State<Routes>,
    verified: Verified,
    ApiPath(channel): ApiPath<Snowflake>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    let filter = query.parse().map_err(ApiError::invalid)?;
    let caller = member(&routes, verified, channel).await?;
    if server_permissions(&caller).is_some_and(|p| !p.has(Permissions::READ_MESSAGE_HISTORY)) {
        return Err(chat_error(&ChatError::NotAllowed(
            "you may not read this channel's history".to_owned(),
        )));
    }
    let channels = if filter.channel_id.is_none_or(|only| only == channel) {
        vec![channel]
    } else {
        Vec::new()
    };
    let found = search(&routes, None, &channels, &filter).await?;
    let verified = Verified {
        claims: caller.claims,
        token: caller.token,
    };
    results(&routes, &verified, None, found).await
}

async fn search(
    routes: &Routes,
    guild: Option<Snowflake>,
    channels: &[Snowflake],
    filter: &SearchFilter,
) -> ApiResult<(u64, Vec<Found>)> {
    if channels.is_empty() {
        return Ok((0, Vec::new()));
    }
    routes
        .state
        .search
        .search(guild, channels, filter)
        .await
        .map_err(|e| match e {
            SearchError::Unavailable(why) => {
                tracing::warn!(%why, "search unavailable");
                ApiError::unavailable("search is not available right now; try again shortly")
            }
            SearchError::Failed(why) => {
                tracing::error!(%why, "search failed");
                ApiError::unavailable("search failed; try again shortly")
            }
        })
}

/// The hits with their context, as the caller reads history, and the authors shown (of
/// `guild`, for a server's search).
async fn results(
    routes: &Routes,
    verified: &Verified,
    guild: Option<Snowflake>,
    (total, hits): (u64, Vec<Found>),
) -> ApiResult<Json<SearchResults>> {
    let state = &routes.state;
    let reader = verified.claims.sub;
    let anchors: Vec<(Snowflake, Snowflake)> =
        hits.iter().map(|hit| (hit.channel_id, hit.id)).collect();
    let pages = state
        .archive
        .pages_around(reader, &anchors, CONTEXT)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "search context read failed");
            chat_error(&ChatError::HistoryUnavailable)
        })?;
    let mut messages = Vec::with_capacity(hits.len());
    // Per channel, whom its messages show (authors and the people they mention), named in one
    // lookup per channel.
    let mut authors: BTreeMap<Snowflake, BTreeSet<Snowflake>> = BTreeMap::new();
    let mut only_authors: BTreeSet<Snowflake> = BTreeSet::new();
    for (hit, page) in hits.iter().zip(pages) {
        // A hit deleted since the index last committed is left out.
        if !page.iter().any(|m| m.id == hit.id) {
            continue;
        }
        let group: Vec<SearchMessage> = page
            .into_iter()
            .map(|mut message| {
                state.chat.attachments().sign(&mut message);
                let shown = authors.entry(hit.channel_id).or_default();
                shown.insert(message.author_id);
                shown.extend(message.mentioned_ids());
                only_authors.insert(message.author_id);
                SearchMessage {
                    hit: message.id == hit.id,
                    message,
                }
            })
            .collect();
        messages.push(group);
    }
    let mut shown = match guild {
        // A server's channels all list the server's members: one lookup for every channel.
        Some(guild) => {
            let ids: BTreeSet<Snowflake> = authors.into_values().flatten().collect();
            guild_users(
                routes,
                verified,
                guild,
                &ids.into_iter().collect::<Vec<_>>(),
            )
            .await
        }
        None => {
            let mut shown: Vec<proto::api::users::User> = Vec::new();
            for (channel, ids) in authors {
                let wanted: Vec<Snowflake> = ids
                    .into_iter()
                    .filter(|id| !shown.iter().any(|u| u.id == *id))
                    .collect();
                if !wanted.is_empty() {
                    shown.extend(users_in(routes, &verified.token, channel, &wanted).await);
                }
            }
            shown
        }
    };
    for group in &mut messages {
        for found in group {
            found.message.name_mentions(&shown);
        }
    }
    shown.retain(|u| only_authors.contains(&u.id));
    Ok(Json(SearchResults {
        total_results: total,
        messages,
        authors: shown,
    }))
}

/// The users `wanted` of a server the caller is in: its members in one question per hundred,
/// anyone no longer a member (a former author) by their profile.
async fn guild_users(
    routes: &Routes,
    verified: &Verified,
    guild: Snowflake,
    wanted: &[Snowflake],
) -> Vec<proto::api::users::User> {
    let directory = &routes.state.directory;
    let asks = wanted.chunks(MAX_MEMBER_IDS).map(|ids| {
        directory.guild_members(verified.claims.sub, guild, MembersQuery::Ids(ids.to_vec()))
    });
    let mut found: Vec<proto::api::users::User> = Vec::new();
    for members in futures::future::join_all(asks).await {
        match members {
            Ok(members) => found.extend(members.into_iter().map(|m| m.user)),
            Err(e) => tracing::debug!(error = %e, "members could not be resolved"),
        }
    }
    and_former(routes, &verified.token, wanted, found).await
}
