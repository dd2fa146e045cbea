//! Messages: what a send carries, what is stored and delivered, and the rules for content.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::mentions::MentionedUser;
use super::text::{self, Kind};
use crate::Snowflake;

/// A message as stored and delivered. Authors are ids: names and avatars are looked up when shown,
/// so a changed profile shows on every old message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: Snowflake,
    pub channel_id: Snowflake,
    pub author_id: Snowflake,
    /// Empty in a system message (its `type` says what happened).
    pub content: String,
    /// Discord's message type: 0 (left out) for a person's message, 6
    /// ([`MessageType::CHANNEL_PINNED_MESSAGE`]) for "ann pinned a message", whose author is who
    /// pinned and whose `message_reference` is the message pinned.
    #[serde(
        rename = "type",
        default,
        skip_serializing_if = "MessageType::is_default"
    )]
    #[schema(value_type = u8)]
    pub kind: MessageType,
    /// The sender's nonce, echoed so its client can match the message to its pending copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Unix milliseconds of the last edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<u64>,
    /// A reply: the message of the same channel it answers (Discord's `message_reference`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_reference: Option<MessageReference>,
    /// A reply's preview of the message it answers, as it was when the reply was sent. Absent
    /// on a reply whose original has been deleted since (the client shows "original message was
    /// deleted"), as Discord's `referenced_message` is null then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referenced_message: Option<ReferencedMessage>,
    /// The people the text mentions (`<@id>`), as the server parsed it (outside code): Discord's
    /// user objects, named as [`MentionedUser`] says. Messages of before read as ids still.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<MentionedUser>,
    /// The roles it mentions (`<@&id>`) that the author may mention: mentionable ones, or any
    /// with MENTION_EVERYONE.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mention_roles: Vec<Snowflake>,
    /// `@everyone` or `@here`: by an author with MENTION_EVERYONE in a server's channel, by
    /// anyone in a group channel or DM.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mention_everyone: bool,
    /// Reactions, one per emoji (in the store's order of emoji): how many, and whether the
    /// reader is among them. Only history pages carry them (they are the reader's view); live,
    /// clients count MESSAGE_REACTION_ADD and MESSAGE_REACTION_REMOVE.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<super::reactions::Reaction>,
    /// Files (Discord's `attachments`), in the order the sender listed them. Their URLs are
    /// signed and expire; every copy of the message a client receives carries fresh ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<super::attachments::Attachment>,
    /// Previews of the links in its text (Discord's `embeds`), added by media after it was sent
    /// (a MESSAGE_UPDATE), at most five; none while `flags` has [`Message::SUPPRESS_EMBEDS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub embeds: Vec<super::embeds::Embed>,
    /// Discord's message flags; Natter sets only [`Message::SUPPRESS_EMBEDS`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags: u64,
    /// A call's system message ([`MessageType::CALL`]): who joined and when it ended (boxed:
    /// most messages have none, and every event holding a message stays small).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<Box<MessageCall>>,
}

/// What a call's system message says (Discord's message `call` object): written by the server
/// when a call in a DM or group channel ends, its author the person who started it. Only the
/// caller among `participants`: nobody answered ("Missed call from ann").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MessageCall {
    /// Everyone who was in the call, the caller first.
    pub participants: Vec<Snowflake>,
    /// When the call ended, Unix milliseconds.
    pub ended_timestamp: u64,
    /// When it began, Unix milliseconds (Natter's addition: Discord writes the message when a
    /// call begins and reads its start from the message's id; Natter writes it once, when the
    /// call ends, so history and live delivery agree on its place).
    pub started_timestamp: u64,
}

