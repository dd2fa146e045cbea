//! Typed events the services publish on NATS when accounts and channels change. The edge forwards
//! each as a gateway DISPATCH frame with the same name and payload.
//!
//! On the wire an event is `{"t": "CHANNEL_UPDATE", "d": {...}}`, names as in Discord's gateway.
//!
//! Where each goes (subjects in [`crate::subjects`]):
//!
//! MESSAGE_CREATE, MESSAGE_UPDATE, MESSAGE_DELETE, MESSAGE_REACTION_ADD, _REMOVE and
//! _REMOVE_ALL, and CHANNEL_PINS_UPDATE go through the chat stream (`{prefix}.in.{channel}`,
//! republished to `.msg` once stored), TYPING_START to `.typing`, and
//! MESSAGE_ACK (published by the edge that marked the channel read) to `.read` for channels of up
//! to 25 members and to the reader's inbox for larger ones; the rest are published by auth:
//!
//! | event                     | user inboxes                          | channel subject `.meta` |
//! |---------------------------|---------------------------------------|-------------------------|
//! | CHANNEL_CREATE            | every member; an added member (each their own view) | -         |
//! | CHANNEL_UPDATE            | -                                     | yes                     |
//! | CHANNEL_DELETE            | every member                          | yes                     |
//! | CHANNEL_MEMBER_ADD        | -                                     | yes                     |
//! | CHANNEL_MEMBER_REMOVE     | the removed member                    | yes                     |
//! | CHANNEL_MODERATOR_ADD/REMOVE | the promoted or demoted member     | yes                     |
//! | USER_UPDATE               | the user (sees their real status)     | each of their channels (others' view) |
//! | SESSION_REVOKED           | the user                              | -                       |
//! | PRESENCE_UPDATE           | the user (their real status)          | - (see below)           |
//! | RELATIONSHIP_ADD/REMOVE   | the user who blocked or unblocked     | -                       |
//! | USER_SETTINGS_UPDATE      | the user                              | -                       |
//! | USER_GUILD_SETTINGS_UPDATE | the user                             | -                       |
//! | BLOCK_UPDATE (edge only)  | both people                           | -                       |
//! | DM_OPEN (edge only)       | -                                     | the DM                  |
//!
//! A server's events go to its subject, `{prefix}.guild.{guild}`, which an edge follows while it
//! holds a session of a member; the edge keeps the server's roles and channels from them and
//! hands each session what it may see ([`Event::guild`]):
//!
//! | event                          | user inboxes                      | server subject |
//! |--------------------------------|-----------------------------------|----------------|
//! | GUILD_CREATE                   | the member who joined (their view) | -             |
//! | GUILD_DELETE                   | each member who left, was kicked or banned; every member when it is deleted | - |
//! | GUILD_UPDATE                   | -                                 | yes            |
//! | GUILD_MEMBER_ADD/UPDATE/REMOVE | -                                 | yes            |
//! | GUILD_ROLE_CREATE/UPDATE/DELETE | -                                | yes            |
//! | CHANNEL_CREATE/UPDATE/DELETE (with `guild_id`) | -                 | yes: each session gets them for the channels it may view |
//! | GUILD_BAN_ADD/REMOVE           | -                                 | yes: to sessions with BAN_MEMBERS |
//! | INVITE_CREATE/DELETE           | -                                 | yes: to sessions with MANAGE_GUILD |
//! | GUILD_AUDIT_LOG_ENTRY_CREATE   | -                                 | yes: to sessions with VIEW_AUDIT_LOG |
//! | VOICE_STATE_UPDATE (with `guild_id`) | -                           | yes: to sessions that may view its channel; a leave (null channel) to every session |
//!
//! VOICE_STATE_UPDATE of a call in a DM or group channel goes to that channel's `.meta` subject
//! (a leave to the channel left), and so do CALL_CREATE (its first person joined) and
//! CALL_DELETE (its last left). VOICE_SERVER_UPDATE is never published: the edge answers op 4
//! with it.
//!
//! BLOCK_UPDATE and DM_OPEN change whose presence a session may watch and where it may send
//! ([`Event::is_internal`]): edges apply them and never forward them to clients.
//!
//! PRESENCE_UPDATE is published by presence: the real status to the user's inbox, and the status
//! as others see it on `{prefix}.presence.{user}`, which edges watch for co-members.
//!
//! An inbox copy goes to whoever's subscriptions must change (an edge subscribes a user to a
//! channel it learns of in their inbox, and unsubscribes on removal or deletion); everyone else
//! already holds the channel subscription. A member added to a channel gets the channel itself
//! (CHANNEL_CREATE, as that member sees it) rather than the CHANNEL_MEMBER_ADD the others get, as
//! Discord sends CHANNEL_CREATE to a new group-DM recipient and CHANNEL_RECIPIENT_ADD to the rest.
//! An edge therefore receives a member's CHANNEL_DELETE, and a removed member's
//! CHANNEL_MEMBER_REMOVE, twice: it forwards the first and drops the second, as the session no
//! longer has the channel.

