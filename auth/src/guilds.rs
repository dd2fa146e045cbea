//! Servers (guilds) in PostgreSQL (`migrations/0005_guilds.sql`), and where someone stands in one
//! ([`Standing`]): their roles, what they may do (`proto::permissions::effective`) and their rank.
//!
//! Every change to a server runs in one transaction that first locks the server's row
//! ([`standing`] with `lock`), so changes to one server are applied one after another: a
//! hierarchy check and the change it allows see the same roles, a ban and a join cannot
//! interleave, and the audit entry is written with the change it records.

use proto::Snowflake;
use proto::access::GuildSnapshot;
use proto::api::channels::Channel;
use proto::api::guilds::{Guild, GuildChanges, GuildMember, NewGuild, Role, UserGuild};
use proto::permissions::{Permissions, Rank, Subject, effective};
use sqlx::{PgConnection, PgExecutor};

use crate::{guild_channels, guild_members, roles};

/// A server's own row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuildRow {
    pub id: Snowflake,
    pub name: String,
    pub icon: Option<String>,
    pub owner_id: Snowflake,
}

impl GuildRow {
    pub fn with_count(&self, member_count: u32) -> Guild {
        Guild {
            id: self.id,
            name: self.name.clone(),
            icon: self.icon.clone(),
            owner_id: self.owner_id,
            member_count,
        }
    }
}

/// Where one member stands in a server, read (and with `lock`, locked) in one transaction.
#[derive(Debug, Clone)]
pub struct Standing {
    pub guild: GuildRow,
    /// Every role of the server, @everyone included.
    pub roles: Vec<Role>,
    pub member: GuildMember,
    /// When it was read (Unix milliseconds): time-outs are judged at this moment.
    pub now_ms: u64,
}

impl Standing {
    pub fn user_id(&self) -> Snowflake {
        self.member.user.id
    }

    pub fn is_owner(&self) -> bool {
        self.guild.owner_id == self.user_id()
    }

    pub fn role(&self, id: Snowflake) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    /// The permission subject of any member of this server, from their roles.
    pub fn subject_of(&self, member: &GuildMember) -> Subject {
        member.subject(self.guild.id, self.guild.owner_id, &self.roles, self.now_ms)
    }

    /// What the member may do in the server as a whole.
    pub fn permissions(&self) -> Permissions {
        effective(&self.subject_of(&self.member), None)
    }

    /// What the member may do in one of the server's channels.
    pub fn in_channel(&self, channel: &Channel) -> Permissions {
        effective(
            &self.subject_of(&self.member),
            Some(&channel.permission_overwrites),
        )
    }

    /// Where any member stands in the hierarchy.
    pub fn rank_of(&self, member: &GuildMember) -> Rank {
        member.rank(self.guild.owner_id, &self.roles)
    }

    pub fn rank(&self) -> Rank {
        self.rank_of(&self.member)
    }

    /// The server as this member sees it: its roles, the channels they may view, their member.
    pub fn view(&self, channels: Vec<Channel>, member_count: u32) -> UserGuild {
        UserGuild {
            id: self.guild.id,
            name: self.guild.name.clone(),
            icon: self.guild.icon.clone(),
            owner_id: self.guild.owner_id,
            member_count,
            roles: self.roles.clone(),
            channels: channels
                .into_iter()
                .filter(|c| self.in_channel(c).has(Permissions::VIEW_CHANNEL))
                .collect(),
            member: self.member.clone(),
        }
    }
}

struct Row {
    id: i64,
    name: String,
    icon: Option<String>,
    owner_id: i64,
}

impl From<Row> for GuildRow {
    fn from(row: Row) -> Self {
        Self {
            id: Snowflake::from_i64(row.id),
            name: row.name,
            icon: row.icon,
            owner_id: Snowflake::from_i64(row.owner_id),
        }
    }
}

pub async fn read(
    db: impl PgExecutor<'_>,
    guild: Snowflake,
) -> Result<Option<GuildRow>, sqlx::Error> {
    let row = sqlx::query_as!(
        Row,
        "SELECT id, name, icon, owner_id FROM guilds WHERE id = $1",
        guild.as_i64()
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(GuildRow::from))
}

/// Locks the server's row until the transaction ends (see the module's comment). `FOR NO KEY
/// UPDATE` leaves the rows that reference it (new members, channels) free to be inserted by
/// the transaction holding it.
async fn lock(tx: &mut PgConnection, guild: Snowflake) -> Result<Option<GuildRow>, sqlx::Error> {
    let row = sqlx::query_as!(
        Row,
        "SELECT id, name, icon, owner_id FROM guilds WHERE id = $1 FOR NO KEY UPDATE",
        guild.as_i64()
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(GuildRow::from))
}

/// Where `user` stands in `guild`, or `None` when the server does not exist or they are not in
/// it (callers answer both the same). With `lock`, the server's row stays locked until the
/// transaction ends.
pub async fn standing(
    conn: &mut PgConnection,
    guild: Snowflake,
    user: Snowflake,
    lock_it: bool,
) -> Result<Option<Standing>, sqlx::Error> {
    let row = if lock_it {
        lock(conn, guild).await?
    } else {
        read(&mut *conn, guild).await?
    };
    let Some(guild) = row else {
        return Ok(None);
    };
    let Some(member) = guild_members::one(&mut *conn, guild.id, user).await? else {
        return Ok(None);
    };
    let roles = roles::all(&mut *conn, guild.id).await?;
    Ok(Some(Standing {
        guild,
        roles,
        member,
        now_ms: proto::clock::unix_ms(),
    }))
}

