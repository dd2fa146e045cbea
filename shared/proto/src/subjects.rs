//! Every NATS subject Natter uses, built from typed ids in this one module.
//!
//! ```text
//! {prefix}.in.{channel}          the chat stream's intake: edges publish MESSAGE_* events here
//! {prefix}.ch.{channel}.msg      the same events once stored, republished by the stream with their
//!                                stream sequence in `Nats-Sequence` and the channel's previous
//!                                one in `Nats-Last-Sequence` (so a gap shows)
//! {prefix}.ch.{channel}.typing   typing notices, core NATS only (never stored)
//! {prefix}.ch.{channel}.meta     channel changes (proto::events), republished by the events stream
//! {prefix}.ch.{channel}.>        what an edge subscribes to, once per channel it has sessions in
//! {prefix}.user.{user}           a user's inbox: membership, profile and session events (auth's
//!                                republished by the events stream; presence's and read markers
//!                                on core NATS, without a `Nats-Stream` header)
//! {prefix}.guild.{guild}         a server's events (roles, channels, members, bans, invites,
//!                                audit entries), republished by the events stream; edges follow
//!                                it while they hold a session of a member
//! {prefix}.ev.user.{user}        the events stream's intake: auth publishes what it tells users,
//! {prefix}.ev.guild.{guild}      servers and channels here (JetStream), and the stream
//! {prefix}.ev.ch.{channel}.meta  republishes each to the subject without `.ev` with its sequence
//!                                and the subject's previous one (`Nats-Last-Sequence`)
//! {prefix}.presence.{user}       a user's presence changes as others see them (PRESENCE_UPDATE)
//! {prefix}.presence.edge.report  edges report session start, status and end (proto::tracker)
//! {prefix}.presence.edge.heartbeat  edges prove they are alive (request; presence answers)
//! {prefix}.presence.edge.sync    an edge's full session list, when presence asks for it
//! {prefix}.presence.edge.*       what presence subscribes to: one subscription, so what one
//!                                edge sends is applied in the order it was sent
//! {prefix}.presence.query        anyone asks for users' presence (request; presence answers)
//! {prefix}.edge.discover         discovery requests: the edges' NATS service endpoint; every
//!                                live edge answers with its EdgeInfo
//! {prefix}.edge.purge            auth asks the edges (one answers, queue group `edge`) to delete
//!                                a banned member's recent messages (proto::access::PurgeRequest)
//! {prefix}.auth.state            edges ask auth what a session needs (request; proto::access)
//! {prefix}.auth.visible          edges ask auth whose presence a user may see (request)
//! {prefix}.auth.members          edges ask auth for a page of a channel's members (request)
//! {prefix}.auth.guild            edges ask auth for a server's roles and channels (request)
//! {prefix}.auth.guild_members    edges ask auth for a page of a server's members (request)
//! {prefix}.auth.audit            edges report a moderator's message delete (request)
//! {prefix}.auth.notify           the notification worker asks whom a new message concerns
//!                                (request; proto::access::NotifyQuery)
//! {prefix}.auth.readable         the notification worker asks which channels a user can read
//!                                (request; proto::access::ReadableQuery)
//! {prefix}.auth.push_gone        the notification worker reports a subscription the push service
//!                                refused for good (proto::access::PushGone)
//! {prefix}.auth.*                what auth subscribes to, in the queue group `auth`
//! {prefix}.search.{partition}    edges ask the search process owning a partition of the index
//!                                (request; proto::search), queue group `search`
//! ```
//!
//! The prefix is the first token of every subject and the stem of every stream name, so several
//! deployments or test runs share one NATS cluster without seeing each other's traffic.

use std::fmt;

use crate::Snowflake;
use crate::tracker::FromEdgeKind;

/// The first token of every subject: lowercase letters, digits, `_` and `-`, 1 to 32 of them (no
/// `.`, `*`, `>` or white space, which NATS gives meaning to).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Prefix(String);

impl Prefix {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "'{s}' is not a subject prefix: use 1 to 32 of a-z, 0-9, '_' and '-'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Prefix({})", self.0)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds the subjects of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: Prefix,
}

impl Subjects {
    pub fn new(prefix: Prefix) -> Self {
        Self { prefix }
    }

    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// Where a channel's chat events are published to be stored (the chat stream's intake).
    pub fn chat_intake(&self, channel: Snowflake) -> String {
        format!("{}.in.{channel}", self.prefix)
    }

    /// A channel's chat events after they are stored: what edges deliver, in stream order.
    pub fn channel_messages(&self, channel: Snowflake) -> String {
        format!("{}.ch.{channel}.msg", self.prefix)
    }