use serde::{Deserialize, Serialize};

use crate::Snowflake;
use crate::api::audit::AuditLogEntry;
use crate::api::channels::{Channel, Member};
use crate::api::consent::{Relationship, RelationshipRef, UserSettings};
use crate::api::guilds::{Guild, GuildMember, Role, UserGuild};
use crate::api::invites::Invite;
use crate::api::messages::{Message, Typing};
use crate::api::users::User;
use crate::api::voice::{VoiceServerUpdate, VoiceState};
use crate::gateway::ReadyChannel;

#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumDiscriminants,
    utoipa::ToSchema,
)]
#[serde(tag = "t", content = "d", rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
#[strum_discriminants(
    name(EventKind),
    derive(strum::IntoStaticStr, strum::EnumIter),
    strum(serialize_all = "SCREAMING_SNAKE_CASE")
)]
pub enum Event {
    /// A message was posted (stored in the chat stream; carries a sequence number on the gateway).
    MessageCreate(Message),
    /// A message's content was edited (stored in the chat stream, like MESSAGE_CREATE).
    MessageUpdate(Message),
    /// A message was deleted (stored in the chat stream).
    MessageDelete(MessageRef),
    /// Someone reacted to a message with an emoji (stored in the chat stream, like edits).
    MessageReactionAdd(ReactionEvent),
    /// Someone's reaction was taken back, by them or by a moderator (stored in the chat stream).
    MessageReactionRemove(ReactionEvent),
    /// A moderator cleared every reaction of a message (stored in the chat stream).
    MessageReactionRemoveAll(MessageRef),
    /// A message was pinned or unpinned (stored in the chat stream; a pin is followed there by
    /// its system message, a MESSAGE_CREATE of type 6).
    ChannelPinsUpdate(crate::api::pins::PinsUpdate),
    /// A user has read a channel up to a message: their own other devices clear the channel's
    /// unread count, and in small channels the other members see it as a read receipt.
    MessageAck(ReadState),
    /// Someone is typing (core NATS only, never stored).
    TypingStart(Typing),
    /// A channel or DM exists for the inbox's user (as they see it: their role, for a DM the
    /// other person and whether they opened it). Auth publishes the channel alone; the edge that
    /// sends it to a session joining the channel adds where its messages and the user's reading
    /// stand, read after the session subscribed, as READY's channels do.
    ChannelCreate(ReadyChannel),
    /// A channel's name, topic or owner changed (the view every member shares).
    ChannelUpdate(Channel),
    ChannelDelete(ChannelRef),
    ChannelMemberAdd(MemberAdded),
    ChannelMemberRemove(MemberRef),
    ChannelModeratorAdd(MemberRef),
    ChannelModeratorRemove(MemberRef),
    /// A profile changed. The copy in the user's inbox has their real status; the copy on their
    /// channels shows `invisible` as `offline`.
    UserUpdate(User),
    /// A session (a refresh-token family) was signed out or revoked: close its sockets.
    SessionRevoked(SessionRevoked),
    /// A user's presence changed (published by presence).
    PresenceUpdate(crate::api::presence::Presence),
    /// The user blocked someone (their own sessions).
    RelationshipAdd(Relationship),
    /// The user unblocked someone (their own sessions).
    RelationshipRemove(RelationshipRef),
    /// The user's privacy settings changed (their own sessions).
    UserSettingsUpdate(UserSettings),
    /// The user's notification settings of a server (or of their DMs) changed (their own
    /// sessions).
    UserGuildSettingsUpdate(crate::api::notifications::UserGuildSettings),
    /// Edge only: a block between two people began or ended; sent to both. Their sessions stop
    /// (or may again) watch each other's presence, and their DM refuses (or takes) sends.
    BlockUpdate(BlockUpdate),
    /// Edge only: a member opened their side of a DM (`user_id`); the other member's sessions
    /// may now watch their presence.
    DmOpen(MemberRef),
    /// A server appeared for the inbox's user (they created or joined it): as they see it.
    GuildCreate(UserGuild),
    /// A server's name, icon or owner changed.
    GuildUpdate(Guild),
    /// A server is gone for the inbox's user: they left, were kicked or banned, or it was deleted.
    GuildDelete(GuildRef),
    GuildMemberAdd(GuildMemberEvent),
    /// A member's nickname, roles or time-out changed.
    GuildMemberUpdate(GuildMemberEvent),
    /// A member left, was kicked or banned.
    GuildMemberRemove(GuildMemberRemove),
    GuildRoleCreate(GuildRoleEvent),
    GuildRoleUpdate(GuildRoleEvent),
    GuildRoleDelete(GuildRoleRef),
    GuildBanAdd(GuildBanEvent),
    GuildBanRemove(GuildBanEvent),
    InviteCreate(Invite),
    InviteDelete(InviteRef),
    GuildAuditLogEntryCreate(AuditLogEntry),
    /// Someone joined, moved between or left a voice channel or call, or changed their mute,
    /// deafen, camera or screen flags, or a moderator muted or deafened them (published by auth).
    VoiceStateUpdate(VoiceState),
    /// Where and with what to connect for media: sent by the edge to the session whose op 4
    /// joined or moved, never published.
    VoiceServerUpdate(VoiceServerUpdate),
    /// A call began in a DM or group channel (its first person joined): it rings `ringing`, the
    /// channel's other members (published by auth).
    CallCreate(CallEvent),
    /// Whom a call rings changed: someone answered or declined, or the ringing timed out
    /// (`ringing` empty).
    CallUpdate(CallEvent),
    /// The call of a DM or group channel ended: its last person left, or nobody answered.
    CallDelete(CallEvent),
}

