//! How a Natter service runs: what every service shares that is not the wire contract.
//!
//! - [`error`], [`extract`]: the one HTTP error type, and the extractors that answer with it.
//! - [`config`]: typed configuration groups (flags with environment fallbacks), checked at start.
//! - [`lifecycle`]: start, run and stop a service; the tasks it cannot live without.
//! - [`listener`]: every service's HTTP listeners, with their header timeout and per-address cap.
//! - [`telemetry`], [`health`]: logs, `/metrics`, `/livez` and `/readyz`.
//! - [`tokens`]: verifying access tokens (EdDSA JWTs) against the auth service's key set.
//! - [`retry`]: exponential backoff, the one policy of every retry loop.
//! - [`requests`]: answering other services' NATS requests, the one loop of every answerer.
//! - [`gather`]: questions asked together, while earlier ones are in flight.
//! - [`signing`]: signed, expiring URLs (upload slots, a message's files).
//! - [`stream`]: the JetStream stream that is the durable intake of chat events.

pub mod config;
pub mod error;
pub mod extract;
pub mod gather;
pub mod health;
pub mod lifecycle;
pub mod listener;
pub mod requests;
pub mod retry;
pub mod signing;
pub mod stream;
pub mod telemetry;
pub mod tokens;