/// How many members `guild` has (0 for a server that does not exist): a column the database
/// keeps as members come and go (migration 0009), not a count of them.
pub async fn member_count(db: impl PgExecutor<'_>, guild: Snowflake) -> Result<u32, sqlx::Error> {
    let n = sqlx::query_scalar!(
        "SELECT member_count FROM guilds WHERE id = $1",
        guild.as_i64()
    )
    .fetch_optional(db)
    .await?;
    Ok(n.map_or(0, |n| u32::try_from(n).unwrap_or(0)))
}

/// How many servers `user` is in (counted with their row locked, for the limit).
pub async fn count_of(tx: &mut PgConnection, user: Snowflake) -> Result<u32, sqlx::Error> {
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM guild_members WHERE user_id = $1"#,
        user.as_i64()
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// The ids of the servers `user` is in.
pub async fn ids_of(
    db: impl PgExecutor<'_>,
    user: Snowflake,
) -> Result<Vec<Snowflake>, sqlx::Error> {
    let rows = sqlx::query_scalar!(
        "SELECT guild_id FROM guild_members WHERE user_id = $1 ORDER BY guild_id",
        user.as_i64()
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Snowflake::from_i64).collect())
}

/// The servers `user` is in, as everyone in them sees them.
pub async fn of_user(db: impl PgExecutor<'_>, user: Snowflake) -> Result<Vec<Guild>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT g.id, g.name, g.icon, g.owner_id, g.member_count
         FROM guild_members me JOIN guilds g ON g.id = me.guild_id
         WHERE me.user_id = $1 ORDER BY g.id"#,
        user.as_i64()
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Guild {
            id: Snowflake::from_i64(row.id),
            name: row.name,
            icon: row.icon,
            owner_id: Snowflake::from_i64(row.owner_id),
            member_count: u32::try_from(row.member_count).unwrap_or(u32::MAX),
        })
        .collect())
}

/// Makes a server owned by `owner`: its @everyone role (the server's id, with
/// [`Permissions::DEFAULT_EVERYONE`]), its owner as its first member, and a text channel
/// `general` (`general_id`).
pub async fn create(
    tx: &mut PgConnection,
    id: Snowflake,
    owner: Snowflake,
    new: &NewGuild,
    general_id: Snowflake,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO guilds (id, name, icon, owner_id) VALUES ($1, $2, $3, $4)",
        id.as_i64(),
        new.name.as_str(),
        new.icon.as_ref().map(|i| i.as_str()),
        owner.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO roles (id, guild_id, name, position, permissions)
         VALUES ($1, $1, '@everyone', 0, $2)",
        id.as_i64(),
        Permissions::DEFAULT_EVERYONE.as_i64()
    )
    .execute(&mut *tx)
    .await?;
    guild_members::join(tx, id, owner).await?;
    guild_channels::create_general(tx, general_id, id).await?;
    Ok(())
}

/// Applies `changes` (and a new owner); answers the row after.
pub async fn update(
    tx: &mut PgConnection,
    guild: Snowflake,
    changes: &GuildChanges,
    owner: Option<Snowflake>,
) -> Result<GuildRow, sqlx::Error> {
    let row = sqlx::query_as!(
        Row,
        "UPDATE guilds SET
             name = COALESCE($2, name),
             icon = CASE WHEN $3 THEN $4 ELSE icon END,
             owner_id = COALESCE($5, owner_id),
             updated_at = now()
         WHERE id = $1 RETURNING id, name, icon, owner_id",
        guild.as_i64(),
        changes.name.as_ref().map(|n| n.as_str()),
        changes.icon.is_some(),
        changes
            .icon
            .as_ref()
            .and_then(|i| i.as_ref().map(|i| i.as_str())),
        owner.map(|o| o.as_i64())
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(row.into())
}

/// Deletes a server: its channels, roles, members, invites, bans and audit log go with it.
pub async fn delete(tx: &mut PgConnection, guild: Snowflake) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM guilds WHERE id = $1", guild.as_i64())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Everyone in a server, by id (whom a GUILD_DELETE goes to).
pub async fn member_ids(
    db: impl PgExecutor<'_>,
    guild: Snowflake,
) -> Result<Vec<Snowflake>, sqlx::Error> {
    let rows = sqlx::query_scalar!(
        "SELECT user_id FROM guild_members WHERE guild_id = $1",
        guild.as_i64()
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Snowflake::from_i64).collect())
}

/// The server as `user` sees it, or `None` when they are not in it.
pub async fn seen_by(
    conn: &mut PgConnection,
    guild: Snowflake,
    user: Snowflake,
) -> Result<Option<UserGuild>, sqlx::Error> {
    let Some(standing) = standing(conn, guild, user, false).await? else {
        return Ok(None);
    };
    let count = member_count(&mut *conn, guild).await?;
    let channels = guild_channels::all(&mut *conn, guild, count).await?;
    Ok(Some(standing.view(channels, count)))
}

/// What an edge keeps of a server: the server, its roles, every channel with its overwrites.
pub async fn snapshot(
    conn: &mut PgConnection,
    guild: Snowflake,
) -> Result<Option<GuildSnapshot>, sqlx::Error> {
    let Some(row) = read(&mut *conn, guild).await? else {
        return Ok(None);
    };
    let count = member_count(&mut *conn, guild).await?;
    Ok(Some(GuildSnapshot {
        guild: row.with_count(count),
        roles: roles::all(&mut *conn, guild).await?,
        channels: guild_channels::all(&mut *conn, guild, count).await?,
        voice_states: crate::voice::of_guild(&mut *conn, guild).await?,
    }))
}