impl Event {
    /// The gateway dispatch name (`t`): the variant's name by serde's rule (strum applies the same
    /// one; a test checks every variant).
    pub fn name(&self) -> &'static str {
        self.into()
    }

    /// Events between services that edges apply but never forward to a client: who blocks whom
    /// is not for the blocked person to read.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::BlockUpdate(_) | Self::DmOpen(_))
    }

    /// The server the event is about, if any: its channels' events included.
    pub fn guild(&self) -> Option<Snowflake> {
        match self {
            Self::ChannelCreate(ReadyChannel { channel, .. }) | Self::ChannelUpdate(channel) => {
                channel.guild_id
            }
            Self::ChannelDelete(r) => r.guild_id,
            Self::GuildCreate(guild) => Some(guild.id),
            Self::GuildUpdate(guild) => Some(guild.id),
            Self::GuildDelete(r) => Some(r.id),
            Self::GuildMemberAdd(e) | Self::GuildMemberUpdate(e) => Some(e.guild_id),
            Self::GuildMemberRemove(e) => Some(e.guild_id),
            Self::GuildRoleCreate(e) | Self::GuildRoleUpdate(e) => Some(e.guild_id),
            Self::GuildRoleDelete(r) => Some(r.guild_id),
            Self::GuildBanAdd(e) | Self::GuildBanRemove(e) => Some(e.guild_id),
            Self::InviteCreate(invite) => Some(invite.guild_id),
            Self::InviteDelete(r) => Some(r.guild_id),
            Self::GuildAuditLogEntryCreate(entry) => Some(entry.guild_id),
            Self::VoiceStateUpdate(state) => state.guild_id,
            _ => None,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("events serialize")
    }

    /// The channel the event is about, if any (a server's events, invites included, are about
    /// the server: [`Event::guild`]).
    pub fn channel(&self) -> Option<Snowflake> {
        match self {
            Self::MessageCreate(message) | Self::MessageUpdate(message) => Some(message.channel_id),
            Self::MessageDelete(r) | Self::MessageReactionRemoveAll(r) => Some(r.channel_id),
            Self::MessageReactionAdd(r) | Self::MessageReactionRemove(r) => Some(r.channel_id),
            Self::ChannelPinsUpdate(p) => Some(p.channel_id),
            Self::MessageAck(read) => Some(read.channel_id),
            Self::TypingStart(typing) => Some(typing.channel_id),
            Self::ChannelCreate(created) => Some(created.channel.id),
            Self::ChannelUpdate(channel) => Some(channel.id),
            Self::ChannelDelete(r) => Some(r.channel_id),
            Self::ChannelMemberAdd(added) => Some(added.channel_id),
            Self::ChannelMemberRemove(r)
            | Self::ChannelModeratorAdd(r)
            | Self::ChannelModeratorRemove(r) => Some(r.channel_id),
            Self::DmOpen(r) => Some(r.channel_id),
            // A call's state is about its DM or group channel; a server's, about the server.
            Self::VoiceStateUpdate(state) if state.guild_id.is_none() => state.channel_id,
            Self::VoiceStateUpdate(_) | Self::VoiceServerUpdate(_) => None,
            Self::CallCreate(call) | Self::CallUpdate(call) | Self::CallDelete(call) => {
                Some(call.channel_id)
            }
            Self::UserUpdate(_)
            | Self::SessionRevoked(_)
            | Self::PresenceUpdate(_)
            | Self::RelationshipAdd(_)
            | Self::RelationshipRemove(_)
            | Self::UserSettingsUpdate(_)
            | Self::UserGuildSettingsUpdate(_)
            | Self::BlockUpdate(_)
            | Self::GuildCreate(_)
            | Self::GuildUpdate(_)
            | Self::GuildDelete(_)
            | Self::GuildMemberAdd(_)
            | Self::GuildMemberUpdate(_)
            | Self::GuildMemberRemove(_)
            | Self::GuildRoleCreate(_)
            | Self::GuildRoleUpdate(_)
            | Self::GuildRoleDelete(_)
            | Self::GuildBanAdd(_)
            | Self::GuildBanRemove(_)
            | Self::GuildAuditLogEntryCreate(_)
            | Self::InviteCreate(_)
            | Self::InviteDelete(_) => None,
        }
    }
}

