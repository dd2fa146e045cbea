//! Natter's message store: the CQL store (ScyllaDB in production, Apache Cassandra locally).
//!
//! - [`cql`]: connecting to the store and applying its versioned schema.
//! - [`schema`]: the schema's versions and the layout every query shares (time buckets).
//! - [`messages`]: every read and write of the tables ([`MessageStore`]).
//! - [`inbox`]: the mentions inbox, per user ([`InboxStore`]).
//! - [`history`]: history as clients read it: the store with the chat stream's events it does not
//!   yet hold laid over it ([`History`]).

pub mod cql;
pub mod history;
pub mod inbox;
pub mod messages;
pub mod schema;

pub use history::History;
pub use inbox::InboxStore;
pub use messages::{MessageStore, Page, StoreError, StoredMessage};
