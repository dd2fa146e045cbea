//! What a client asks of its session: send, edit and delete messages (answered ACK or ERROR, by
//! nonce), and members of a channel or a server (op 8, answered in CHANNEL_MEMBERS_CHUNKs or
//! GUILD_MEMBERS_CHUNKs).

use std::collections::HashMap;
use std::sync::Arc;

use kit::tokens::AccessClaims;
use proto::Snowflake;
use proto::api::channels::{MAX_MEMBER_IDS, MAX_MEMBERS_PAGE, MembersQuery};
use proto::api::messages::Message;
use proto::gateway::{
    Ack, ChannelMembersChunk, Dispatch, ErrorReply, GuildMembersChunk, MessageDelete, MessageEdit,
    MessageSend, Opcode, RequestChannelMembers, RequestGuildMembers,
};
use proto::permissions::Permissions;

use super::socket::op_frame;
use super::{Session, Step};
use crate::chat::ChatError;
use crate::directory::DirectoryError;

impl Session {
    /// A send: checked here, handed to JetStream at once (sends leave in the order they came),
    /// and answered from the reply lane once JetStream has it, while the session goes on.
    pub(super) async fn send_message(
        &mut self,
        claims: &AccessClaims,
        mut send: MessageSend,
    ) -> Step {
        let nonce = send.nonce.clone();
        if !self.channels.contains(&send.channel_id) {
            return self.reply_error(nonce, &ChatError::UnknownChannel).await;
        }
        if self.closed.contains(&send.channel_id) {
            return self.reply_error(nonce, &ChatError::Closed).await;
        }
        let mut slowmode = 0;
        if let Some(allowed) = self.allowed(send.channel_id) {
            if let Err(e) = allowed.require(Permissions::SEND_MESSAGES, "send messages") {
                return self.reply_error(nonce, &e).await;
            }
            if !send.attachments.is_empty()
                && let Err(e) = allowed.require(Permissions::ATTACH_FILES, "attach files")
            {
                return self.reply_error(nonce, &e).await;
            }
            slowmode = allowed.slowmode;
        }
        send.flags = crate::chat::embed_flags(
            send.flags,
            self.allowed(send.channel_id)
                .map(|allowed| allowed.permissions),
        );
        let rights = self.mention_rights(send.channel_id);
        let guild = self.channel_guilds.get(&send.channel_id).copied();
        let state = &self.state;
        let publishing = match state
            .chat
            .publish(claims.sub, send, slowmode, &rights, guild, &state.archive)
            .await
        {
            Ok(publishing) => publishing,
            Err(e) => return self.reply_error(nonce, &e).await,
        };
        let state = Arc::clone(&self.state);
        self.replies.push(Box::pin(async move {
            match state.chat.acknowledged(publishing).await {
                Ok(message) => op_frame(
                    Opcode::Ack,
                    &Ack {
                        nonce,
                        message: Some(message),
                    },
                ),
                Err(e) => op_frame(Opcode::Error, &error_reply(nonce, &e)),
            }
        }));
        Ok(())
    }

    pub(super) async fn edit_message(&mut self, claims: &AccessClaims, edit: MessageEdit) -> Step {
        let nonce = edit.nonce.clone();
        if !self.channels.contains(&edit.channel_id) {
            return self.reply_error(nonce, &ChatError::UnknownChannel).await;
        }
        if self.closed.contains(&edit.channel_id) {
            return self.reply_error(nonce, &ChatError::Closed).await;
        }
        if let Some(allowed) = self.allowed(edit.channel_id)
            && let Err(e) = allowed.require(Permissions::SEND_MESSAGES, "edit messages")
        {
            return self.reply_error(nonce, &e).await;
        }
        let rights = self.mention_rights(edit.channel_id);
        let guild = self.channel_guilds.get(&edit.channel_id).copied();
        let state = &self.state;
        match state
            .chat
            .edit(claims.sub, edit, &rights, guild, &state.archive)
            .await
        {
            Ok(message) => {
                let message = Some(message);
                self.send_op(Opcode::Ack, &Ack { nonce, message }).await
            }
            Err(e) => self.reply_error(nonce, &e).await,
        }
    }

