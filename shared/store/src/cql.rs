//! The CQL store (ScyllaDB in production, Apache Cassandra locally): connecting, and the versioned
//! schema applied at start.
//!
//! The same code talks to either: only CQL protocol v4 features are used, and where the store runs
//! is configuration (`--cql-nodes`, `--cql-keyspace`, `--cql-replication`).
//!
//! Schema versions are recorded in `<keyspace>.schema_migrations`. Each migration is a list of
//! idempotent statements (`IF NOT EXISTS`), so two processes starting at once, or a process that
//! died between a statement and its record, apply it again harmlessly.

use std::sync::Arc;
use std::time::Duration;

use kit::retry::{self, Retryable};
use scylla::client::execution_profile::{ExecutionProfile, ExecutionProfileHandle};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::speculative_execution::SimpleSpeculativeExecutionPolicy;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;

/// How long a read waits for its coordinator before the driver sends it to a second node as well
/// (whichever answers first wins). A healthy read takes a few milliseconds; a coordinator that has
/// stopped answering without closing its connections (a machine lost, a long pause) would
/// otherwise hold the read until the request timeout. One speculative execution is enough: a
/// QUORUM read cannot succeed with two nodes of three gone anyway.
pub const SPECULATE_AFTER: Duration = Duration::from_millis(200);

/// Where the CQL store is and which keyspace is ours.
#[derive(Debug, Clone, clap::Args)]
pub struct CqlConfig {
    /// Contact points of the CQL cluster, comma separated `host:port`.
    #[arg(
        long = "cql-nodes",
        env = "NATTER_CQL_NODES",
        value_delimiter = ',',
        required = true
    )]
    pub nodes: Vec<String>,

    /// The keyspace holding Natter's tables.
    #[arg(long = "cql-keyspace", env = "NATTER_CQL_KEYSPACE", default_value = "natter",
          value_parser = Keyspace::parse)]
    pub keyspace: Keyspace,

    /// Replication of the keyspace when it is created, as a CQL map.
    #[arg(long = "cql-replication", env = "NATTER_CQL_REPLICATION",
          default_value = "{'class': 'SimpleStrategy', 'replication_factor': 1}",
          value_parser = replication)]
    pub replication: String,

    /// How many replicas answer each read and write: `one` for a single node; `quorum` (or
    /// `local-quorum` with several data centres) on a cluster at replication factor 3, where a
    /// write acknowledged by two replicas is read back by any two, and one node may be down.
    #[arg(
        long = "cql-consistency",
        env = "NATTER_CQL_CONSISTENCY",
        value_enum,
        default_value = "one"
    )]
    pub consistency: ConsistencyLevel,

    /// How long to keep trying to reach the store at start before giving up.
    #[arg(long = "cql-connect-timeout", env = "NATTER_CQL_CONNECT_TIMEOUT", default_value = "60s",
          value_parser = kit::config::duration)]
    pub connect_timeout: Duration,
}

/// The consistency levels Natter runs at (the others are never right for it: `all` stops at the
/// first node down, `any` acknowledges writes no replica holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsistencyLevel {
    One,
    Quorum,
    LocalQuorum,
}

impl From<ConsistencyLevel> for scylla::statement::Consistency {
    fn from(level: ConsistencyLevel) -> Self {
        match level {
            ConsistencyLevel::One => Self::One,
            ConsistencyLevel::Quorum => Self::Quorum,
            ConsistencyLevel::LocalQuorum => Self::LocalQuorum,
        }
    }
}

/// A keyspace name: a lowercase letter, then up to 47 lowercase letters, digits and `_`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspace(String);

