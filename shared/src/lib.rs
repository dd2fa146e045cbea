//! What every Natter service shares: the wire contract and the plumbing.
//!
//! - [`snowflake`]: 64-bit time-ordered ids in Discord's layout.
//! - [`subjects`]: every NATS subject, built from typed ids in one place.
//! - [`stream`]: the JetStream stream that is the durable intake of chat events.
//! - [`gateway`]: the frames spoken over the edge's WebSocket.
//! - [`cql`]: connecting to the CQL store and applying its versioned schema.
//! - [`config`], [`telemetry`], [`health`], [`lifecycle`]: how a service starts, reports and stops.

pub mod config;
pub mod cql;
pub mod gateway;
pub mod health;
pub mod lifecycle;
pub mod snowflake;
pub mod stream;
pub mod subjects;
pub mod telemetry;

#[cfg(feature = "testing")]
pub mod testing;

pub use snowflake::{Snowflake, SnowflakeGenerator};
