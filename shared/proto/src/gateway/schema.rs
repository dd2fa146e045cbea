//! The gateway's types as JSON Schema (utoipa's, as the REST bodies' are), for the generated
//! TypeScript and the web client's validators: every frame payload a client sends or receives.

use super::client::{
    Identify, MessageDelete, MessageEdit, MessageSend, PresenceUpdate, RequestChannelMembers,
    RequestGuildMembers, Resume, TypingStart,
};
use super::server::{Ack, Dispatch, ErrorReply, Hello};

/// Every gateway type, as OpenAPI components (merged into the REST document by the generator).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    Dispatch,
    Hello,
    Ack,
    ErrorReply,
    Identify,
    Resume,
    MessageSend,
    MessageEdit,
    MessageDelete,
    TypingStart,
    PresenceUpdate,
    RequestChannelMembers,
    RequestGuildMembers,
)))]
pub struct GatewaySchemas;
