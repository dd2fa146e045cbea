//! The REST API's bodies: what clients send to and get from the auth service, one set of types for
//! every service that speaks them.
//!
//! Requests arrive as plain strings (`*Request`), and each has a `parse` that turns it into checked
//! newtypes or a per-field list of what is wrong ([`error::FieldErrors`]). The newtypes'
//! constructors are the only place a rule lives.

pub mod attachments;
pub mod audit;
pub mod auth;
pub mod channels;
pub mod consent;
pub mod edge;
pub mod embeds;
pub mod error;
pub mod gateway;
pub mod guilds;
pub mod invites;
pub mod mentions;
pub mod messages;
pub mod names;
pub mod notifications;
pub mod pins;
pub mod presence;
pub mod reactions;
pub mod schema;
pub mod search;
pub(crate) mod text;
pub mod users;
pub mod voice;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use crate::Snowflake;

/// Ids are strings in JSON: JavaScript numbers lose precision above 2^53.
impl utoipa::PartialSchema for Snowflake {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A Snowflake id: a 64-bit number written as a decimal string",
            ))
            .examples(["175928847299117063"])
            .into()
    }
}

impl utoipa::ToSchema for Snowflake {}

/// Deserializes a field that can be absent (leave it alone), `null` (clear it) or a value (set it).
pub(crate) fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}
