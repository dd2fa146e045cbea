//! The client's frames, read off the bytes a socket gives (RFC 6455, 5): masked, possibly in
//! fragments, with pings, pongs and a Close among them.
//!
//! The bytes wait here only while a frame is not yet whole: between a client's frames the
//! reader holds no buffer at all, where a WebSocket library keeps one per socket for the
//! socket's life (tungstenite's was a kilobyte of every idle connection; docs/BENCHMARKS.md,
//! "idle"). Whatever a frame is, reading it never allocates more than the size limit allows:
//! a frame announcing more is refused from its header.

/// What a client sent, whole.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    Text(String),
    Binary,
    Ping,
    Pong,
    /// The client closes: its Close has been answered (unless it answered ours).
    Close,
}

/// Why what a client sent is not WebSocket as a client may speak it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Invalid {
    #[error("a frame uses reserved bits or opcodes")]
    Reserved,
    #[error("a client frame that is not masked")]
    Unmasked,
    #[error("a control frame in fragments or over 125 bytes")]
    Control,
    #[error("a message over the size limit")]
    TooLarge,
    #[error("a continuation with no message begun, or a message begun before the last ended")]
    Fragments,
    #[error("text that is not UTF-8")]
    NotUtf8,
}

/// What the bytes at hand hold.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Message(Incoming),
    /// A frame is not yet whole: at least this many bytes are needed in all.
    More(usize),
}

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
pub(super) const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// The longest header a client frame has: two bytes, eight of length, four of mask.
const MAX_HEADER: usize = 14;

/// Reads a connection's frames from the bytes given to it.
#[derive(Debug)]
pub(crate) struct Reader {
    /// Bytes read and not yet taken as frames; no allocation while empty.
    bytes: Vec<u8>,
    /// How much of `bytes` has been taken.
    taken: usize,
    /// A message arriving in fragments: whether it is text, and its payload so far.
    fragments: Option<(bool, Vec<u8>)>,
    /// The largest message (all its fragments together).
    max_message: usize,
}

/// A frame's header, from the bytes at hand.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// The header's own length.
    len: usize,
    payload: usize,
}

impl Reader {
    pub(crate) fn new(max_message: usize) -> Self {
        Self {
            bytes: Vec::new(),
            taken: 0,
            fragments: None,
            max_message,
        }
    }

    /// Where the next read goes: room for the `need` bytes the frame at hand needs in all, and
    /// at least `at_least` more (what was taken is let go first).
    pub(crate) fn spare(&mut self, need: usize, at_least: usize) -> &mut Vec<u8> {
        if self.taken > 0 {
            self.bytes.drain(..self.taken);
            self.taken = 0;
        }
        self.bytes
            .reserve(need.saturating_sub(self.bytes.len()).max(at_least));
        &mut self.bytes
    }

    /// The next whole message in the bytes at hand, with any answer it needs (a pong, a Close)
    /// put in `answers`; `answer_close` is false once the server has sent its own Close.
    pub(crate) fn next(
        &mut self,
        answers: &mut Vec<u8>,
        answer_close: bool,
    ) -> Result<Next, Invalid> {
        loop {
            let at_hand = &mut self.bytes[self.taken..];
            let Some(header) = parse_header(at_hand, self.max_message)? else {
                return Ok(Next::More(MAX_HEADER));
            };
            let whole = header.len + header.payload;
            if at_hand.len() < whole {
                return Ok(Next::More(whole));
            }
            let payload = &mut at_hand[header.len..whole];
            unmask(payload, header.mask);
            let message = match header.opcode {
                PING => {
                    super::push_header(answers, PONG, payload.len());
                    answers.extend_from_slice(payload);
                    Some(Incoming::Ping)
                }
                PONG => Some(Incoming::Pong),
                CLOSE => {
                    if answer_close {
                        // Its status code echoed, as RFC 6455 (5.5.1) asks; no reason.
                        let code = payload.get(..2).unwrap_or_default();
                        super::push_header(answers, CLOSE, code.len());
                        answers.extend_from_slice(code);
                    }
                    Some(Incoming::Close)
                }
                opcode => data(
                    &mut self.fragments,
                    self.max_message,
                    opcode,
                    header.fin,
                    payload,
                )?,
            };
            self.taken += whole;
            if self.taken == self.bytes.len() {
                // Nothing left between frames: hold no buffer.
                self.bytes = Vec::new();
                self.taken = 0;
            }
            if let Some(message) = message {
                return Ok(Next::Message(message));
            }
        }
    }
}