    /// Typing notices of one channel (not stored).
    pub fn channel_typing(&self, channel: Snowflake) -> String {
        format!("{}.ch.{channel}.typing", self.prefix)
    }

    /// Read receipts of one channel (MESSAGE_ACK, core NATS, not stored).
    pub fn channel_reads(&self, channel: Snowflake) -> String {
        format!("{}.ch.{channel}.read", self.prefix)
    }

    /// Changes to one channel (created, renamed, members, moderators, deleted): core NATS, not
    /// stored; the edge's per-channel wildcard covers it.
    pub fn channel_events(&self, channel: Snowflake) -> String {
        format!("{}.ch.{channel}.meta", self.prefix)
    }

    /// Everything about one channel: the single subscription an edge holds per channel.
    pub fn channel_all(&self, channel: Snowflake) -> String {
        format!("{}.ch.{channel}.>", self.prefix)
    }

    /// The subjects the chat stream captures: every channel's intake.
    pub fn chat_stream_filter(&self) -> String {
        format!("{}.in.*", self.prefix)
    }

    /// Where the chat stream republishes each stored event: the channel's `.msg` subject, built by
    /// the server from the intake subject's channel token.
    pub fn chat_republish_destination(&self) -> String {
        format!("{}.ch.{{{{wildcard(1)}}}}.msg", self.prefix)
    }

    /// One user's inbox.
    pub fn user_inbox(&self, user: Snowflake) -> String {
        format!("{}.user.{user}", self.prefix)
    }

    /// One server's events: core NATS, the one subscription an edge holds per server it has
    /// sessions of members of.
    pub fn guild_events(&self, guild: Snowflake) -> String {
        format!("{}.guild.{guild}", self.prefix)
    }

    /// One user's presence changes, as others see them (`invisible` shown as `offline`). The
    /// user's own sessions get their real status in their inbox instead.
    pub fn presence(&self, user: Snowflake) -> String {
        format!("{}.presence.{user}", self.prefix)
    }

    /// Where edges send presence one kind of message (`proto::tracker::FromEdge`).
    pub fn presence_from_edge(&self, kind: FromEdgeKind) -> String {
        format!("{}.presence.edge.{kind}", self.prefix)
    }

    /// Where edges report session start, status and end (`proto::tracker::Report`).
    pub fn presence_report(&self) -> String {
        self.presence_from_edge(FromEdgeKind::Report)
    }

    /// Where edges send heartbeats (`proto::tracker::Heartbeat`, a request).
    pub fn presence_heartbeat(&self) -> String {
        self.presence_from_edge(FromEdgeKind::Heartbeat)
    }

    /// Where an edge sends all its sessions when presence asks (`proto::tracker::Sync`).
    pub fn presence_sync(&self) -> String {
        self.presence_from_edge(FromEdgeKind::Sync)
    }

    /// Everything edges send presence: report, heartbeat and sync. One subscription to all three
    /// keeps one edge's messages in the order it sent them (a sync taken before a session ended
    /// is never applied after that end); separate subscriptions would each queue on their own.
    pub fn presence_from_edges(&self) -> String {
        format!("{}.presence.edge.*", self.prefix)
    }

    /// Where presence answers queries for users' presence (`proto::tracker::Query`).
    pub fn presence_query(&self) -> String {
        format!("{}.presence.query", self.prefix)
    }

    /// Scatter-gather discovery: auth publishes a request with a reply inbox; every live edge
    /// answers with its `proto::api::gateway::EdgeInfo`. Edges serve it as an endpoint of their
    /// NATS service ([`Self::edge_service_name`]), each in a queue group of its own so all answer.
    pub fn edge_discovery(&self) -> String {
        format!("{}.edge.discover", self.prefix)
    }

    /// Where auth asks the edges to delete a banned member's recent messages
    /// (`proto::access::PurgeRequest`); one edge answers (queue group `edge`).
    pub fn edge_purge(&self) -> String {
        format!("{}.edge.purge", self.prefix)
    }

    /// Where media asks the edges to update a message whose images it processed
    /// (`proto::api::attachments::Processed`); one edge answers (queue group `edge`).
    pub fn edge_processed(&self) -> String {
        format!("{}.edge.processed", self.prefix)
    }

    /// The name edges register under with the NATS service API, for discovery.
    pub fn edge_service_name(&self) -> String {
        format!("{}-edge", self.prefix)
    }

    /// Where edges ask auth what a session needs (`proto::access::StateQuery`).
    pub fn auth_state(&self) -> String {
        format!("{}.auth.state", self.prefix)
    }

