//! What every Natter service shares: the wire contract and the plumbing.
//!
//! - [`api`]: the REST bodies, error shape and checked newtypes (usernames, names, URLs).
//! - [`access`]: what edges ask auth over NATS (a session's channels, whose presence it may see).
//! - [`events`]: typed events on NATS (channel and profile changes, revoked sessions).
//! - [`tokens`]: verifying access tokens (EdDSA JWTs) against the auth service's key set.
//! - [`snowflake`]: 64-bit time-ordered ids in Discord's layout.
//! - [`subjects`]: every NATS subject, built from typed ids in one place.
//! - [`stream`]: the JetStream stream that is the durable intake of chat events.
//! - [`gateway`]: the frames spoken over the edge's WebSocket.
//! - [`cql`]: connecting to the CQL store and applying its versioned schema.
//! - [`history`]: messages and read states in the CQL store: the schema and every query.
//! - [`config`], [`telemetry`], [`health`], [`lifecycle`]: how a service starts, reports and stops.
//! - [`listener`]: every service's HTTP listeners, with their header timeout and per-address cap.

pub mod access;
pub mod api;
pub mod config;
pub mod cql;
pub mod events;
pub mod gateway;
pub mod health;
pub mod history;
pub mod lifecycle;
pub mod listener;
pub mod presence;
pub mod snowflake;
pub mod stream;
pub mod subjects;
pub mod telemetry;
pub mod tokens;

#[cfg(feature = "testing")]
pub mod testing;

pub use snowflake::{Snowflake, SnowflakeGenerator};
