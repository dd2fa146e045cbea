//! The edge's client of the search service: a search names the channels the caller may read;
//! they are grouped by the partition of the index that holds each (`proto::search::partition_of`),
//! each partition is asked at once over NATS, and the answers are merged newest first.

use std::collections::BTreeMap;
use std::time::Duration;

use proto::Snowflake;
use proto::api::search::SearchFilter;
use proto::search::{Found, SearchAnswer, SearchRequest, partition_of};
use proto::subjects::Subjects;

/// How long a partition may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// No search process answered, or one is rebuilding its index.
    #[error("search is not available right now: {0}")]
    Unavailable(String),
    #[error("search failed: {0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct Searcher {
    nats: async_nats::Client,
    subjects: Subjects,
    partitions: u32,
}

impl Searcher {
    pub fn new(nats: async_nats::Client, subjects: Subjects, partitions: u32) -> Self {
        Self {
            nats,
            subjects,
            partitions: partitions.max(1),
        }
    }

    /// How many messages of `channels` (all of server `guild`'s, when given) match `filter`, and
    /// the page `filter.offset`, `filter.limit` of them, newest first.
    pub async fn search(
        &self,
        guild: Option<Snowflake>,
        channels: &[Snowflake],
        filter: &SearchFilter,
    ) -> Result<(u64, Vec<Found>), SearchError> {
        let mut by_partition: BTreeMap<u32, Vec<Snowflake>> = BTreeMap::new();
        for &channel in channels {
            by_partition
                .entry(partition_of(channel, self.partitions))
                .or_default()
                .push(channel);
        }
        let asks = by_partition.into_iter().map(|(partition, channels)| {
            let request = SearchRequest {
                channels,
                guild_id: guild,
                filter: filter.clone(),
            };
            self.ask(partition, request)
        });
        let answers = futures::future::try_join_all(asks).await?;
        let mut total = 0;
        let mut hits = Vec::new();
        for (count, found) in answers {
            total += count;
            hits.extend(found);
        }
        // Each partition sent its newest `offset + limit`; the page is the same slice of them all.
        hits.sort_by_key(|hit| std::cmp::Reverse(hit.id));
        let page = hits
            .into_iter()
            .skip(filter.offset)
            .take(filter.limit)
            .collect();
        Ok((total, page))
    }

    async fn ask(
        &self,
        partition: u32,
        request: SearchRequest,
    ) -> Result<(u64, Vec<Found>), SearchError> {
        let body = serde_json::to_vec(&request).expect("requests serialise");
        let asked = self
            .nats
            .request(self.subjects.search_query(partition), body.into());
        let answer = match tokio::time::timeout(TIMEOUT, asked).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Err(SearchError::Unavailable(e.to_string())),
            Err(_) => {
                return Err(SearchError::Unavailable(format!(
                    "partition {partition} did not answer"
                )));
            }
        };
        match serde_json::from_slice::<SearchAnswer>(&answer.payload) {
            Ok(SearchAnswer::Found { total, hits }) => Ok((total, hits)),
            Ok(SearchAnswer::NotReady) => Err(SearchError::Unavailable(format!(
                "partition {partition} is rebuilding its index"
            ))),
            Ok(SearchAnswer::Failed(e)) => Err(SearchError::Failed(e)),
            Err(e) => Err(SearchError::Failed(format!("an unreadable answer: {e}"))),
        }
    }
}
