//! The audit log in PostgreSQL (`audit_log`): every change to a server, written in the
//! transaction that makes the change, so an entry exists exactly when its change does. Read back
//! newest first, paged by id, filtered by who did it and what they did.

use proto::Snowflake;
use proto::api::audit::{
    AuditEntryInfo, AuditLogChange, AuditLogEntry, AuditLogEvent, AuditLogFilter,
};
use sqlx::{PgConnection, PgExecutor};

/// What one entry says, before it has an id.
#[derive(Debug, Clone)]
pub struct Record {
    pub guild_id: Snowflake,
    pub user_id: Snowflake,
    pub target_id: Option<Snowflake>,
    pub action: AuditLogEvent,
    pub changes: Vec<AuditLogChange>,
    pub options: Option<AuditEntryInfo>,
    pub reason: Option<String>,
}

impl Record {
    pub fn new(
        guild_id: Snowflake,
        user_id: Snowflake,
        action: AuditLogEvent,
        target_id: Option<Snowflake>,
    ) -> Self {
        Self {
            guild_id,
            user_id,
            target_id,
            action,
            changes: Vec::new(),
            options: None,
            reason: None,
        }
    }

    pub fn changes(mut self, changes: impl IntoIterator<Item = Option<AuditLogChange>>) -> Self {
        self.changes.extend(changes.into_iter().flatten());
        self
    }

    pub fn options(mut self, options: AuditEntryInfo) -> Self {
        self.options = Some(options);
        self
    }

    pub fn reason(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }
}

/// Writes an entry with id `id` (a Snowflake: its time is now) and answers it.
pub async fn record(
    tx: &mut PgConnection,
    id: Snowflake,
    record: Record,
) -> Result<AuditLogEntry, sqlx::Error> {
    let changes = serde_json::to_value(&record.changes).expect("changes serialise");
    let options = record
        .options
        .as_ref()
        .map(|o| serde_json::to_value(o).expect("options serialise"));
    sqlx::query!(
        "INSERT INTO audit_log (id, guild_id, user_id, target_id, action_type, changes, options, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id.as_i64(),
        record.guild_id.as_i64(),
        record.user_id.as_i64(),
        record.target_id.map(|t| t.as_i64()),
        i16::from(record.action.number()),
        changes,
        options,
        record.reason.as_deref()
    )
    .execute(&mut *tx)
    .await?;
    Ok(AuditLogEntry {
        id,
        guild_id: record.guild_id,
        user_id: Some(record.user_id),
        target_id: record.target_id,
        action_type: record.action,
        changes: record.changes,
        options: record.options,
        reason: record.reason,
    })
}

/// A page of a server's entries, newest first.
pub async fn page(
    db: impl PgExecutor<'_>,
    guild: Snowflake,
    filter: &AuditLogFilter,
) -> Result<Vec<AuditLogEntry>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT id, user_id, target_id, action_type, changes, options, reason
         FROM audit_log
         WHERE guild_id = $1
           AND ($2::BIGINT IS NULL OR user_id = $2)
           AND ($3::SMALLINT IS NULL OR action_type = $3)
           AND ($4::BIGINT IS NULL OR id < $4)
           AND ($5::BIGINT IS NULL OR id > $5)
         ORDER BY id DESC LIMIT $6"#,
        guild.as_i64(),
        filter.user_id.map(|u| u.as_i64()),
        filter.action_type.map(|a| i16::from(a.number())),
        filter.before.map(|b| b.as_i64()),
        filter.after.map(|a| a.as_i64()),
        i64::from(filter.limit)
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let action = u8::try_from(row.action_type)
                .ok()
                .and_then(AuditLogEvent::from_number)?;
            Some(AuditLogEntry {
                id: Snowflake::from_i64(row.id),
                guild_id: guild,
                user_id: row.user_id.map(Snowflake::from_i64),
                target_id: row.target_id.map(Snowflake::from_i64),
                action_type: action,
                changes: serde_json::from_value(row.changes).unwrap_or_default(),
                options: row.options.and_then(|o| serde_json::from_value(o).ok()),
                reason: row.reason,
            })
        })
        .collect())
}