impl MessageCall {
    /// Nobody but the caller joined.
    pub fn missed(&self) -> bool {
        self.participants.len() <= 1
    }
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Message {
    /// The ids of the people it mentions (what notify, search and unread counts need).
    pub fn mentioned_ids(&self) -> Vec<Snowflake> {
        self.mentions.iter().map(|m| m.id).collect()
    }

    /// Names its mentions from `people` (current profiles), leaving those not among them as
    /// they were.
    pub fn name_mentions(&mut self, people: &[crate::api::users::User]) {
        for mention in &mut self.mentions {
            mention.name_from(people);
        }
    }

    /// Discord's flag: the message shows no link previews (its author removed them, or could
    /// not embed links where it was sent).
    pub const SUPPRESS_EMBEDS: u64 = 1 << 2;

    /// Whether its links get no previews.
    pub fn embeds_suppressed(&self) -> bool {
        self.flags & Self::SUPPRESS_EMBEDS != 0
    }

    /// Whether the message mentions `user`, who has `roles` in the channel's server: by name,
    /// by one of their roles, or everyone. Nobody's own message mentions them.
    pub fn mentions_user(&self, user: Snowflake, roles: &[Snowflake]) -> bool {
        self.author_id != user
            && (self.mention_everyone
                || self.mentions.iter().any(|m| m.id == user)
                || self.mention_roles.iter().any(|r| roles.contains(r)))
    }
}

/// Discord's message types, those Natter makes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageType(pub u8);

impl MessageType {
    /// A person's message (a reply too: Discord's 19 is not used).
    pub const DEFAULT: Self = Self(0);
    /// A system message: a call in a DM or group channel ended (its `call` says who was in it),
    /// or nobody answered it.
    pub const CALL: Self = Self(3);
    /// A system message: someone pinned the message its `message_reference` names.
    pub const CHANNEL_PINNED_MESSAGE: Self = Self(6);

    pub fn is_default(&self) -> bool {
        *self == Self::DEFAULT
    }

    /// A system message, written by the server (it cannot be edited, pinned or replied to).
    pub fn is_system(self) -> bool {
        self != Self::DEFAULT
    }
}

/// The message a reply answers: in the same channel (`channel_id` may be left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MessageReference {
    pub message_id: Snowflake,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Snowflake>,
}

/// A small preview of the message a reply answers: its author and the start of its first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReferencedMessage {
    pub id: Snowflake,
    pub author_id: Snowflake,
    /// The original's first line, cut to [`ReferencedMessage::MAX_CHARS`] characters (an
    /// ellipsis marks a cut).
    pub content: String,
}

impl ReferencedMessage {
    pub const MAX_CHARS: usize = 100;

    /// The preview of `original`.
    pub fn of(original: &Message) -> Self {
        let line = original
            .content
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default();
        let content = if line.chars().count() > Self::MAX_CHARS {
            let mut cut: String = line.chars().take(Self::MAX_CHARS - 1).collect();
            cut.push('…');
            cut
        } else {
            line.to_owned()
        };
        Self {
            id: original.id,
            author_id: original.author_id,
            content,
        }
    }
}

/// `GET /api/v1/channels/{id}/messages` on an edge: a page of history, newest first, with the
/// current profile of every author on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryPage {
    pub messages: Vec<Message>,
    pub authors: Vec<crate::api::users::User>,
}

/// The most messages one history page holds.
pub const MAX_PAGE: usize = 100;

/// Which messages a history page holds, relative to a message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The newest messages.
    Latest,
    /// Messages older than the id.
    Before(Snowflake),
    /// Messages newer than the id: the ones right after it.
    After(Snowflake),
    /// The id itself (if it exists) and the messages on both sides of it.
    Around(Snowflake),
}

/// `GET /api/v1/channels/{id}/messages` on an edge: the query string, as sent. At most one of
/// `before`, `after` and `around` (a message id); `limit` 1 to 100, default 50.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The messages older than this message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The messages right after this message id (still listed newest first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// This message id, half a page older and the rest newer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub around: Option<String>,
    /// 1 to 100, default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

