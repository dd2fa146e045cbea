//! The auth service's REST API against the real stack (PostgreSQL, Redis, NATS): one test binary,
//! each test with its own database, subject prefix and cache key prefix.

mod accounts;
mod bad_input;
mod channels;
mod consent;
mod discovery;
mod guilds;
mod limits;
mod matrix;
mod migrations;
mod moderation;
mod notify;
mod openapi;
mod profiles;
mod starts;
mod support;
mod tokens;
mod web_client;
