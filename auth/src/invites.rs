//! Invites in PostgreSQL (`invites`). Codes come from the operating system's CSPRNG
//! (`getrandom`), 10 base62 characters ([`proto::api::invites::InviteCode`]). An invite that has
//! expired or is used up counts as gone: reads skip it, and housekeeping deletes it.

use proto::Snowflake;
use proto::api::invites::{Invite, InviteCode, NewInvite};
use sqlx::{PgConnection, PgExecutor};

struct Row {
    code: String,
    guild_id: i64,
    channel_id: Option<i64>,
    inviter_id: Option<i64>,
    uses: i32,
    max_uses: i32,
    max_age: i32,
    created_at: i64,
    expires_at: Option<i64>,
}

impl From<Row> for Invite {
    fn from(row: Row) -> Self {
        Self {
            code: row.code,
            guild_id: Snowflake::from_i64(row.guild_id),
            channel_id: row.channel_id.map(Snowflake::from_i64),
            inviter_id: row.inviter_id.map(Snowflake::from_i64),
            uses: u32::try_from(row.uses).unwrap_or(0),
            max_uses: u32::try_from(row.max_uses).unwrap_or(0),
            max_age: u32::try_from(row.max_age).unwrap_or(0),
            created_at: u64::try_from(row.created_at).unwrap_or(0),
            expires_at: row.expires_at.and_then(|t| u64::try_from(t).ok()),
        }
    }
}

/// A fresh unguessable code.
pub fn new_code() -> InviteCode {
    loop {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).expect("the operating system's random source works");
        if let Some(code) = InviteCode::from_random(&random) {
            return code;
        }
    }
}

/// Creates an invite (a fresh code; a clash, which 59 bits make vanishingly rare, draws again).
pub async fn create(
    tx: &mut PgConnection,
    guild: Snowflake,
    inviter: Snowflake,
    new: &NewInvite,
) -> Result<Invite, sqlx::Error> {
    loop {
        let code = new_code();
        let row = sqlx::query_as!(
            Row,
            r#"INSERT INTO invites (code, guild_id, channel_id, inviter_id, max_age, max_uses, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6,
                     CASE WHEN $5 = 0 THEN NULL ELSE now() + make_interval(secs => $5) END)
             ON CONFLICT (code) DO NOTHING
             RETURNING code, guild_id, channel_id, inviter_id, uses, max_uses, max_age,
                 (EXTRACT(EPOCH FROM created_at) * 1000)::BIGINT AS "created_at!",
                 (EXTRACT(EPOCH FROM expires_at) * 1000)::BIGINT AS expires_at"#,
            code.as_str(),
            guild.as_i64(),
            new.channel_id.map(|c| c.as_i64()),
            inviter.as_i64(),
            new.max_age as i32,
            new.max_uses as i32
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = row {
            return Ok(row.into());
        }
    }
}

/// The live invite with this code (not expired, not used up), locked with `lock`.
pub async fn find(
    conn: &mut PgConnection,
    code: &InviteCode,
    lock: bool,
) -> Result<Option<Invite>, sqlx::Error> {
    let row = if lock {
        sqlx::query_as!(
            Row,
            r#"SELECT code, guild_id, channel_id, inviter_id, uses, max_uses, max_age,
                 (EXTRACT(EPOCH FROM created_at) * 1000)::BIGINT AS "created_at!",
                 (EXTRACT(EPOCH FROM expires_at) * 1000)::BIGINT AS expires_at
             FROM invites WHERE code = $1
               AND (expires_at IS NULL OR expires_at > now()) AND (max_uses = 0 OR uses < max_uses)
             FOR UPDATE"#,
            code.as_str()
        )
        .fetch_optional(&mut *conn)
        .await?
    } else {
        sqlx::query_as!(
            Row,
            r#"SELECT code, guild_id, channel_id, inviter_id, uses, max_uses, max_age,
                 (EXTRACT(EPOCH FROM created_at) * 1000)::BIGINT AS "created_at!",
                 (EXTRACT(EPOCH FROM expires_at) * 1000)::BIGINT AS expires_at
             FROM invites WHERE code = $1
               AND (expires_at IS NULL OR expires_at > now()) AND (max_uses = 0 OR uses < max_uses)"#,
            code.as_str()
        )
        .fetch_optional(&mut *conn)
        .await?
    };
    Ok(row.map(Invite::from))
}

/// A server's live invites, newest first.
pub async fn of_guild(
    db: impl PgExecutor<'_>,
    guild: Snowflake,
) -> Result<Vec<Invite>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT code, guild_id, channel_id, inviter_id, uses, max_uses, max_age,
             (EXTRACT(EPOCH FROM created_at) * 1000)::BIGINT AS "created_at!",
             (EXTRACT(EPOCH FROM expires_at) * 1000)::BIGINT AS expires_at
         FROM invites WHERE guild_id = $1
           AND (expires_at IS NULL OR expires_at > now()) AND (max_uses = 0 OR uses < max_uses)
         ORDER BY created_at DESC, code"#,
        guild.as_i64()
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Invite::from).collect())
}

/// Counts one use; answers whether that used the invite up (it is then deleted).
pub async fn spend(tx: &mut PgConnection, invite: &Invite) -> Result<bool, sqlx::Error> {
    let used_up = invite.max_uses > 0 && invite.uses + 1 >= invite.max_uses;
    if used_up {
        delete(tx, &invite.code).await?;
    } else {
        sqlx::query!(
            "UPDATE invites SET uses = uses + 1 WHERE code = $1",
            invite.code
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(used_up)
}

pub async fn delete(tx: &mut PgConnection, code: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM invites WHERE code = $1", code)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Deletes invites that expired (housekeeping).
pub async fn purge_expired(db: &sqlx::PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("DELETE FROM invites WHERE expires_at <= now()")
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
