//! The CQL schema and the layout rules every query shares: which time bucket a message lives in,
//! and the write timestamps that let the store keep the largest id without a read.

use proto::Snowflake;
use proto::snowflake::NATTER_EPOCH_MS;

use crate::cql::Migration;

/// The CQL schema, in order. A new version is a new file and entry; applied ones never change.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "messages",
        cql: include_str!("../schema/0001_messages.cql"),
    },
    Migration {
        version: 2,
        name: "read_state_and_deletions",
        cql: include_str!("../schema/0002_read_state_and_deletions.cql"),
    },
    Migration {
        version: 3,
        name: "stream_watermarks",
        cql: include_str!("../schema/0003_stream_watermarks.cql"),
    },
    Migration {
        version: 4,
        name: "conversation",
        cql: include_str!("../schema/0004_conversation.cql"),
    },
    Migration {
        version: 5,
        name: "attachments",
        cql: include_str!("../schema/0005_attachments.cql"),
    },
    Migration {
        version: 6,
        name: "pins_and_mentions",
        cql: include_str!("../schema/0006_pins_and_mentions.cql"),
    },
    Migration {
        version: 7,
        name: "embeds",
        cql: include_str!("../schema/0007_embeds.cql"),
    },
    Migration {
        version: 8,
        name: "inbox",
        cql: include_str!("../schema/0008_inbox.cql"),
    },
    Migration {
        version: 9,
        name: "speculative_reads",
        cql: include_str!("../schema/0009_speculative_reads.cql"),
    },
    Migration {
        version: 10,
        name: "inbox_by_message",
        cql: include_str!("../schema/0010_inbox_by_message.cql"),
    },
    Migration {
        version: 11,
        name: "calls",
        cql: include_str!("../schema/0011_calls.cql"),
    },
    Migration {
        version: 12,
        name: "inbox_edits",
        cql: include_str!("../schema/0012_inbox_edits.cql"),
    },
];

/// Ten days of message ids per partition, as Discord chose: big enough that a busy channel's
/// recent history is one partition read, small enough that no partition grows without bound.
pub const BUCKET_MS: u64 = 10 * 24 * 60 * 60 * 1000;

/// The bucket a message id falls in.
pub fn bucket_of(id: Snowflake) -> i32 {
    let ms = id.unix_ms().saturating_sub(NATTER_EPOCH_MS);
    i32::try_from(ms / BUCKET_MS).unwrap_or(i32::MAX)
}

/// A write timestamp (microseconds) that grows with the message id: the id's millisecond and,
/// below it, its worker and sequence scaled into the thousand microseconds of that millisecond.
/// Ties (two ids in the same microsecond slot) go to the larger value, which CQL picks on equal
/// timestamps, so the largest id always wins.
pub fn id_timestamp(id: Snowflake) -> i64 {
    let low = id.get() & ((1 << 22) - 1);
    let micros = id.unix_ms() * 1000 + ((low * 1000) >> 22);
    i64::try_from(micros).unwrap_or(i64::MAX)
}

/// A message's primary key: channel, bucket, id.
pub(crate) fn key_of(channel: Snowflake, id: Snowflake) -> (i64, i32, i64) {
    (channel.as_i64(), bucket_of(id), id.as_i64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ten_days_of_ids() {
        let start = Snowflake::first_at(NATTER_EPOCH_MS);
        assert_eq!(bucket_of(start), 0);
        assert_eq!(
            bucket_of(Snowflake::first_at(NATTER_EPOCH_MS + BUCKET_MS - 1)),
            0
        );
        assert_eq!(
            bucket_of(Snowflake::first_at(NATTER_EPOCH_MS + BUCKET_MS)),
            1
        );
        assert_eq!(
            bucket_of(Snowflake::first_at(NATTER_EPOCH_MS + 25 * BUCKET_MS + 7)),
            25
        );
    }

    #[test]
    fn id_timestamps_never_decrease_as_ids_grow() {
        let ms = NATTER_EPOCH_MS + 123_456_789;
        let mut previous = i64::MIN;
        for (worker, sequence) in [(0, 0), (0, 1), (0, 4095), (1, 0), (512, 7), (1023, 4095)] {
            let at = id_timestamp(Snowflake::from_parts(ms, worker, sequence));
            assert!(at >= previous);
            assert!(at >= (ms * 1000) as i64 && at < ((ms + 1) * 1000) as i64);
            previous = at;
        }
        assert!(id_timestamp(Snowflake::from_parts(ms + 1, 0, 0)) > previous);
    }
}
