//! Reading a delivery without parsing it: the harness must count as fast as the edges deliver
//! (a million frames a second on two cores), and a full JSON parse of every frame cost more than
//! the edge spent sending it.
//!
//! A MESSAGE_CREATE frame, as the edge encodes it, ends `,"s":SEQ,"t":"MESSAGE_CREATE"}`, and
//! its message carries `"channel_id":"ID"` and `"content":"TEXT"` (the harness's content is the
//! sending time). [`message_create`] finds those by searching for the keys: no string value of a
//! frame can hold them unescaped, since a quote inside a JSON string is always `\"`. A frame that
//! is not laid out that way is not refused: the caller parses it in full instead.

use std::sync::LazyLock;

use memchr::memmem::Finder;

/// What the harness needs of a MESSAGE_CREATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created<'a> {
    pub seq: u64,
    pub channel_id: &'a str,
    pub content: &'a str,
}

const HEAD: &[u8] = br#"{"op":0,"#;
const TAIL: &[u8] = br#","t":"MESSAGE_CREATE"}"#;
const SEQ: &[u8] = br#","s":"#;

static CHANNEL: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(r#""channel_id":""#));
static CONTENT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(r#""content":""#));

/// The sequence, channel and content of a MESSAGE_CREATE frame laid out as the edge writes it;
/// `None` for any other frame (or one laid out otherwise: parse it in full).
pub fn message_create(frame: &str) -> Option<Created<'_>> {
    let bytes = frame.as_bytes();
    if !bytes.starts_with(HEAD) {
        return None;
    }
    let head = bytes.strip_suffix(TAIL)?;
    // The digits before the tail, and the key before them (read backwards: no search).
    let digits_at = head.iter().rposition(|b| !b.is_ascii_digit())? + 1;
    if !head[..digits_at].ends_with(SEQ) {
        return None;
    }
    let seq = parse_u64(&head[digits_at..])?;
    let payload = &frame[..digits_at - SEQ.len()];
    let channel_id = string_at(
        payload,
        CHANNEL.find(payload.as_bytes())? + CHANNEL.needle().len(),
    )?;
    let content = string_at(
        payload,
        CONTENT.find(payload.as_bytes())? + CONTENT.needle().len(),
    )?;
    Some(Created {
        seq,
        channel_id,
        content,
    })
}

/// The JSON string starting at `from` (just after its opening quote), when it has no escapes.
fn string_at(text: &str, from: usize) -> Option<&str> {
    let rest = text.get(from..)?;
    let end = memchr::memchr2(b'"', b'\\', rest.as_bytes())?;
    (rest.as_bytes()[end] == b'"').then(|| &rest[..end])
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use proto::Snowflake;
    use proto::api::messages::Message;
    use proto::events::Event;

    use super::*;

    fn frame(content: &str, seq: u64) -> String {
        Event::MessageCreate(Message {
            id: Snowflake::from_u64(121_039_379_757_051_905),
            channel_id: Snowflake::from_u64(121_038_839_656_480_768),
            author_id: Snowflake::from_u64(121_038_676_535_803_904),
            content: content.to_owned(),
            nonce: Some("12:3:0:1764547200000000".to_owned()),
            edited_at: None,
            ..Default::default()
        })
        .encode_dispatch(Some(seq))
    }

    #[test]
    fn a_message_create_as_the_edge_encodes_it_is_read_without_parsing() {
        let text = frame("1764547200123456", 12_346);
        assert_eq!(
            message_create(&text),
            Some(Created {
                seq: 12_346,
                channel_id: "121038839656480768",
                content: "1764547200123456",
            }),
            "{text}"
        );
    }

    #[test]
    fn keys_inside_the_content_are_not_mistaken_for_the_messages_own() {
        let text = frame("channel_id: 1, content: 2", 7);
        let read = message_create(&text).expect("a MESSAGE_CREATE");
        assert_eq!(read.channel_id, "121038839656480768");
        assert_eq!(read.content, "channel_id: 1, content: 2");
        // Quoted, they are escaped: such a frame is left for the full parse, never misread.
        let sly = frame(r#"","channel_id":"1","content":"2"#, 7);
        assert_eq!(message_create(&sly), None, "{sly}");
    }

    #[test]
    fn other_frames_are_left_for_the_full_parse() {
        assert_eq!(message_create(r#"{"op":11}"#), None);
        assert_eq!(message_create(r#"{"op":24,"d":{"nonce":"x"}}"#), None);
        let typing = Event::TypingStart(proto::api::messages::Typing {
            channel_id: Snowflake::from_u64(1),
            user_id: Snowflake::from_u64(2),
            timestamp: 3,
        })
        .encode_dispatch(None);
        assert_eq!(message_create(&typing), None);
        // Laid out in another order: not read here.
        assert_eq!(
            message_create(
                r#"{"op":0,"t":"MESSAGE_CREATE","s":5,"d":{"channel_id":"1","content":"2"}}"#
            ),
            None
        );
    }
}
