//! Natter's wire contract: every type that crosses a process boundary, and nothing that runs.
//!
//! - [`gateway`]: the frames spoken over the edge's WebSocket.
//! - [`events`]: the dispatch events, on NATS and on the gateway alike.
//! - [`api`]: the REST bodies, the error shape and the checked newtypes (usernames, names, URLs).
//! - [`access`]: what edges ask auth over NATS (a session's channels, whose presence it may see).
//! - [`tracker`]: what edges and the presence service (its tracker) tell each other over NATS.
//! - [`permissions`]: servers' permission sets and overwrites, and the one function that says what
//!   a member may do.
//! - [`search`]: what edges ask the search service over NATS, and how channels are split among
//!   its processes.
//! - [`subjects`]: every NATS subject, built from typed ids in one place.
//! - [`clock`]: the wall clock in Unix milliseconds, read in one place.
//! - [`snowflake`]: 64-bit time-ordered ids in Discord's layout.
//!
//! Serde only: no async runtime, no HTTP, no database client is in this crate's dependency tree,
//! so every client (the services, the load harness, the generated TypeScript) can use it.

pub mod access;
pub mod api;
pub mod clock;
pub mod events;
pub mod gateway;
pub mod permissions;
pub mod search;
pub mod snowflake;
pub mod subjects;
pub mod tracker;

pub use snowflake::{Snowflake, SnowflakeGenerator};