    /// Where edges ask auth about the sessions starting there (`proto::access::SessionStarts`).
    pub fn auth_starts(&self) -> String {
        format!("{}.auth.starts", self.prefix)
    }

    /// Where edges ask auth whose presence a user may see (`proto::access::VisibleQuery`).
    pub fn auth_visible(&self) -> String {
        format!("{}.auth.visible", self.prefix)
    }

    /// Where edges ask auth for a channel's members (`proto::access::MembersRequest`).
    pub fn auth_members(&self) -> String {
        format!("{}.auth.members", self.prefix)
    }

    /// Where edges ask media to take a message's uploads (`proto::api::attachments::Claim`).
    pub fn media_claim(&self) -> String {
        format!("{}.media.claim", self.prefix)
    }

    /// Where edges tell media a message was deleted (`proto::api::attachments::Forget`).
    pub fn media_forget(&self) -> String {
        format!("{}.media.forget", self.prefix)
    }

    /// Where edges ask auth for a server's roles and channels (`proto::access::GuildQuery`).
    pub fn auth_guild(&self) -> String {
        format!("{}.auth.guild", self.prefix)
    }

    /// Where edges ask auth for a server's members (`proto::access::GuildMembersRequest`).
    pub fn auth_guild_members(&self) -> String {
        format!("{}.auth.guild_members", self.prefix)
    }

    /// Where edges report a moderator's message delete for the audit log
    /// (`proto::access::MessageDeleted`).
    pub fn auth_audit(&self) -> String {
        format!("{}.auth.audit", self.prefix)
    }

    /// Where edges hand auth a session's op 4, and tell it when a session that joined voice ends
    /// (`proto::access::VoiceRequest`).
    pub fn auth_voice(&self) -> String {
        format!("{}.auth.voice", self.prefix)
    }

    /// Where the notification worker asks auth whom new messages concern
    /// (`proto::access::NotifyQueries`).
    pub fn auth_notify(&self) -> String {
        format!("{}.auth.notify", self.prefix)
    }

    /// Where the notification worker asks auth which of some channels a user can read now
    /// (`proto::access::ReadableQuery`).
    pub fn auth_readable(&self) -> String {
        format!("{}.auth.readable", self.prefix)
    }

    /// Where the notification worker tells auth that a push service answered 404 or 410 for a
    /// subscription (`proto::access::PushGone`): auth deletes it.
    pub fn auth_push_gone(&self) -> String {
        format!("{}.auth.push_gone", self.prefix)
    }

    /// Where the search service asks auth which server each of some channels belongs to
    /// (`proto::access::ChannelGuildsQuery`).
    pub fn auth_channel_guilds(&self) -> String {
        format!("{}.auth.channel_guilds", self.prefix)
    }

    /// Every request edges make of auth, answered by one auth instance each (queue group `auth`).
    pub fn auth_requests(&self) -> String {
        format!("{}.auth.*", self.prefix)
    }

    /// Where edges ask the search processes owning `partition` of the index (queue group
    /// `search`; `proto::search::SearchRequest`).
    pub fn search_query(&self, partition: u32) -> String {
        format!("{}.search.{partition}", self.prefix)
    }

    /// Where auth publishes an event for a user's inbox (the events stream's intake); the
    /// stream republishes it to [`Self::user_inbox`].
    pub fn user_intake(&self, user: Snowflake) -> String {
        format!("{}.ev.user.{user}", self.prefix)
    }

    /// Where auth publishes a server's event (the events stream's intake); republished to
    /// [`Self::guild_events`].
    pub fn guild_intake(&self, guild: Snowflake) -> String {
        format!("{}.ev.guild.{guild}", self.prefix)
    }

    /// Where auth publishes a channel's change (the events stream's intake); republished to
    /// [`Self::channel_events`].
    pub fn channel_events_intake(&self, channel: Snowflake) -> String {
        format!("{}.ev.ch.{channel}.meta", self.prefix)
    }

    /// The subjects the events stream captures: every intake above.
    pub fn events_stream_filter(&self) -> String {
        format!("{}.ev.*.>", self.prefix)
    }

    /// Where the events stream republishes each event: its intake subject without the `ev`
    /// token (`{p}.ev.user.7` to `{p}.user.7`, `{p}.ev.ch.5.meta` to `{p}.ch.5.meta`).
    pub fn events_republish_destination(&self) -> String {
        format!("{}.{{{{wildcard(1)}}}}.>", self.prefix)
    }

    /// The JetStream stream holding, for a short while, what auth tells users, servers and
    /// channels: what lets edges repair what core NATS lost of it.
    pub fn events_stream_name(&self) -> String {
        format!("{}_events", self.prefix)
    }

