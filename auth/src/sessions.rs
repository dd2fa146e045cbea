//! Sessions and refresh tokens.
//!
//! A refresh token is 256 random bits (base64url), stored only as its SHA-256. Each use trades it
//! for a new one in the same session (its family) and marks it used. Presenting a used token again
//! means two parties hold the family (a theft, or a client that lost an answer): the whole session
//! is revoked and its sockets closed (SESSION_REVOKED), and both must sign in again.
//!
//! Every refresh of one session takes that session's row lock, so two concurrent refreshes with the
//! same token cannot both succeed.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proto::Snowflake;
use sha2::{Digest, Sha256};
use sqlx::{PgExecutor, PgPool};

/// A new refresh token: what the client gets, and what we store.
pub struct RefreshToken {
    pub token: String,
    hash: Vec<u8>,
}

impl RefreshToken {
    fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random number generator works");
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = hash(&token);
        Self { token, hash }
    }
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Starts a session for `user`: its id and first refresh token.
pub async fn start(
    db: &PgPool,
    session_id: Snowflake,
    user: Snowflake,
    ttl: Duration,
) -> Result<RefreshToken, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query!(
        "INSERT INTO sessions (id, user_id) VALUES ($1, $2)",
        session_id.as_i64(),
        user.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    let refresh = issue_refresh(&mut tx, session_id, ttl).await?;
    tx.commit().await?;
    Ok(refresh)
}

/// Issues a new refresh token into a session (the one place a token row is written).
async fn issue_refresh(
    tx: &mut sqlx::PgConnection,
    session: Snowflake,
    ttl: Duration,
) -> Result<RefreshToken, sqlx::Error> {
    let refresh = RefreshToken::generate();
    sqlx::query!(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at)
         VALUES ($1, $2, now() + $3 * interval '1 second')",
        &refresh.hash,
        session.as_i64(),
        seconds(ttl)
    )
    .execute(tx)
    .await?;
    Ok(refresh)
}

/// What presenting a refresh token led to.
pub enum Rotation {
    /// A new token in the same session.
    Rotated {
        user: Snowflake,
        session: Snowflake,
        refresh: RefreshToken,
    },
    /// The token had been used before: the session is now revoked.
    Reused { user: Snowflake, session: Snowflake },
    /// Unknown, expired, or its session was signed out.
    Refused,
}

struct Presented {
    session_id: i64,
    user_id: i64,
    used: bool,
    expired: bool,
    revoked: bool,
}

pub async fn rotate(db: &PgPool, presented: &str, ttl: Duration) -> Result<Rotation, sqlx::Error> {
    let presented_hash = hash(presented);
    let mut tx = db.begin().await?;
    let row = sqlx::query_as!(
        Presented,
        r#"SELECT rt.session_id, s.user_id,
                rt.used_at IS NOT NULL AS "used!",
                rt.expires_at <= now() AS "expired!",
                s.revoked_at IS NOT NULL AS "revoked!"
         FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
         WHERE rt.token_hash = $1
         FOR UPDATE OF s"#,
        &presented_hash
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Rotation::Refused);
    };
    let user = Snowflake::from_i64(row.user_id);
    let session = Snowflake::from_i64(row.session_id);
    if row.revoked || row.expired {
        return Ok(Rotation::Refused);
    }
    if row.used {
        sqlx::query!(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = 'reuse'
             WHERE id = $1 AND revoked_at IS NULL",
            session.as_i64()
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(Rotation::Reused { user, session });
    }
    sqlx::query!(
        "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1",
        &presented_hash
    )
    .execute(&mut *tx)
    .await?;
    let refresh = issue_refresh(&mut tx, session, ttl).await?;
    tx.commit().await?;
    Ok(Rotation::Rotated {
        user,
        session,
        refresh,
    })
}

/// Signs a session out. True when it was active.
pub async fn revoke(db: &PgPool, session: Snowflake) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = 'sign_out'
         WHERE id = $1 AND revoked_at IS NULL",
        session.as_i64()
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether `session` exists and is not revoked.
pub async fn is_active(db: &PgPool, session: Snowflake) -> Result<bool, sqlx::Error> {
    let active = sqlx::query_scalar!(
        r#"SELECT revoked_at IS NULL AS "active!" FROM sessions WHERE id = $1"#,
        session.as_i64()
    )
    .fetch_optional(db)
    .await?;
    Ok(active == Some(true))
}

/// Which of some `(session, user)` pairs are sessions of that user still signed in (one query).
pub async fn active_of(
    db: impl PgExecutor<'_>,
    pairs: &[(Snowflake, Snowflake)],
) -> Result<HashSet<(Snowflake, Snowflake)>, sqlx::Error> {
    let sessions: Vec<i64> = pairs.iter().map(|(session, _)| session.as_i64()).collect();
    let rows = sqlx::query!(
        "SELECT id, user_id FROM sessions WHERE id = ANY($1) AND revoked_at IS NULL",
        &sessions
    )
    .fetch_all(db)
    .await?;
    let active: HashSet<(Snowflake, Snowflake)> = rows
        .into_iter()
        .map(|row| {
            (
                Snowflake::from_i64(row.id),
                Snowflake::from_i64(row.user_id),
            )
        })
        .collect();
    Ok(pairs
        .iter()
        .copied()
        .filter(|pair| active.contains(pair))
        .collect())
}

/// Deletes refresh tokens a day past their expiry (reuse of an expired token is refused anyway).
pub async fn purge_expired(db: &PgPool) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query!("DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'")
            .execute(db)
            .await?;
    Ok(done.rows_affected())
}