impl Keyspace {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut bytes = s.bytes();
        let ok = s.len() <= 48
            && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "'{s}' is not a keyspace name: a lowercase letter, then up to 47 of a-z, 0-9 and '_'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn replication(s: &str) -> Result<String, String> {
    let trimmed = s.trim();
    if trimmed.starts_with('{') && trimmed.ends_with('}') && trimmed.contains("'class'") {
        Ok(trimmed.to_owned())
    } else {
        Err(format!(
            "'{s}' is not a CQL replication map like {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ))
    }
}

/// How long a schema change may take to reach every node before the migration fails. Changes are
/// made only at start, and a busy ring (three JVMs on a loaded 2-core machine) has been seen to
/// need more than the driver's 60 s: waiting longer is better than a service that exits.
const SCHEMA_AGREEMENT: Duration = Duration::from_secs(300);

/// What can go wrong reaching or preparing the store.
#[derive(Debug, thiserror::Error)]
pub enum CqlError {
    #[error("could not reach the CQL store at {nodes} within {secs}s: {source}")]
    Connect {
        nodes: String,
        secs: u64,
        #[source]
        source: scylla::errors::NewSessionError,
    },
    #[error("schema migration {version} ({name}) failed: {source}")]
    Migration {
        version: i32,
        name: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("CQL request failed: {0}")]
    Request(#[from] Box<dyn std::error::Error + Send + Sync>),
}

fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> CqlError {
    CqlError::Request(Box::new(e))
}

impl CqlConfig {
    /// Connects, retrying until `connect_timeout` so services may start before the store is up.
    /// The session has no keyspace: every statement names its table's
    /// ([`crate::MessageStore::prepare`]), as Cassandra asks of prepared statements (`USE` with
    /// them draws a warning on every connection, and a statement prepared on a connection using
    /// another keyspace would read the wrong table).
    pub async fn connect(&self) -> Result<Arc<Session>, CqlError> {
        self.connect_using(None).await
    }

    async fn connect_using(&self, keyspace: Option<&str>) -> Result<Arc<Session>, CqlError> {
        let profile = ExecutionProfile::builder()
            .consistency(self.consistency.into())
            .build()
            .into_handle();
        let attempt = || async {
            let mut builder = SessionBuilder::new()
                .known_nodes(&self.nodes)
                .default_execution_profile_handle(profile.clone())
                .connection_timeout(Duration::from_secs(5))
                .schema_agreement_timeout(SCHEMA_AGREEMENT);
            if let Some(keyspace) = keyspace {
                builder = builder.use_keyspace(keyspace, false);
            }
            builder.build().await
        };
        let policy = retry::exponential(Duration::from_millis(200), Duration::from_secs(5))
            .with_total_delay(Some(self.connect_timeout));
        let session = attempt
            .retry(policy)
            .notify(|e, _| tracing::warn!(error = %e, "CQL store not reachable yet; retrying"))
            .await
            .map_err(|source| CqlError::Connect {
                nodes: self.nodes.join(","),
                secs: self.connect_timeout.as_secs(),
                source,
            })?;
        Ok(Arc::new(session))
    }

    /// Creates the keyspace when missing and applies every migration not yet recorded. The
    /// migrations' files name their tables without a keyspace, so they run on a session of their
    /// own that uses it (unprepared, which Cassandra does not warn of); `session` keeps none.
    pub async fn migrate(
        &self,
        session: &Session,
        migrations: &[Migration],
    ) -> Result<(), CqlError> {
        let ks = self.keyspace.as_str();
        session
            .query_unpaged(
                format!(
                    "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {} AND durable_writes = true",
                    self.replication
                ),
                &[],
            )
            .await
            .map_err(boxed)?;
        session.await_schema_agreement().await.map_err(boxed)?;
        session
            .query_unpaged(
                format!(
                    "CREATE TABLE IF NOT EXISTS {ks}.schema_migrations \
                     (version int PRIMARY KEY, name text, applied_at timestamp)"
                ),
                &[],
            )
            .await
            .map_err(boxed)?;
        session.await_schema_agreement().await.map_err(boxed)?;

        let applied: Vec<i32> = session
            .query_unpaged(format!("SELECT version FROM {ks}.schema_migrations"), &[])
            .await
            .map_err(boxed)?
            .into_rows_result()
            .map_err(boxed)?
            .rows::<(i32,)>()
            .map_err(boxed)?
            .map(|row| row.map(|(v,)| v))
            .collect::<Result<_, _>>()
            .map_err(boxed)?;
        let pending: Vec<&Migration> = migrations
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let within = self.connect_using(Some(ks)).await?;

        for migration in pending {
            let failed = |source: Box<dyn std::error::Error + Send + Sync>| CqlError::Migration {
                version: migration.version,
                name: migration.name,
                source,
            };
            for statement in migration.statements() {
                match within.query_unpaged(statement.as_str(), &[]).await {
                    Ok(_) => {}
                    // Services start together and each applies what is not yet recorded, so two
                    // may run one migration at once: what another just did counts as done.
                    Err(e) if done_by_another(&statement, &e.to_string()) => {}
                    Err(e) => return Err(failed(Box::new(e))),
                }
                within
                    .await_schema_agreement()
                    .await
                    .map_err(|e| failed(Box::new(e)))?;
            }
            session
                .query_unpaged(
                    format!(
                        "INSERT INTO {ks}.schema_migrations (version, name, applied_at) \
                         VALUES (?, ?, toTimestamp(now()))"
                    ),
                    (migration.version, migration.name),
                )
                .await
                .map_err(|e| failed(Box::new(e)))?;
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "CQL migration applied"
            );
        }
        Ok(())
    }
}

/// The execution profile of every read: the session's own (so its consistency), plus speculative
/// execution after [`SPECULATE_AFTER`]. Writes keep the session's profile: a write the store is
/// slow to take is not sent twice, which would only add load where there is too much already. (A
/// dead replica behind a live coordinator is the tables' `speculative_retry`, schema version 9.)
pub fn read_profile(session: &Session) -> ExecutionProfileHandle {
    session
        .get_default_execution_profile_handle()
        .pointee_to_builder()
        .speculative_execution_policy(Some(Arc::new(SimpleSpeculativeExecutionPolicy {
            max_retry_count: 1,
            retry_interval: SPECULATE_AFTER,
        })))
        .build()
        .into_handle()
}

/// Gives a read (a `SELECT`) the [`read_profile`] and marks it idempotent, which the driver needs
/// before it runs a statement twice (a read always may). Other statements are left as they are.
fn speculate_if_read(statement: &mut PreparedStatement, reads: &ExecutionProfileHandle) {
    let cql = statement.get_statement().trim_start();
    if cql.len() >= 6 && cql[..6].eq_ignore_ascii_case("select") {
        statement.set_is_idempotent(true);
        statement.set_execution_profile_handle(Some(reads.clone()));
    }
}

/// A request to the store that failed, as the stores' callers see it.
#[derive(Debug, thiserror::Error)]
#[error("CQL store: {0}")]
pub struct StoreError(String);

pub(crate) fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// Prepares one of the store's statements, messages' and inboxes' alike. Every statement may run
/// twice (a write sets or deletes cells named by ids, most at a timestamp of their own; nothing
/// counts up), so it is marked idempotent and the driver tries another replica when a node dies
/// mid-request; `timeout` bounds each request; a read runs with the `reads` profile
/// ([`speculate_if_read`]).
pub(crate) async fn prepared(
    session: &Session,
    reads: &ExecutionProfileHandle,
    timeout: Duration,
    cql: &str,
) -> Result<PreparedStatement, StoreError> {
    let mut statement = session.prepare(cql).await.map_err(failed)?;
    statement.set_is_idempotent(true);
    statement.set_request_timeout(Some(timeout));
    speculate_if_read(&mut statement, reads);
    Ok(statement)
}

/// `rows` cut, in order, into runs of at most `most` rows whose `size`s add up to at most
/// `bytes` (a row bigger than that alone is a run of its own): the batches one request each.
pub(crate) fn cut<T>(
    rows: &[T],
    most: usize,
    bytes: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<&[T]> {
    let mut runs = Vec::new();
    let (mut start, mut taken) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        let size = size(row);
        if i > start && (i - start == most || taken + size > bytes) {
            runs.push(&rows[start..i]);
            (start, taken) = (i, 0);
        }
        taken += size;
    }
    if start < rows.len() {
        runs.push(&rows[start..]);
    }
    runs
}

/// An unlogged batch of `rows` runs of `statement`, with its request timeout.
pub(crate) fn unlogged(statement: &PreparedStatement, rows: usize) -> Batch {
    let mut batch = Batch::new(BatchType::Unlogged);
    batch.set_request_timeout(statement.get_request_timeout());
    for _ in 0..rows {
        batch.append_statement(statement.clone());
    }
    batch
}

/// Readiness of the CQL store, for a service's `/readyz`.
pub trait CqlReadiness {
    /// Adds the CQL store: a read of the coordinator's own row in `system.local`.
    fn with_cql(self, session: Arc<Session>) -> Self;
}

impl CqlReadiness for kit::health::Readiness {
    fn with_cql(self, session: Arc<Session>) -> Self {
        self.with("cql", move || {
            let session = Arc::clone(&session);
            async move {
                session
                    .query_unpaged("SELECT release_version FROM system.local", &[])
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        })
    }
}

/// One version of the CQL schema: statements separated by `;`, `--` comments allowed.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub cql: &'static str,
}

impl Migration {
    /// The statements, with comments and blank lines removed.
    pub fn statements(&self) -> Vec<String> {
        let without_comments: String = self
            .cql
            .lines()
            .map(|line| line.split("--").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        without_comments
            .split(';')
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Whether a migration statement failed only because another process ran it first: CQL has
/// `IF NOT EXISTS` for creating tables and indexes but not for adding a column, whose second run
/// says the column already exists.
fn done_by_another(statement: &str, error: &str) -> bool {
    let statement = statement.trim_start().to_ascii_uppercase();
    statement.starts_with("ALTER TABLE")
        && statement.contains(" ADD ")
        && error.contains("already exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_another_process_added_counts_as_added() {
        let add = "ALTER TABLE inbox_by_message ADD edited_at bigint static";
        let twice = "Invalid query: Column with name 'edited_at' already exists";
        assert!(done_by_another(add, twice));
        assert!(!done_by_another(add, "Unknown column type bigintt"));
        assert!(!done_by_another(
            "CREATE TABLE t (a int PRIMARY KEY)",
            "Table t already exists"
        ));
    }

    #[test]
    fn statements_are_split_and_comments_dropped() {
        let m = Migration {
            version: 1,
            name: "x",
            cql: "-- a table\nCREATE TABLE a (x int PRIMARY KEY); -- trailing\n\nCREATE TABLE b (\n  y int PRIMARY KEY\n);\n",
        };
        assert_eq!(
            m.statements(),
            [
                "CREATE TABLE a (x int PRIMARY KEY)",
                "CREATE TABLE b ( y int PRIMARY KEY )"
            ]
        );
    }

    #[test]
    fn keyspace_names_that_cql_would_reject_are_refused() {
        for bad in ["", "1ks", "Ks", "k-s", "k s", &"k".repeat(49)] {
            assert!(Keyspace::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Keyspace::parse("natter_test_1").is_ok());
    }
}