    /// JetStream's direct get of the events stream.
    pub fn events_direct_get(&self) -> String {
        format!("$JS.API.DIRECT.GET.{}", self.events_stream_name())
    }

    /// JetStream's advisory that the events stream has a new leader.
    pub fn events_leader_elected(&self) -> String {
        format!(
            "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.{}",
            self.events_stream_name()
        )
    }

    /// The JetStream stream holding chat events.
    pub fn chat_stream_name(&self) -> String {
        format!("{}_chat", self.prefix)
    }

    /// JetStream's direct get of the chat stream (the stream allows it): a channel's last event,
    /// or its events from a sequence on, answered by any server holding the stream.
    pub fn chat_direct_get(&self) -> String {
        format!("$JS.API.DIRECT.GET.{}", self.chat_stream_name())
    }

    /// JetStream's advisory that the chat stream has a new leader (in a cluster): republishing
    /// moves to it, and what the old one stored but had not yet republished is never sent live.
    pub fn chat_leader_elected(&self) -> String {
        format!(
            "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.{}",
            self.chat_stream_name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subjects() -> Subjects {
        Subjects::new(Prefix::parse("natter").unwrap())
    }

    #[test]
    fn channel_subjects_share_the_wildcard_an_edge_subscribes_to() {
        let s = subjects();
        let ch = Snowflake::from_u64(42);
        assert_eq!(s.channel_messages(ch), "natter.ch.42.msg");
        assert_eq!(s.channel_typing(ch), "natter.ch.42.typing");
        assert_eq!(s.channel_events(ch), "natter.ch.42.meta");
        assert_eq!(s.channel_all(ch), "natter.ch.42.>");
        assert_eq!(s.chat_stream_filter(), "natter.in.*");
        assert_eq!(s.chat_intake(ch), "natter.in.42");
        assert_eq!(s.guild_events(ch), "natter.guild.42");
        assert_eq!(
            s.chat_republish_destination(),
            "natter.ch.{{wildcard(1)}}.msg"
        );
    }

    #[test]
    fn the_events_stream_republishes_each_intake_to_what_edges_follow() {
        let s = subjects();
        let id = Snowflake::from_u64(42);
        // The server maps `{p}.ev.{kind}.>` to `{p}.{kind}.>`: dropping the `ev` token must give
        // the subject edges subscribe to.
        for (intake, delivered) in [
            (s.user_intake(id), s.user_inbox(id)),
            (s.guild_intake(id), s.guild_events(id)),
            (s.channel_events_intake(id), s.channel_events(id)),
        ] {
            assert_eq!(intake.replacen(".ev.", ".", 1), delivered);
            assert!(intake.starts_with("natter.ev."), "{intake}");
        }
        assert_eq!(s.events_stream_filter(), "natter.ev.*.>");
        assert_eq!(s.events_republish_destination(), "natter.{{wildcard(1)}}.>");
        assert_eq!(s.events_stream_name(), "natter_events");
    }

    #[test]
    fn presence_control_subjects_are_not_user_ids() {
        let s = subjects();
        assert_eq!(s.presence(Snowflake::from_u64(7)), "natter.presence.7");
        for control in [
            s.presence_report(),
            s.presence_heartbeat(),
            s.presence_sync(),
            s.presence_query(),
            s.presence_from_edges(),
        ] {
            let third = control.split('.').nth(2).unwrap();
            assert!(third.parse::<u64>().is_err(), "{control}");
        }
        for from_edge in [
            s.presence_report(),
            s.presence_heartbeat(),
            s.presence_sync(),
        ] {
            let (stem, _) = from_edge.rsplit_once('.').unwrap();
            assert_eq!(format!("{stem}.*"), s.presence_from_edges());
        }
    }

    #[test]
    fn requests_to_auth_share_the_wildcard_auth_subscribes_to() {
        let s = subjects();
        for request in [
            s.auth_state(),
            s.auth_starts(),
            s.auth_visible(),
            s.auth_members(),
            s.auth_guild(),
            s.auth_guild_members(),
            s.auth_audit(),
            s.auth_voice(),
        ] {
            let (stem, _) = request.rsplit_once('.').unwrap();
            assert_eq!(format!("{stem}.*"), s.auth_requests());
        }
    }

    #[test]
    fn prefixes_with_nats_wildcards_or_dots_are_refused() {
        for bad in ["", "a.b", "a*", ">", "A", "a b", &"x".repeat(33)] {
            assert!(Prefix::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Prefix::parse("t_12-ab").is_ok());
    }
}