/// CALL_CREATE and CALL_DELETE: a call in a DM or group channel, and whom it rings (empty in
/// CALL_DELETE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallEvent {
    pub channel_id: Snowflake,
    #[serde(default)]
    pub ringing: Vec<Snowflake>,
}

/// A message, by id (MESSAGE_DELETE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageRef {
    pub id: Snowflake,
    pub channel_id: Snowflake,
}

/// MESSAGE_REACTION_ADD and MESSAGE_REACTION_REMOVE: who, on which message, with which emoji.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReactionEvent {
    pub user_id: Snowflake,
    pub channel_id: Snowflake,
    pub message_id: Snowflake,
    pub emoji: crate::api::reactions::Emoji,
}

/// How far a user has read in a channel (MESSAGE_ACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReadState {
    pub channel_id: Snowflake,
    pub user_id: Snowflake,
    pub message_id: Snowflake,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChannelRef {
    pub channel_id: Snowflake,
    /// A server's channel: the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guild_id: Option<Snowflake>,
}

/// GUILD_DELETE: the server, by id, and (Natter's addition: Discord leaves people to guess) why
/// it is gone for this user, so their client can tell them "You were banned from Book club"
/// rather than let the server vanish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GuildRef {
    pub id: Snowflake,
    /// Absent when the edge noticed the user's own GUILD_MEMBER_REMOVE first: the copy from
    /// their inbox, which says why, follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removal: Option<GuildRemoval>,
}

/// Why a server is gone for a user (GUILD_DELETE's `removal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuildRemoval {
    /// They left it (on another device, perhaps).
    Left,
    /// A moderator kicked them.
    Kicked,
    /// A moderator banned them.
    Banned,
    /// Its owner deleted it.
    Deleted,
}

/// GUILD_MEMBER_ADD and GUILD_MEMBER_UPDATE: the member, and their server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GuildMemberEvent {
    pub guild_id: Snowflake,
    pub member: GuildMember,
}