    pub(super) async fn delete_message(
        &mut self,
        claims: &AccessClaims,
        delete: MessageDelete,
    ) -> Step {
        let MessageDelete {
            channel_id,
            message_id,
            nonce,
        } = delete;
        if !self.channels.contains(&channel_id) {
            return self.reply_error(nonce, &ChatError::UnknownChannel).await;
        }
        let server = self.channel_guilds.get(&channel_id).copied();
        let allowed = self.allowed(channel_id);
        let moderates = match &allowed {
            Some(allowed) => allowed.permissions.has(Permissions::MANAGE_MESSAGES),
            None => self.moderated.contains(&channel_id),
        };
        let timed_out_until = allowed.and_then(|a| a.timed_out_until);
        let state = Arc::clone(&self.state);
        let deleted = state
            .chat
            .delete(
                claims.sub,
                channel_id,
                message_id,
                moderates,
                &state.archive,
            )
            .await;
        match deleted {
            Ok(message) => {
                if let Some(guild) = server
                    && message.author_id != claims.sub
                {
                    record_delete(&state, guild, claims.sub, &message, None).await;
                }
                let message = None;
                self.send_op(Opcode::Ack, &Ack { nonce, message }).await
            }
            // Someone else's message, and a time-out took MANAGE_MESSAGES away: say so.
            Err(ChatError::Forbidden) if timed_out_until.is_some() => {
                let until = timed_out_until.expect("checked");
                self.reply_error(nonce, &ChatError::TimedOut(until)).await
            }
            Err(e) => self.reply_error(nonce, &e).await,
        }
    }

    /// Op 8: members of one of this session's channels, as CHANNEL_MEMBERS_CHUNK dispatches of at
    /// most [`CHUNK`] members, with their presence when asked (as far as the user may see it).
    pub(super) async fn request_members(
        &mut self,
        claims: &AccessClaims,
        request: RequestChannelMembers,
    ) -> Step {
        let RequestChannelMembers {
            channel_id,
            user_ids,
            limit,
            presences,
            nonce,
        } = request;
        if nonce.as_ref().is_some_and(|n| n.chars().count() > 64) {
            return self.reply_error(None, &ChatError::InvalidNonce).await;
        }
        if !self.channels.contains(&channel_id) {
            return self.reply_error(nonce, &ChatError::UnknownChannel).await;
        }
        let query = match (user_ids, limit) {
            (Some(mut ids), None) if ids.len() <= MAX_MEMBER_IDS => {
                ids.sort_unstable();
                ids.dedup();
                MembersQuery::Ids(ids)
            }
            (None, limit) if (1..=MAX_MEMBERS_PAGE).contains(&limit.unwrap_or(100)) => {
                MembersQuery::Page {
                    after: None,
                    limit: limit.unwrap_or(100),
                }
            }
            _ => {
                let why = format!(
                    "give `limit` (1 to {MAX_MEMBERS_PAGE}) or `user_ids` (at most {MAX_MEMBER_IDS}), not both"
                );
                return self
                    .reply_error(nonce, &ChatError::InvalidRequest(why))
                    .await;
            }
        };
        let me = claims.sub;
        let state = Arc::clone(&self.state);
        let members = match state.directory.members(me, channel_id, query.clone()).await {
            Ok(members) => members,
            Err(DirectoryError::NotFound) => {
                return self.reply_error(nonce, &ChatError::UnknownChannel).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot list a channel's members");
                return self.reply_error(nonce, &ChatError::Unavailable).await;
            }
        };
        let parts = chunk_parts(&state, me, &members, |m| m.user.id, &query, presences).await;
        for part in parts {
            let chunk = ChannelMembersChunk {
                channel_id,
                members: part.members.to_vec(),
                chunk_index: part.index,
                chunk_count: part.count,
                not_found: part.not_found,
                presences: part.presences,
                nonce: nonce.clone(),
            };
            self.dispatch(Dispatch::ChannelMembersChunk(chunk)).await?;
        }
        Ok(())
    }

    /// Op 8 with `guild_id`: members of one of this session's servers, as GUILD_MEMBERS_CHUNK
    /// dispatches of at most [`CHUNK`] members, with their presence when asked (as far as the
    /// user may see it). Pages on with `after`.
    pub(super) async fn request_guild_members(
        &mut self,
        claims: &AccessClaims,
        request: RequestGuildMembers,
    ) -> Step {
        let RequestGuildMembers {
            guild_id,
            user_ids,
            limit,
            after,
            presences,
            nonce,
        } = request;
        if nonce.as_ref().is_some_and(|n| n.chars().count() > 64) {
            return self.reply_error(None, &ChatError::InvalidNonce).await;
        }
        if !self.guilds.contains_key(&guild_id) {
            return self.reply_error(nonce, &ChatError::UnknownGuild).await;
        }
        let query = match (user_ids, limit, after) {
            (Some(mut ids), None, None) if ids.len() <= MAX_MEMBER_IDS => {
                ids.sort_unstable();
                ids.dedup();
                MembersQuery::Ids(ids)
            }
            (None, limit, after) if (1..=MAX_MEMBERS_PAGE).contains(&limit.unwrap_or(100)) => {
                MembersQuery::Page {
                    after,
                    limit: limit.unwrap_or(100),
                }
            }
            _ => {
                let why = format!(
                    "give `limit` (1 to {MAX_MEMBERS_PAGE}) and `after`, or `user_ids` (at most {MAX_MEMBER_IDS}), not both"
                );
                return self
                    .reply_error(nonce, &ChatError::InvalidRequest(why))
                    .await;
            }
        };
        let me = claims.sub;
        let state = Arc::clone(&self.state);
        let members = match state
            .directory
            .guild_members(me, guild_id, query.clone())
            .await
        {
            Ok(members) => members,
            Err(DirectoryError::NotFound) => {
                return self.reply_error(nonce, &ChatError::UnknownGuild).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot list a server's members");
                return self.reply_error(nonce, &ChatError::Unavailable).await;
            }
        };
        let parts = chunk_parts(&state, me, &members, |m| m.user.id, &query, presences).await;
        for part in parts {
            let chunk = GuildMembersChunk {
                guild_id,
                members: part.members.to_vec(),
                chunk_index: part.index,
                chunk_count: part.count,
                not_found: part.not_found,
                presences: part.presences,
                nonce: nonce.clone(),
            };
            self.dispatch(Dispatch::GuildMembersChunk(chunk)).await?;
        }
        Ok(())
    }

