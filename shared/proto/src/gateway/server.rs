//! What the gateway sends: the payloads of its own opcodes, and [`Dispatch`], every event a client
//! receives as a DISPATCH frame.

use serde::{Deserialize, Serialize};

use crate::Snowflake;
use crate::api::channels::{Channel, Member};
use crate::api::guilds::{GuildMember, Role};
use crate::api::messages::Message;
use crate::api::presence::Presence;
use crate::api::users::User;
use crate::events::Event;

/// Op 10, the first frame: how often to heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Hello {
    /// Milliseconds.
    pub heartbeat_interval: u64,
}

/// Op 25: the answer to a request that failed, keyed by the request's nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorReply {
    #[serde(default)]
    pub nonce: Option<String>,
    /// A stable machine code (`unknown_channel`, `invalid_content`, `rate_limited`, ...).
    pub code: String,
    pub message: String,
}

/// Op 24: the answer to a request that succeeded (a send, edit or delete), keyed by its nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ack {
    #[serde(default)]
    pub nonce: Option<String>,
    /// The message as stored (sends and edits; not deletes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
}

/// Every DISPATCH (op 0) a client receives: `t` names it, `d` is its payload. The gateway's own
/// (READY, RESUMED, CHANNEL_MEMBERS_CHUNK) and every forwarded [`Event`] (the events edges keep
/// for themselves, [`Event::is_internal`], are never sent).
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumDiscriminants,
)]
#[serde(tag = "t", content = "d", rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[strum_discriminants(
    name(DispatchKind),
    derive(strum::IntoStaticStr),
    strum(serialize_all = "SCREAMING_SNAKE_CASE")
)]
pub enum Dispatch {
    /// The first dispatch of a new session.
    Ready(Box<Ready>),
    /// A resume's replay is over; live events follow.
    Resumed(Resumed),
    /// One part of the answer to op 8.
    ChannelMembersChunk(ChannelMembersChunk),
    /// One part of the answer to op 8 asking for a server's members.
    GuildMembersChunk(GuildMembersChunk),
    #[serde(untagged)]
    Event(Event),
}

impl Dispatch {
    /// The dispatch name, `t`: the variant's name by serde's rule (strum applies the same one).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Event(event) => event.name(),
            own => own.into(),
        }
    }

    /// The DISPATCH frame carrying this, as text; `seq` is a stored event's stream sequence.
    pub fn encode(&self, seq: Option<u64>) -> String {
        match self {
            Self::Event(event) => event.encode_dispatch(seq),
            own => dispatch_frame(own, seq),
        }
    }
}

impl Event {
    /// The DISPATCH frame carrying this event, as text; `seq` is its stream sequence when it is
    /// stored. Encoded once per edge and shared by every session that gets it.
    pub fn encode_dispatch(&self, seq: Option<u64>) -> String {
        dispatch_frame(self, seq)
    }
}

/// `{"op": 0, "d": ..., "s": seq, "t": ...}` from a value that serialises as `{"t", "d"}`.
fn dispatch_frame<T: Serialize>(tagged: &T, seq: Option<u64>) -> String {
    let mut tagged = serde_json::to_value(tagged).expect("dispatches serialise");
    let frame = super::Frame {
        op: super::Opcode::Dispatch,
        d: tagged["d"].take(),
        s: seq,
        t: tagged["t"].as_str().map(str::to_owned),
    };
    serde_json::to_string(&frame).expect("frames serialise")
}

/// A dispatch's schema: `{"t": NAME, "d": payload}`, one branch per name. The gateway's own
/// branches, then every [`Event`]'s (serde writes an event's variant untagged, as the event's own
/// `{"t", "d"}`, which utoipa cannot derive: written here).
impl utoipa::PartialSchema for Dispatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::Ref;
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let own = |name: DispatchKind, payload: &str| {
            let name: &'static str = name.into();
            ObjectBuilder::new()
                .property(
                    "t",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([name])),
                )
                .required("t")
                .property("d", Ref::from_schema_name(payload))
                .required("d")
        };
        OneOfBuilder::new()
            .item(own(DispatchKind::Ready, "Ready"))
            .item(own(DispatchKind::Resumed, "Resumed"))
            .item(own(
                DispatchKind::ChannelMembersChunk,
                "ChannelMembersChunk",
            ))
            .item(own(DispatchKind::GuildMembersChunk, "GuildMembersChunk"))
            .item(Ref::from_schema_name("Event"))
            .description(Some(
                "A DISPATCH (op 0): `t` names it, `d` is its payload. Edges never send the \
                 events they keep for themselves (BLOCK_UPDATE, DM_OPEN).",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Dispatch {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push(("Ready".into(), Ready::schema()));
        schemas.push(("Resumed".into(), Resumed::schema()));
        schemas.push(("ChannelMembersChunk".into(), ChannelMembersChunk::schema()));
        schemas.push(("GuildMembersChunk".into(), GuildMembersChunk::schema()));
        schemas.push(("Event".into(), Event::schema()));
        <Ready as utoipa::ToSchema>::schemas(schemas);
        <ChannelMembersChunk as utoipa::ToSchema>::schemas(schemas);
        <GuildMembersChunk as utoipa::ToSchema>::schemas(schemas);
        <Event as utoipa::ToSchema>::schemas(schemas);
    }
}

impl From<Event> for Dispatch {
    fn from(event: Event) -> Self {
        Self::Event(event)
    }
}

/// READY: who the user is, where they talk, and the stream position the session starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ready {
    /// The protocol version (1).
    pub v: u8,
    pub session_id: String,
    /// Resume from here: the chat stream's position when the session started.
    pub seq: u64,
    pub user: User,
    pub channels: Vec<ReadyChannel>,
    /// The user's servers: each with its roles, the channels the user may view and the user's
    /// own member object, never its member list (op 8 asks for members).
    #[serde(default)]
    pub guilds: Vec<ReadyGuild>,
    /// The presence of the other side of each DM that shows it (they opened it; no block).
    pub presences: Vec<Presence>,
    /// Who is in a call in the user's DMs and group channels (a server's voice channels are in
    /// its `voice_states`).
    #[serde(default)]
    pub voice_states: Vec<crate::api::voice::VoiceState>,
    /// The user's notification settings: one entry per server (and `guild_id` null for DMs and
    /// group channels) they changed anything in; the others have the defaults.
    #[serde(default)]
    pub user_guild_settings: Vec<crate::api::notifications::UserGuildSettings>,
}

