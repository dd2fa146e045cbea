//! `GET /api/v1/guilds/{id}/audit-logs`: the audit log (VIEW_AUDIT_LOG), newest first, paged by
//! entry id, filtered by who acted and what they did.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use kit::error::ApiResult;
use kit::extract::{ApiPath, ApiQuery};
use proto::Snowflake;
use proto::api::audit::{AuditLog, AuditLogParams};
use proto::api::error::ErrorBody;
use proto::permissions::Permissions;

use super::guilds::{require, standing};
use crate::extract::Caller;
use crate::state::AppState;

/// A page of a server's audit log (VIEW_AUDIT_LOG), with the users its entries name.
#[utoipa::path(get, path = "/api/v1/guilds/{id}/audit-logs", operation_id = "audit_log", tag = "guilds", security(("bearer" = [])),
    params(("id" = String, Path), AuditLogParams),
    responses((status = 200, body = AuditLog), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(guild): ApiPath<Snowflake>,
    ApiQuery(params): ApiQuery<AuditLogParams>,
) -> ApiResult<Json<AuditLog>> {
    let filter = params.parse()?;
    let mut conn = state.db.acquire().await?;
    let standing = standing(&mut conn, guild, &caller, false).await?;
    require(&standing, Permissions::VIEW_AUDIT_LOG)?;
    let entries = crate::audit::page(&mut *conn, guild, &filter).await?;
    // Everyone an entry names who is a user: who acted, and whom they acted on.
    let named: BTreeSet<Snowflake> = entries
        .iter()
        .flat_map(|e| [e.user_id, e.target_id])
        .flatten()
        .collect();
    let mut users = Vec::new();
    for id in named {
        if let Some(user) = crate::profiles::by_id(&mut *conn, id).await? {
            users.push(user.seen_by_others());
        }
    }
    Ok(Json(AuditLog {
        audit_log_entries: entries,
        users,
    }))
}
