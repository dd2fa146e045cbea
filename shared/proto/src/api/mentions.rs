//! Mentions in Discord's syntax: `<@user>` (and `<@!user>`), `<@&role>`, `@everyone` and `@here`,
//! parsed from a message's text by the server (never taken from the client), outside code spans
//! and blocks, as Discord does.
//!
//! What is honoured depends on the author: in a server's channel `@everyone` and `@here` only
//! with MENTION_EVERYONE, a role only when it is mentionable or the author has MENTION_EVERYONE
//! ([`MentionRights`]); in a group channel or DM anyone may mention everyone, as in Discord's
//! group DMs, and there are no roles. A message mentions at most [`MAX_MENTIONS`] people and roles,
//! against mention spam.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Snowflake;
use crate::api::users::User;

/// The most distinct people and roles one message may mention.
pub const MAX_MENTIONS: usize = 20;

/// What a message's text mentions, each id once, in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mentions {
    pub users: Vec<Snowflake>,
    pub roles: Vec<Snowflake>,
    /// `@everyone` or `@here`.
    pub everyone: bool,
}

/// What the author may mention beyond people (the default: nothing more).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MentionRights {
    /// MENTION_EVERYONE in the channel: `@everyone`, `@here` and every role.
    pub everyone: bool,
    /// The server's mentionable roles.
    pub roles: Vec<Snowflake>,
}

impl MentionRights {
    /// In a group channel or DM: everyone may be mentioned by anyone in it (Discord's group DMs
    /// do the same), and there are no roles.
    pub fn outside_servers() -> Self {
        Self {
            everyone: true,
            roles: Vec::new(),
        }
    }
}

impl Mentions {
    /// The mentions of `text` (a message's content), or why there are too many.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut found = Self::default();
        for piece in outside_code(text) {
            found.scan(piece);
        }
        let count = found.users.len() + found.roles.len();
        if count > MAX_MENTIONS {
            return Err(format!(
                "a message may mention at most {MAX_MENTIONS} people and roles; this one mentions \
                 {count}"
            ));
        }
        Ok(found)
    }

    /// What of them the author may mention (`rights`): people always.
    pub fn honoured(mut self, rights: &MentionRights) -> Self {
        self.everyone &= rights.everyone;
        if !rights.everyone {
            self.roles.retain(|role| rights.roles.contains(role));
        }
        self
    }

    fn scan(&mut self, text: &str) {
        let mut rest = text;
        while let Some(at) = rest.find('@') {
            let before = &rest[..at];
            let after = &rest[at + 1..];
            if before.ends_with('<') {
                // `<@id>`, `<@!id>` or `<@&id>`.
                let (role, digits) = match after.as_bytes().first() {
                    Some(b'&') => (true, &after[1..]),
                    Some(b'!') => (false, &after[1..]),
                    _ => (false, after),
                };
                let end = digits
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(digits.len());
                if end > 0
                    && digits[end..].starts_with('>')
                    && let Ok(id) = digits[..end].parse::<u64>()
                {
                    let id = Snowflake::from_u64(id);
                    let list = if role {
                        &mut self.roles
                    } else {
                        &mut self.users
                    };
                    if !list.contains(&id) {
                        list.push(id);
                    }
                }
            } else if after.starts_with("everyone") || after.starts_with("here") {
                self.everyone = true;
            }
            rest = after;
        }
    }
}

/// A person a message mentions, as Discord's `mentions` carry them: a user object (bots read
/// `message.mentions[i].id`). The names are the person's as the edge knew them when it made this
/// copy of the message: a live MESSAGE_CREATE or MESSAGE_UPDATE carries them as of the send or
/// edit, a history page, pins list or search result as they are when read (the store keeps only
/// ids, like authors). `username` is empty for someone the edge could not name (not in the
/// channel, live; an account deleted since).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(from = "MentionWire")]
pub struct MentionedUser {
    pub id: Snowflake,
    pub username: String,
    /// The display name (Discord's `global_name`; Natter's `display_name`).
    pub global_name: Option<String>,
    /// Natter's user object names its avatar by URL (Discord's `avatar` is a hash).
    pub avatar_url: Option<String>,
}

impl MentionedUser {
    /// Fills in the names of the matching profile in `people` (left as they were when there is
    /// none).
    pub fn name_from(&mut self, people: &[User]) {
        if let Some(user) = people.iter().find(|u| u.id == self.id) {
            *self = Self::from(user);
        }
    }
}

impl From<Snowflake> for MentionedUser {
    /// A mention known by id alone (as stored), before the edge names it.
    fn from(id: Snowflake) -> Self {
        Self {
            id,
            ..Self::default()
        }
    }
}

impl From<&User> for MentionedUser {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            global_name: user.display_name.clone(),
            avatar_url: user.avatar_url.clone(),
        }
    }
}

