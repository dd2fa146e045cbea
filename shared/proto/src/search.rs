//! What an edge asks the search service over NATS (`{p}.search.{partition}`), and how channels
//! are split among search processes.
//!
//! The index is split into partitions by channel: the chat stream's subjects name the channel and
//! nothing else (`{p}.in.{channel}`), so the channel is the one key every event carries, and a
//! server's channels spread over the partitions. The edge knows which channels the caller may
//! read, groups them by partition ([`partition_of`]) and asks each partition that holds any of
//! them, naming them: the index never answers from a channel the edge did not name.

use serde::{Deserialize, Serialize};

use crate::Snowflake;
use crate::api::search::SearchFilter;

/// The most channels one search names (a server's channels are capped well below this).
pub const MAX_CHANNELS: usize = 1_000;

/// The partition (of `partitions`) that indexes `channel`: a fixed mix of its id, so every
/// process and every edge agree without asking anyone.
pub fn partition_of(channel: Snowflake, partitions: u32) -> u32 {
    // SplitMix64's finaliser: ids made in the same millisecond by one worker differ only in their
    // low bits, and a plain modulo would put a burst of new channels in one partition.
    let mut x = channel.get();
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    u32::try_from(x % u64::from(partitions.max(1))).unwrap_or(0)
}

/// `{p}.search.{partition}`: the messages of `channels` (all in that partition) that match
/// `filter`, newest first: the first `filter.offset + filter.limit` of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchRequest {
    pub channels: Vec<Snowflake>,
    /// A server's search: only messages indexed as that server's (every one of `channels` is
    /// its channel). Left out for a DM's or group channel's search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guild_id: Option<Snowflake>,
    pub filter: SearchFilter,
}

/// One message found: where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    pub channel_id: Snowflake,
    pub id: Snowflake,
}

/// The search service's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchAnswer {
    /// How many match in all, and the newest `offset + limit` of them, newest first.
    Found { total: u64, hits: Vec<Found> },
    /// The partition's index is being rebuilt: ask again later.
    NotReady,
    /// The request was not understood, or the index failed.
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_always_lands_in_the_same_partition_in_range() {
        for raw in [0_u64, 1, 42, u64::MAX, 1_234_567_890_123] {
            let id = Snowflake::from_u64(raw);
            for n in [1, 2, 7] {
                let p = partition_of(id, n);
                assert!(p < n);
                assert_eq!(p, partition_of(id, n));
            }
            assert_eq!(partition_of(id, 0), 0);
        }
    }

    #[test]
    fn consecutive_ids_spread_over_partitions() {
        let mut seen = [0_u32; 4];
        for raw in 1000..1400_u64 {
            seen[partition_of(Snowflake::from_u64(raw), 4) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }
}
