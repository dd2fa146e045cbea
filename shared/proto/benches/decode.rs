//! What decoding costs where every message passes: a client's MESSAGE_SEND frame on the edge,
//! and a MESSAGE_CREATE event from the chat stream in the persister, notify and search.
//!
//!     cargo bench -p proto --bench decode
//!
//! Not a test: it prints nanoseconds per decode for docs/BENCHMARKS.md. Run it on an idle
//! machine; each figure is the best of five rounds.
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use proto::Snowflake;
use proto::api::messages::Message;
use proto::events::Event;
use proto::gateway::ClientFrame;

const ROUNDS: usize = 5;
const PER_ROUND: u32 = 200_000;

fn best(mut decode: impl FnMut()) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..PER_ROUND {
                decode();
            }
            start.elapsed() / PER_ROUND
        })
        .min()
        .expect("at least one round")
}

fn main() {
    let send = r#"{"op":20,"d":{"channel_id":"1193092427112075264","content":"a message of about a hundred bytes, as the load harness sends: 0123456789abcdef","nonce":"17"}}"#;
    let event = serde_json::to_vec(&Event::MessageCreate(Message {
        id: Snowflake::from_u64(1_193_094_531_072_065_536),
        channel_id: Snowflake::from_u64(1_193_092_427_112_075_264),
        author_id: Snowflake::from_u64(1_193_092_410_104_049_664),
        content: "a message of about a hundred bytes, as the load harness sends: 0123456789abcdef"
            .into(),
        nonce: Some("17".into()),
        ..Message::default()
    }))
    .expect("an event serialises");
    let id = br#""1193094531072065536""#;

    let figures = [
        (
            "a client's MESSAGE_SEND frame (ClientFrame::decode)",
            best(|| {
                black_box(ClientFrame::decode(black_box(send)).expect("a send decodes"));
            }),
        ),
        (
            "a MESSAGE_CREATE event from the stream (Event)",
            best(|| {
                black_box(serde_json::from_slice::<Event>(black_box(&event)).expect("decodes"));
            }),
        ),
        (
            "one id (Snowflake) from its JSON string",
            best(|| {
                black_box(serde_json::from_slice::<Snowflake>(black_box(id)).expect("decodes"));
            }),
        ),
    ];
    for (what, took) in figures {
        println!("{:>8} ns  {what}", took.as_nanos());
    }
}