impl HistoryQuery {
    /// Which page, and how long: at most one anchor, `limit` 1 to 100 (default 50).
    pub fn parse(&self) -> Result<(Page, usize), String> {
        let anchor = |name: &str, raw: &str| {
            raw.parse::<Snowflake>()
                .map_err(|_| format!("`{name}` must be a message id"))
        };
        let page = match (&self.before, &self.after, &self.around) {
            (None, None, None) => Page::Latest,
            (Some(id), None, None) => Page::Before(anchor("before", id)?),
            (None, Some(id), None) => Page::After(anchor("after", id)?),
            (None, None, Some(id)) => Page::Around(anchor("around", id)?),
            _ => return Err("give at most one of `before`, `after` and `around`".to_owned()),
        };
        let limit = match &self.limit {
            None => 50,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => return Err(format!("`limit` must be a number from 1 to {MAX_PAGE}")),
            },
        };
        Ok((page, limit))
    }
}

/// `POST /api/v1/channels/{id}/messages` on an edge: a message, as a socket's op 20 sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostMessageRequest {
    pub content: String,
    /// At most 64 characters; a retried post with the same nonce is stored once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// A reply: the message of this channel it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_reference: Option<MessageReference>,
    /// Files uploaded to media for this message (at most 10); `content` may then be empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<super::attachments::AttachmentRef>,
    /// [`Message::SUPPRESS_EMBEDS`] to send it without link previews; other bits are ignored.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags: u64,
}

/// `PATCH /api/v1/channels/{id}/messages/{message_id}` on an edge: new text (the author's), or
/// `flags` with [`Message::SUPPRESS_EMBEDS`] to remove its link previews for everyone (the
/// author, or a moderator), or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessageRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<u64>,
}

/// Someone is typing in a channel (never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Typing {
    pub channel_id: Snowflake,
    pub user_id: Snowflake,
    /// Unix seconds.
    pub timestamp: u64,
}

/// Message text: 1 to 4,000 characters, kept exactly as sent. Any script, emoji sequence, line
/// break or tab, and the formatting characters real text carries; it must show something, may not
/// hold control characters or explicit bidi formatting, and may not stack more than five
/// combining marks on one character (see `api::text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent(String);

impl MessageContent {
    pub const MAX_CHARS: usize = 4_000;

    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("a message cannot be empty".to_owned());
        }
        let chars = s.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(format!(
                "a message is at most {} characters; this one has {chars}",
                Self::MAX_CHARS
            ));
        }
        text::check(s, Kind::Message).map_err(|rule| format!("a message {rule}"))?;
        Ok(Self(s.to_owned()))
    }
}

impl From<MessageContent> for String {
    fn from(content: MessageContent) -> Self {
        content.0
    }
}

/// A client's nonce for a send: at most 64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce(String);