/// A client frame's header, once its bytes are all at hand.
fn parse_header(bytes: &[u8], max_message: usize) -> Result<Option<Header>, Invalid> {
    let [first, second, ..] = *bytes else {
        return Ok(None);
    };
    let (fin, opcode) = (first & 0x80 != 0, first & 0x0F);
    if first & 0x70 != 0 || !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
        return Err(Invalid::Reserved);
    }
    if second & 0x80 == 0 {
        return Err(Invalid::Unmasked);
    }
    let (payload, len_bytes) = match second & 0x7F {
        126 => (
            bytes
                .get(2..4)
                .map(|b| u64::from(u16::from_be_bytes([b[0], b[1]]))),
            2,
        ),
        127 => (
            bytes
                .get(2..10)
                .map(|b| u64::from_be_bytes(b.try_into().expect("eight bytes"))),
            8,
        ),
        n => (Some(u64::from(n)), 0),
    };
    let Some(payload) = payload else {
        return Ok(None);
    };
    if opcode & 0x8 != 0 && (!fin || payload > 125) {
        return Err(Invalid::Control);
    }
    // The whole message must fit, so a frame alone is held to the limit too.
    let payload = usize::try_from(payload)
        .ok()
        .filter(|&n| n <= max_message)
        .ok_or(Invalid::TooLarge)?;
    let len = 2 + len_bytes + 4;
    let Some(mask) = bytes.get(len - 4..len) else {
        return Ok(None);
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask: mask.try_into().expect("four bytes"),
        len,
        payload,
    }))
}