    pub(super) async fn reply_error(&mut self, nonce: Option<String>, error: &ChatError) -> Step {
        self.send_op(Opcode::Error, &error_reply(nonce, error))
            .await
    }
}

/// The ERROR frame's body answering a request.
fn error_reply(nonce: Option<String>, error: &ChatError) -> ErrorReply {
    ErrorReply {
        nonce,
        code: error.code().to_owned(),
        message: error.to_string(),
    }
}

/// Most members in one CHANNEL_MEMBERS_CHUNK or GUILD_MEMBERS_CHUNK.
const CHUNK: usize = 100;

/// One member chunk's share of an answer to op 8.
struct ChunkPart<'a, M> {
    index: u32,
    count: u32,
    members: &'a [M],
    /// The asked-for ids that are not members: in the first chunk only.
    not_found: Vec<Snowflake>,
    /// The presence of this chunk's members the user may see, when asked for.
    presences: Option<Vec<proto::api::presence::Presence>>,
}

/// The members `query` found for `me`, in chunks of at most [`CHUNK`] (one empty chunk when
/// there are none), as Discord's member chunks carry them: the ids asked for that are not members
/// in the first, and each chunk's presences that `me` may see when `presences` was asked for.
async fn chunk_parts<'a, M>(
    state: &crate::state::EdgeState,
    me: Snowflake,
    members: &'a [M],
    user: impl Fn(&M) -> Snowflake,
    query: &MembersQuery,
    presences: bool,
) -> Vec<ChunkPart<'a, M>> {
    let not_found: Vec<Snowflake> = match query {
        MembersQuery::Ids(ids) => ids
            .iter()
            .filter(|id| !members.iter().any(|m| user(m) == **id))
            .copied()
            .collect(),
        MembersQuery::Page { .. } => Vec::new(),
    };
    let seen = if presences {
        Some(seen_presences(state, me, members.iter().map(&user).collect()).await)
    } else {
        None
    };
    let chunks: Vec<&[M]> = if members.is_empty() {
        vec![&[]]
    } else {
        members.chunks(CHUNK).collect()
    };
    let count = chunks.len() as u32;
    let mut not_found = Some(not_found);
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, members)| ChunkPart {
            index: index as u32,
            count,
            members,
            not_found: not_found.take().unwrap_or_default(),
            presences: seen.as_ref().map(|seen| {
                members
                    .iter()
                    .filter_map(|m| seen.get(&user(m)).cloned())
                    .collect()
            }),
        })
        .collect()
}

/// The presence of those among `ids` whom `me` may see (never their own: a client knows it).
async fn seen_presences(
    state: &crate::state::EdgeState,
    me: Snowflake,
    ids: Vec<Snowflake>,
) -> HashMap<Snowflake, proto::api::presence::Presence> {
    let mut seen = HashMap::new();
    let ids: Vec<Snowflake> = ids.into_iter().filter(|id| *id != me).collect();
    match state.directory.visible(me, ids).await {
        Ok(visible) => {
            for p in state.presence.query(visible).await {
                seen.insert(p.user_id, p.seen_by_others());
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot learn whose presence to send"),
    }
    seen
}

/// Tells auth, for the audit log, that `moderator` deleted someone else's message in a server's
/// channel. A failure is logged: the delete itself stands.
pub(crate) async fn record_delete(
    state: &crate::state::EdgeState,
    guild: Snowflake,
    moderator: Snowflake,
    message: &Message,
    reason: Option<String>,
) {
    let deleted = proto::access::MessageDeleted {
        guild_id: guild,
        channel_id: message.channel_id,
        message_id: message.id,
        user_id: moderator,
        author_id: message.author_id,
        reason,
    };
    if let Err(e) = state.directory.message_deleted(&deleted).await {
        tracing::warn!(error = %e, "cannot record a moderator's delete in the audit log");
    }
}
