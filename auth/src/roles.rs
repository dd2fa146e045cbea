//! Roles in PostgreSQL (`roles`, `member_roles`). @everyone has the server's id and position 0;
//! every other role sits at 1 or above, and positions stay distinct: a new role goes in at 1 and
//! a move shifts the roles it passes by one. Callers hold the server's lock (`crate::guilds`).

use proto::Snowflake;
use proto::api::guilds::{Role, RoleChanges};
use proto::permissions::Permissions;
use sqlx::{PgConnection, PgExecutor};

struct Row {
    id: i64,
    name: String,
    color: i32,
    hoist: bool,
    position: i32,
    permissions: i64,
    mentionable: bool,
}

impl From<Row> for Role {
    fn from(row: Row) -> Self {
        Self {
            id: Snowflake::from_i64(row.id),
            name: row.name,
            color: u32::try_from(row.color).unwrap_or(0),
            hoist: row.hoist,
            position: row.position,
            permissions: Permissions::from_i64(row.permissions),
            mentionable: row.mentionable,
        }
    }
}

/// Every role of a server, @everyone first, then by position.
pub async fn all(db: impl PgExecutor<'_>, guild: Snowflake) -> Result<Vec<Role>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT id, name, color, hoist, position, permissions, mentionable
         FROM roles WHERE guild_id = $1 ORDER BY position, id",
        guild.as_i64()
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Role::from).collect())
}

pub async fn count(tx: &mut PgConnection, guild: Snowflake) -> Result<u32, sqlx::Error> {
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM roles WHERE guild_id = $1"#,
        guild.as_i64()
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

async fn one(tx: &mut PgConnection, role: Snowflake) -> Result<Role, sqlx::Error> {
    let row = sqlx::query_as!(
        Row,
        "SELECT id, name, color, hoist, position, permissions, mentionable FROM roles WHERE id = $1",
        role.as_i64()
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(row.into())
}

/// A new role at position 1, just above @everyone (every other role moves up one).
pub async fn create(
    tx: &mut PgConnection,
    id: Snowflake,
    guild: Snowflake,
    changes: &RoleChanges,
) -> Result<Role, sqlx::Error> {
    sqlx::query!(
        "UPDATE roles SET position = position + 1 WHERE guild_id = $1 AND position >= 1",
        guild.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO roles (id, guild_id, name, color, hoist, mentionable, position, permissions)
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7)",
        id.as_i64(),
        guild.as_i64(),
        changes.name.as_ref().map_or("new role", |n| n.as_str()),
        changes.color.map_or(0, |c| c as i32),
        changes.hoist.unwrap_or(false),
        changes.mentionable.unwrap_or(false),
        changes.permissions.unwrap_or_default().as_i64()
    )
    .execute(&mut *tx)
    .await?;
    one(tx, id).await
}

/// Applies `changes` to a role; a new position (at most the server's highest) moves the roles
/// in between by one. Answers the role after.
pub async fn update(
    tx: &mut PgConnection,
    guild: Snowflake,
    role: &Role,
    changes: &RoleChanges,
) -> Result<Role, sqlx::Error> {
    if let Some(to) = changes.position.filter(|p| *p != role.position) {
        let top = sqlx::query_scalar!(
            r#"SELECT max(position) AS "top!" FROM roles WHERE guild_id = $1"#,
            guild.as_i64()
        )
        .fetch_one(&mut *tx)
        .await?;
        let to = to.min(top).max(1);
        let from = role.position;
        sqlx::query!(
            "UPDATE roles SET position = CASE
                 WHEN id = $2 THEN $4::INT
                 WHEN $4::INT > $3::INT AND position > $3::INT AND position <= $4::INT
                     THEN position - 1
                 WHEN $4::INT < $3::INT AND position >= $4::INT AND position < $3::INT
                     THEN position + 1
                 ELSE position END
             WHERE guild_id = $1 AND position >= 1",
            guild.as_i64(),
            role.id.as_i64(),
            from,
            to
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query!(
        "UPDATE roles SET name = COALESCE($2, name), color = COALESCE($3, color),
             hoist = COALESCE($4, hoist), mentionable = COALESCE($5, mentionable),
             permissions = COALESCE($6, permissions)
         WHERE id = $1",
        role.id.as_i64(),
        changes.name.as_ref().map(|n| n.as_str()),
        changes.color.map(|c| c as i32),
        changes.hoist,
        changes.mentionable,
        changes.permissions.map(Permissions::as_i64)
    )
    .execute(&mut *tx)
    .await?;
    one(tx, role.id).await
}

/// Deletes a role: members lose it, its overwrites go, and the roles above move down one.
pub async fn delete(
    tx: &mut PgConnection,
    guild: Snowflake,
    role: &Role,
) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM roles WHERE id = $1", role.id.as_i64())
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "DELETE FROM permission_overwrites WHERE target_id = $1 AND type = 0",
        role.id.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE roles SET position = position - 1 WHERE guild_id = $1 AND position > $2",
        guild.as_i64(),
        role.position
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}