/// A data frame: the message it ends, if it ends one.
fn data(
    fragments: &mut Option<(bool, Vec<u8>)>,
    max_message: usize,
    opcode: u8,
    fin: bool,
    payload: &[u8],
) -> Result<Option<Incoming>, Invalid> {
    let (text, payload) = match (opcode, fragments.take()) {
        (TEXT | BINARY, None) if fin => (opcode == TEXT, payload.to_vec()),
        (TEXT | BINARY, None) => {
            *fragments = Some((opcode == TEXT, payload.to_vec()));
            return Ok(None);
        }
        (CONTINUATION, Some((text, mut so_far))) => {
            if so_far.len() + payload.len() > max_message {
                return Err(Invalid::TooLarge);
            }
            so_far.extend_from_slice(payload);
            if !fin {
                *fragments = Some((text, so_far));
                return Ok(None);
            }
            (text, so_far)
        }
        _ => return Err(Invalid::Fragments),
    };
    if !text {
        return Ok(Some(Incoming::Binary));
    }
    String::from_utf8(payload)
        .map(|text| Some(Incoming::Text(text)))
        .map_err(|_| Invalid::NotUtf8)
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocket};

    use super::*;

    /// The bytes a client (tungstenite's, masking as clients do) sends for these messages.
    fn client_bytes(messages: Vec<Message>) -> Vec<u8> {
        let mut client = WebSocket::from_raw_socket(Cursor::new(Vec::new()), Role::Client, None);
        for message in messages {
            client.write(message).expect("written");
        }
        client.flush().expect("flushed");
        client.get_ref().get_ref().clone()
    }

    fn fragment(text: &str, opcode: OpCode, fin: bool) -> Message {
        Message::Frame(Frame::message(text.as_bytes().to_vec(), opcode, fin))
    }

    /// Everything read from `bytes` given `step` bytes at a time: the messages, the answers.
    fn read_in_steps(bytes: &[u8], step: usize) -> Result<(Vec<Incoming>, Vec<u8>), Invalid> {
        let mut reader = Reader::new(16 * 1024);
        let (mut messages, mut answers) = (Vec::new(), Vec::new());
        for chunk in bytes.chunks(step) {
            reader.spare(0, chunk.len()).extend_from_slice(chunk);
            while let Next::Message(message) = reader.next(&mut answers, true)? {
                messages.push(message);
            }
        }
        assert!(
            reader.bytes.is_empty() && reader.bytes.capacity() == 0,
            "nothing held after"
        );
        Ok((messages, answers))
    }

    #[test]
    fn messages_read_whole_however_the_bytes_arrive() {
        let long = "é".repeat(40_000 / 2);
        let bytes = client_bytes(vec![
            Message::Text("hello".into()),
            Message::Text("x".repeat(126).into()),
            Message::Text("y".repeat(65_536 / 8).into()),
            fragment("in ", OpCode::Data(Data::Text), false),
            Message::Ping(b"between".to_vec().into()),
            fragment("three ", OpCode::Data(Data::Continue), false),
            fragment("parts", OpCode::Data(Data::Continue), true),
            Message::Binary(vec![1, 2, 3].into()),
            Message::Pong(Vec::new().into()),
        ]);
        let expected = vec![
            Incoming::Text("hello".into()),
            Incoming::Text("x".repeat(126)),
            Incoming::Text("y".repeat(65_536 / 8)),
            Incoming::Ping,
            Incoming::Text("in three parts".into()),
            Incoming::Binary,
            Incoming::Pong,
        ];
        for step in [1, 2, 3, 7, 13, 14, 64, 1000, bytes.len()] {
            let (messages, answers) = read_in_steps(&bytes, step).expect("valid");
            assert_eq!(messages, expected, "{step} bytes at a time");
            // The pong answering the ping, unmasked, with its payload.
            assert_eq!(answers, [&[0x8A, 7][..], b"between"].concat());
        }
        let too_long = client_bytes(vec![Message::Text(long.into())]);
        assert_eq!(read_in_steps(&too_long, 1000), Err(Invalid::TooLarge));
    }

    #[test]
    fn a_close_is_answered_with_its_code_unless_it_answers_ours() {
        let bytes = client_bytes(vec![Message::Close(Some(CloseFrame {
            code: 1000.into(),
            reason: "bye".into(),
        }))]);
        let (messages, answers) = read_in_steps(&bytes, 5).expect("valid");
        assert_eq!(messages, vec![Incoming::Close]);
        assert_eq!(answers, [0x88, 2, 0x03, 0xE8]);

        let mut reader = Reader::new(1024);
        reader.spare(0, bytes.len()).extend_from_slice(&bytes);
        let mut answers = Vec::new();
        assert_eq!(
            reader.next(&mut answers, false),
            Ok(Next::Message(Incoming::Close))
        );
        assert!(
            answers.is_empty(),
            "our own Close was answered: nothing more"
        );
    }

    #[test]
    fn what_a_client_may_not_send_is_refused() {
        let refused = |bytes: &[u8]| {
            let mut reader = Reader::new(1024);
            reader.spare(0, bytes.len()).extend_from_slice(bytes);
            reader.next(&mut Vec::new(), true)
        };
        let masked = |first: u8, payload: &[u8]| {
            let mut bytes = vec![first, 0x80 | payload.len() as u8, 0, 0, 0, 0];
            bytes.extend_from_slice(payload);
            bytes
        };
        assert_eq!(refused(&[0x81, 0x02, b'h', b'i']), Err(Invalid::Unmasked));
        assert_eq!(
            refused(&masked(0xC1, b"hi")),
            Err(Invalid::Reserved),
            "RSV1 (no extensions)"
        );
        assert_eq!(
            refused(&masked(0x83, b"hi")),
            Err(Invalid::Reserved),
            "opcode 3"
        );
        assert_eq!(
            refused(&masked(0x09, b"hi")),
            Err(Invalid::Control),
            "a ping in fragments"
        );
        assert_eq!(
            refused(&masked(0x80, b"hi")),
            Err(Invalid::Fragments),
            "nothing to continue"
        );
        let mut twice = masked(0x01, b"a");
        twice.extend(masked(0x81, b"b"));
        assert_eq!(
            refused(&twice),
            Err(Invalid::Fragments),
            "a message inside a message"
        );
        assert_eq!(refused(&masked(0x81, &[0xFF, 0xFE])), Err(Invalid::NotUtf8));
        // Announcing 2^63 bytes is refused from the header, before any of it is read.
        let huge = [0x81, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(refused(&huge), Err(Invalid::TooLarge));
        // Too few bytes for a header is no error: more are wanted.
        assert_eq!(refused(&[0x81]), Ok(Next::More(MAX_HEADER)));
        assert_eq!(refused(&[0x81, 0xFE, 0x01]), Ok(Next::More(MAX_HEADER)));
        assert_eq!(refused(&masked(0x81, b"hi")[..7]), Ok(Next::More(8)));
    }
}
