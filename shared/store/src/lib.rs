//! Natter's message store: the CQL store (ScyllaDB in production, Apache Cassandra locally).
//!
//! - [`cql`]: connecting to the store and applying its versioned schema.
//! - [`history`]: messages and read states: the schema and every query.

pub mod cql;
pub mod history;