impl Nonce {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.chars().count() > Self::MAX_CHARS || s.chars().any(char::is_control) {
            return Err(format!(
                "a nonce is 1 to {} characters without control characters",
                Self::MAX_CHARS
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_empty_messages_are_refused() {
        for blank in ["", " ", "\n\t "] {
            assert!(MessageContent::parse(blank).is_err(), "{blank:?}");
        }
    }

    #[test]
    fn a_message_of_only_invisible_or_blank_characters_is_refused() {
        for blank in [
            "\u{200B}",
            "\u{200B}\u{200B}\u{200D}",
            "\u{2800}",
            "\u{3164}",
            "\u{FFFC}",
            "\u{FEFF} \u{00A0}",
            "\u{2060}\n\u{180E}",
        ] {
            let err = MessageContent::parse(blank).unwrap_err();
            assert_eq!(err, "a message must contain something visible", "{blank:?}");
        }
    }

    #[test]
    fn one_question_mark_or_one_emoji_is_a_message() {
        for ok in ["?", "👍", "…", "+1", "¯\\_(ツ)_/¯", "😀", "🇫🇷"] {
            assert!(MessageContent::parse(ok).is_ok(), "{ok:?} refused");
        }
    }

    #[test]
    fn a_message_may_mix_scripts_emoji_sequences_and_formatting_characters() {
        for ok in [
            "Привет, hello, こんにちは, مرحبا, नमस्ते, γεια",
            "p\u{430}ypal is spelled with a Cyrillic a here",
            "family: 👩\u{200D}👩\u{200D}👧\u{200D}👦 and 👍🏿",
            "ខ្ញុំ\u{200B}ស្រលាញ់\u{200B}អ្នក",
            "שלום\u{200F}!",
            "fn main() {\n\tprintln!(\"hi\");\r\n}",
            "\u{2800}⣿⣿\u{2800}\n⣿\u{2800}⣿",
            "Bereshit: בְּרֵאשִׁ֖ית",
        ] {
            assert!(MessageContent::parse(ok).is_ok(), "{ok:?} refused");
        }
    }

    #[test]
    fn a_message_kept_exactly_as_sent() {
        let sent = "  e\u{301}  ";
        assert_eq!(String::from(MessageContent::parse(sent).unwrap()), sent);
    }

    #[test]
    fn a_stack_of_combining_marks_is_refused_in_a_message() {
        let zalgo = format!("hello a{}", "\u{591}".repeat(30));
        let err = MessageContent::parse(&zalgo).unwrap_err();
        assert!(err.contains("combining marks"), "{err}");
        assert!(MessageContent::parse(&format!("a{}", "\u{FE0F}".repeat(30))).is_err());
    }

    #[test]
    fn control_characters_and_bidi_overrides_are_refused_in_a_message() {
        for bad in [
            "bell\u{7}",
            "see \u{202E}gnp.exe",
            "\u{2066}x\u{2069}",
            "a\u{2028}b",
        ] {
            assert!(MessageContent::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn four_thousand_characters_are_allowed_and_one_more_is_not() {
        // Characters, not bytes: 4,000 emoji are 16,000 bytes and still one message.
        assert!(MessageContent::parse(&"😀".repeat(4_000)).is_ok());
        assert!(MessageContent::parse(&"a".repeat(4_001)).is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn any_text_is_either_kept_exactly_or_refused_with_a_reason(s in "\\PC{0,200}") {
                match MessageContent::parse(&s) {
                    Ok(content) => prop_assert_eq!(String::from(content), s),
                    Err(reason) => prop_assert!(reason.starts_with("a message ")),
                }
            }

            #[test]
            fn a_letter_under_more_than_five_marks_is_refused_whatever_the_marks(
                base in "[a-zA-Zа-яא-ת]",
                marks in proptest::collection::vec(
                    proptest::sample::select(
                        ('\u{300}'..='\u{36F}').chain('\u{591}'..='\u{5BD}').collect::<Vec<_>>()
                    ),
                    6..40,
                ),
            ) {
                let text: String = base.chars().chain(marks).collect();
                prop_assert!(MessageContent::parse(&text).is_err());
            }
        }
    }

    #[test]
    fn a_replys_preview_is_the_first_line_cut_short() {
        let original = |content: &str| Message {
            id: Snowflake::from_u64(1),
            author_id: Snowflake::from_u64(2),
            content: content.to_owned(),
            ..Message::default()
        };
        let preview = ReferencedMessage::of(&original("\n  hello there  \nsecond line"));
        assert_eq!(preview.content, "hello there");
        assert_eq!(preview.author_id, Snowflake::from_u64(2));
        let long = ReferencedMessage::of(&original(&"é".repeat(300)));
        assert_eq!(long.content.chars().count(), ReferencedMessage::MAX_CHARS);
        assert!(long.content.ends_with('…'));
    }

    #[test]
    fn nonces_are_short_printable_strings() {
        assert!(Nonce::parse("n-1").is_ok());
        assert!(Nonce::parse(&"x".repeat(64)).is_ok());
        assert!(Nonce::parse(&"x".repeat(65)).is_err());
        assert!(Nonce::parse("").is_err());
        assert!(Nonce::parse("a\nb").is_err());
    }

    #[test]
    fn the_nonce_and_edit_time_are_left_out_of_json_when_absent() {
        let message = Message {
            id: Snowflake::from_u64(1),
            channel_id: Snowflake::from_u64(2),
            author_id: Snowflake::from_u64(3),
            content: "hi".into(),
            nonce: None,
            edited_at: None,
            ..Message::default()
        };
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            serde_json::json!({"id": "1", "channel_id": "2", "author_id": "3", "content": "hi"})
        );
    }
}