/// What a mention may be on the wire: a user object, or a bare id, as messages carried them
/// before (the chat stream and the events stream still hold such messages; they read as ids).
#[derive(Deserialize)]
#[serde(untagged)]
enum MentionWire {
    Id(Snowflake),
    User {
        id: Snowflake,
        #[serde(default)]
        username: String,
        #[serde(default)]
        global_name: Option<String>,
        #[serde(default)]
        avatar_url: Option<String>,
    },
}

impl From<MentionWire> for MentionedUser {
    fn from(wire: MentionWire) -> Self {
        match wire {
            MentionWire::Id(id) => Self::from(id),
            MentionWire::User {
                id,
                username,
                global_name,
                avatar_url,
            } => Self {
                id,
                username,
                global_name,
                avatar_url,
            },
        }
    }
}

/// The parts of `text` outside code blocks (```` ``` ````) and inline code (`` ` ``).
fn outside_code(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        let Some(start) = rest.find('`') else {
            parts.push(rest);
            return parts;
        };
        parts.push(&rest[..start]);
        let fence = if rest[start..].starts_with("```") {
            "```"
        } else {
            "`"
        };
        let inside = &rest[start + fence.len()..];
        match inside.find(fence) {
            Some(end) => rest = &inside[end + fence.len()..],
            // An unclosed fence is text, as Markdown has it.
            None => {
                parts.push(inside);
                return parts;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> Snowflake {
        Snowflake::from_u64(n)
    }

    #[test]
    fn people_roles_and_everyone_are_found_each_once() {
        let found = Mentions::parse("hi <@12> and <@!12>, <@&7> <@34>: @here, see <@&7>").unwrap();
        assert_eq!(found.users, [id(12), id(34)]);
        assert_eq!(found.roles, [id(7)]);
        assert!(found.everyone);
        assert!(Mentions::parse("@everyone").unwrap().everyone);
    }

    #[test]
    fn what_only_looks_like_a_mention_is_text() {
        for text in [
            "<@>",
            "<@abc>",
            "<@12",
            "@ 12",
            "<@&>",
            "mail ann@example.com",
            "<@-1>",
        ] {
            let found = Mentions::parse(text).unwrap();
            assert_eq!(found, Mentions::default(), "{text}");
        }
    }

    #[test]
    fn code_spans_and_blocks_mention_nobody() {
        let found =
            Mentions::parse("`<@1>` ```\n@everyone <@&2>\n``` <@3> `unclosed <@4>").unwrap();
        assert_eq!(found.users, [id(3), id(4)]);
        assert!(found.roles.is_empty());
        assert!(!found.everyone);
    }

    #[test]
    fn everyone_and_roles_need_the_right_and_people_do_not() {
        let found = Mentions::parse("<@1> <@&2> <@&3> @everyone").unwrap();
        let none = found.clone().honoured(&MentionRights::default());
        assert_eq!(
            (none.users.as_slice(), none.roles.as_slice(), none.everyone),
            (&[id(1)][..], &[][..], false)
        );
        let mentionable = MentionRights {
            everyone: false,
            roles: vec![id(3)],
        };
        assert_eq!(found.clone().honoured(&mentionable).roles, [id(3)]);
        let all = found.honoured(&MentionRights {
            everyone: true,
            roles: Vec::new(),
        });
        assert_eq!((all.roles.len(), all.everyone), (2, true));
    }

    #[test]
    fn a_message_mentions_at_most_twenty_people_and_roles() {
        let twenty: String = (1..=20).map(|n| format!("<@{n}> ")).collect();
        assert!(Mentions::parse(&twenty).is_ok());
        let err = Mentions::parse(&format!("{twenty}<@&99>")).unwrap_err();
        assert!(err.contains("at most 20"), "{err}");
        // The same person twenty-one times is one mention.
        assert!(Mentions::parse(&"<@5> ".repeat(21)).is_ok());
    }

    #[test]
    fn a_message_mentions_user_objects_and_still_reads_the_ids_it_carried_before() {
        use crate::api::messages::Message;
        let old = r#"{"id": "9", "channel_id": "8", "author_id": "7", "content": "<@12>",
                      "mentions": ["12"]}"#;
        let message: Message = serde_json::from_str(old).unwrap();
        assert_eq!(message.mentions, [MentionedUser::from(id(12))]);
        assert!(message.mentions_user(id(12), &[]));
        let mut named = message.clone();
        named.mentions[0].username = "ann".to_owned();
        let wire = serde_json::to_value(&named).unwrap();
        assert_eq!(
            wire["mentions"],
            serde_json::json!([{"id": "12", "username": "ann", "global_name": null,
                                "avatar_url": null}])
        );
        let back: Message = serde_json::from_value(wire).unwrap();
        assert_eq!(back, named);
        let numeric: Message = serde_json::from_str(
            r#"{"id": "9", "channel_id": "8", "author_id": "7",
                                     "content": "", "mentions": [12]}"#,
        )
        .unwrap();
        assert_eq!(numeric.mentions[0].id, id(12));
    }
}