/// GUILD_MEMBER_REMOVE: who left (or was kicked or banned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GuildMemberRemove {
    pub guild_id: Snowflake,
    pub user: User,
}

/// GUILD_ROLE_CREATE and GUILD_ROLE_UPDATE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GuildRoleEvent {
    pub guild_id: Snowflake,
    pub role: Role,
}

/// GUILD_ROLE_DELETE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GuildRoleRef {
    pub guild_id: Snowflake,
    pub role_id: Snowflake,
}

/// GUILD_BAN_ADD and GUILD_BAN_REMOVE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GuildBanEvent {
    pub guild_id: Snowflake,
    pub user: User,
}

/// INVITE_DELETE: a revoked or used-up invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InviteRef {
    pub guild_id: Snowflake,
    pub channel_id: Option<Snowflake>,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberAdded {
    pub channel_id: Snowflake,
    pub member: Member,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberRef {
    pub channel_id: Snowflake,
    pub user_id: Snowflake,
    /// CHANNEL_MEMBER_REMOVE only (Natter's addition): who removed them, when it was not they
    /// who left, so the removed person's client can tell them "You were removed from #walks".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_by: Option<Snowflake>,
}

/// BLOCK_UPDATE: `user_id` began (`blocked`) or stopped blocking `target_id`. `dm` is their DM,
/// if they have one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BlockUpdate {
    pub user_id: Snowflake,
    pub target_id: Snowflake,
    pub blocked: bool,
    #[serde(default)]
    pub dm: Option<Snowflake>,
}

impl BlockUpdate {
    /// The other person, seen from `me` (one of the two).
    pub fn other(&self, me: Snowflake) -> Snowflake {
        if self.user_id == me {
            self.target_id
        } else {
            self.user_id
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionRevoked {
    pub user_id: Snowflake,
    /// The session (refresh-token family) id, the `sid` claim of its access tokens.
    pub session_id: Snowflake,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_a_discord_style_name_and_payload() {
        let event = Event::ChannelModeratorAdd(MemberRef {
            channel_id: Snowflake::from_u64(1),
            user_id: Snowflake::from_u64(2),
            removed_by: None,
        });
        let json: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(json["t"], "CHANNEL_MODERATOR_ADD");
        assert_eq!(json["t"], event.name());
        assert_eq!(json["d"]["channel_id"], "1");
        assert_eq!(json["d"]["user_id"], "2");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn every_events_name_is_the_tag_serde_reads() {
        use strum::IntoEnumIterator;
        for kind in EventKind::iter() {
            let name: &'static str = kind.into();
            let refused =
                serde_json::from_value::<Event>(serde_json::json!({"t": name, "d": null}))
                    .unwrap_err()
                    .to_string();
            assert!(!refused.contains("unknown variant"), "{name}: {refused}");
        }
    }

    #[test]
    fn blocks_and_dm_opens_are_for_edges_only() {
        let block = Event::BlockUpdate(BlockUpdate {
            user_id: Snowflake::from_u64(1),
            target_id: Snowflake::from_u64(2),
            blocked: true,
            dm: None,
        });
        assert!(block.is_internal());
        assert_eq!(block.name(), "BLOCK_UPDATE");
        let Event::BlockUpdate(update) = &block else {
            unreachable!()
        };
        assert_eq!(update.other(Snowflake::from_u64(2)), Snowflake::from_u64(1));
        assert!(
            Event::DmOpen(MemberRef {
                channel_id: Snowflake::from_u64(3),
                user_id: Snowflake::from_u64(1),
                removed_by: None,
            })
            .is_internal()
        );
        let settings = Event::UserSettingsUpdate(UserSettings::default());
        assert!(!settings.is_internal());
        assert_eq!(settings.name(), "USER_SETTINGS_UPDATE");
    }

    #[test]
    fn a_session_revocation_names_the_user_and_the_session() {
        let event = Event::SessionRevoked(SessionRevoked {
            user_id: Snowflake::from_u64(7),
            session_id: Snowflake::from_u64(9),
        });
        let json: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"t": "SESSION_REVOKED", "d": {"user_id": "7", "session_id": "9"}})
        );
    }
}
