//! Naming the people a message mentions: the text says `<@id>`, and Discord's `mentions` are
//! user objects, so the edge looks the ids up when it makes a message others receive live (a
//! send, an edit, an update of its files or flags). The store keeps ids only; history pages,
//! pins and search results name them as they are when read (`routes::messages::users_in`).

use proto::Snowflake;
use proto::api::channels::MembersQuery;
use proto::api::messages::Message;
use proto::api::users::User;

use super::Chat;

impl Chat {
    /// Names `message`'s mentions with the profiles of the members among them (of `guild`, the
    /// channel's server, or else of the channel), as `asker` (its author, a member) may read
    /// them: one question to auth over NATS, none for a message that mentions nobody. Someone
    /// not a member, or every one of them when auth does not answer (or, for a server's
    /// channel, `guild` is not known), stays an id with an empty `username`: the message still
    /// goes.
    pub(crate) async fn name_mentions(
        &self,
        asker: Snowflake,
        guild: Option<Snowflake>,
        message: &mut Message,
    ) {
        if message.mentions.is_empty() {
            return;
        }
        let query = MembersQuery::Ids(message.mentioned_ids());
        let people: Result<Vec<User>, _> = match guild {
            Some(guild) => self
                .directory
                .guild_members(asker, guild, query)
                .await
                .map(|members| members.into_iter().map(|m| m.user).collect()),
            None => self
                .directory
                .members(asker, message.channel_id, query)
                .await
                .map(|members| members.into_iter().map(|m| m.user).collect()),
        };
        match people {
            Ok(people) => message.name_mentions(&people),
            Err(e) => tracing::debug!(error = %e, "cannot name a message's mentions"),
        }
    }
}
