//! The search scenario's messages: words from a fixed vocabulary, drawn the same way for the
//! backlog and for the queries, and the backlog put straight into the chat stream as edges put
//! messages there (as `drain` does: the question is the index's side, not the sockets').

use std::time::Instant;

use anyhow::Context;
use async_nats::jetstream;
use futures::StreamExt;
use proto::api::messages::Message;
use proto::subjects::Subjects;
use proto::{Snowflake, SnowflakeGenerator};

/// Syllables of the vocabulary: every pair is a word, 1,024 words ("bako", "bami", …).
const SYLLABLES: [&str; 32] = [
    "ba", "ko", "mi", "tu", "ler", "san", "dor", "vi", "pe", "ral", "gon", "fi", "mu", "tes", "lo",
    "ny", "qua", "zen", "ri", "ho", "kel", "ma", "sto", "vu", "dra", "nel", "pi", "gra", "so",
    "bek", "jun", "wa",
];

/// Words in the vocabulary.
pub const WORDS: usize = SYLLABLES.len() * SYLLABLES.len();

/// Words per message: 6 to 10.
const MIN_WORDS: u64 = 6;
const MORE_WORDS: u64 = 5;

/// A small deterministic generator (SplitMix64): the same run makes the same messages.
pub struct Draw(u64);

impl Draw {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn number(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A word of the vocabulary, the first ones more often (index = WORDS x u², u uniform): a
    /// few words are common, most are rare, as in people's messages.
    pub fn word(&mut self) -> String {
        let u = (self.number() >> 11) as f64 / (1u64 << 53) as f64;
        let index = ((WORDS as f64) * u * u) as usize % WORDS;
        format!(
            "{}{}",
            SYLLABLES[index / SYLLABLES.len()],
            SYLLABLES[index % SYLLABLES.len()]
        )
    }

    /// `n` words separated by spaces.
    pub fn words(&mut self, n: usize) -> String {
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }

    /// A message's text: 6 to 10 words.
    pub fn text(&mut self) -> String {
        let n = MIN_WORDS + self.number() % MORE_WORDS;
        self.words(n as usize)
    }
}

/// What publishing the backlog took.
pub struct Published {
    pub seconds: f64,
    /// The chat stream's last sequence once all were published.
    pub last_sequence: u64,
}

/// Publishes `count` messages, spread over `channels` and `authors` in turn, into the chat
/// stream (pipelined: 1,024 acknowledgements awaited at once). The last one also holds `last_word`.
pub async fn publish(
    js: &jetstream::Context,
    subjects: &Subjects,
    channels: &[Snowflake],
    authors: &[Snowflake],
    count: usize,
    last_word: &str,
) -> anyhow::Result<Published> {
    let ids = SnowflakeGenerator::new(1022).expect("a worker id");
    let started = Instant::now();
    let mut acks = futures::stream::iter((0..count).map(|i| {
        let mut draw = Draw::new(i as u64);
        let mut content = draw.text();
        if i + 1 == count {
            content = format!("{content} {last_word}");
        }
        let message = Message {
            id: ids.next_id(),
            channel_id: channels[i % channels.len()],
            author_id: authors[i % authors.len()],
            content,
            ..Default::default()
        };
        crate::drain::publish(js, subjects, message)
    }))
    .buffer_unordered(1024);
    let mut done = 0usize;
    while let Some(ack) = acks.next().await {
        ack.context("JetStream did not take a message")?;
        done += 1;
        if done.is_multiple_of(100_000) {
            println!("search: {done} of {count} published");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut stream = js
        .get_stream(subjects.chat_stream_name())
        .await
        .context("the chat stream")?;
    let last_sequence = stream.info().await?.state.last_sequence;
    Ok(Published {
        seconds,
        last_sequence,
    })
}