/// A server in READY and RESUMED, as the user sees it: GUILD_CREATE's shape, with where each
/// channel's messages and the user's reading stand (READY only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReadyGuild {
    pub id: Snowflake,
    pub name: String,
    pub icon: Option<String>,
    pub owner_id: Snowflake,
    pub member_count: u32,
    pub roles: Vec<Role>,
    /// The channels the user may view, categories included, without `guild_id` and
    /// `member_count` (the server's own): READY stays small for a member of many servers.
    pub channels: Vec<ReadyChannel>,
    pub member: GuildMember,
    /// Who is in the voice channels the user may view.
    #[serde(default)]
    pub voice_states: Vec<crate::api::voice::VoiceState>,
}

/// A channel in READY: the channel as the user sees it (its member count, not its members: those
/// come on request, so READY stays small however many channels the user is in), and where its
/// messages and the user's reading stand (left out when the store could not say in time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyChannel {
    #[serde(flatten)]
    pub channel: Channel,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<ReadSummary>,
}

/// A channel alone, before anyone has read where its messages stand (auth's CHANNEL_CREATE).
impl From<Channel> for ReadyChannel {
    fn from(channel: Channel) -> Self {
        Self {
            channel,
            summary: None,
        }
    }
}

/// A READY channel's schema: the channel, with the summary's fields beside its own, each optional
/// (the summary is left out whole when the store could not say in time).
impl utoipa::PartialSchema for ReadyChannel {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Type};
        use utoipa::openapi::{Ref, RefOr};
        let id = || RefOr::from(Ref::from_schema_name("Snowflake"));
        let nullable = |of: RefOr<utoipa::openapi::schema::Schema>| {
            utoipa::openapi::schema::OneOfBuilder::new()
                .item(of)
                .item(ObjectBuilder::new().schema_type(Type::Null))
        };
        AllOfBuilder::new()
            .item(Ref::from_schema_name("Channel"))
            .item(
                ObjectBuilder::new()
                    .property("last_message_id", nullable(id()))
                    .property("last_read_id", nullable(id()))
                    .property(
                        "unread_count",
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    )
                    .property(
                        "mention_count",
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    ),
            )
            .description(Some(
                "A channel in READY: the channel as the user sees it, and where its messages \
                 and the user's reading stand (left out when the store could not say in time).",
            ))
            .into()
    }
}

impl utoipa::ToSchema for ReadyChannel {}

/// Where a channel's messages and the user's reading of them stand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReadSummary {
    /// Left out while the channel has no messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_id: Option<Snowflake>,
    /// Left out while the user has read nothing in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_id: Option<Snowflake>,
    /// Messages by others after the read marker, counted to 100 ("100 or more").
    pub unread_count: u32,
    /// Those of them that mention the user (by name, by one of their roles, or everyone),
    /// counted to 100, as Discord's read state's `mention_count`.
    #[serde(default)]
    pub mention_count: u32,
}

/// RESUMED: the replay is over. Carries the user's channels as they are now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resumed {
    pub seq: u64,
    pub channels: Vec<Channel>,
    /// The user's servers as they are now (their events are not replayed).
    #[serde(default)]
    pub guilds: Vec<ReadyGuild>,
}

/// CHANNEL_MEMBERS_CHUNK: one part of the answer to op 8, shaped as Discord's
/// GUILD_MEMBERS_CHUNK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChannelMembersChunk {
    pub channel_id: Snowflake,
    pub members: Vec<Member>,
    pub chunk_index: u32,
    pub chunk_count: u32,
    /// Ids asked for in `user_ids` that are not members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<Snowflake>,
    /// When asked for: the presence of this chunk's members the client may see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presences: Option<Vec<Presence>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// GUILD_MEMBERS_CHUNK: one part of the answer to op 8 asking for a server's members, shaped as
/// Discord's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GuildMembersChunk {
    pub guild_id: Snowflake,
    pub members: Vec<GuildMember>,
    pub chunk_index: u32,
    pub chunk_count: u32,
    /// Ids asked for in `user_ids` that are not members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<Snowflake>,
    /// When asked for: the presence of this chunk's members the client may see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presences: Option<Vec<Presence>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}
