//! `GET /api/v1/presences?user_ids=1,2,3` on an edge.

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::extract::State;
use kit::error::{ApiError, ApiResult};
use kit::extract::ApiQuery;
use proto::Snowflake;
use proto::api::presence::{Presence, PresenceStatus, PresencesQuery};

use super::{Routes, Verified, directory_error};

/// The presence of up to 100 users, as the caller may see it. Users whose presence the caller may
/// not see (they share no channel, or only a DM the other has not opened, or a block stands
/// between them) are reported offline (no last-seen), so nobody learns anything about strangers;
/// the caller sees their own real status.
pub(super) async fn presences(
    State(routes): State<Routes>,
    caller: Verified,
    ApiQuery(params): ApiQuery<PresencesQuery>,
) -> ApiResult<Json<Vec<Presence>>> {
    let state = &routes.state;
    let ids = params.parse().map_err(ApiError::invalid)?;
    // The token's session must still be signed in (asked over REST), and auth says whom the
    // caller may see: co-members of group channels, whoever opened a DM with them, never across
    // a block.
    let asked = tokio::try_join!(
        state.directory.me(&caller.token),
        state.directory.visible(caller.claims.sub, ids.clone())
    );
    let known: HashSet<Snowflake> = match asked {
        Ok((_, visible)) => visible.into_iter().collect(),
        Err(e) => return Err(directory_error(&e, "whose presence you may see")),
    };
    let (allowed, strangers): (Vec<Snowflake>, Vec<Snowflake>) =
        ids.iter().partition(|id| known.contains(id));
    let mut found: HashMap<Snowflake, Presence> = state
        .presence
        .query(allowed)
        .await
        .into_iter()
        .map(|p| {
            let p = if p.user_id == caller.claims.sub {
                p
            } else {
                p.seen_by_others()
            };
            (p.user_id, p)
        })
        .collect();
    for stranger in strangers {
        found.insert(
            stranger,
            Presence {
                user_id: stranger,
                status: PresenceStatus::Offline,
                last_seen: None,
            },
        );
    }
    Ok(Json(ids.iter().filter_map(|id| found.remove(id)).collect()))
}
