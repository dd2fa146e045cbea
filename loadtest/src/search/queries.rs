//! The search scenario's readers: concurrent clients asking a server's search route for one,
//! two or three words of the vocabulary, with and without an author; and the live lag, the time
//! from a send's acknowledgement to the first search that shows it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

use super::backlog::Draw;
use crate::report::Percentiles;
use crate::server::Rest;

/// The kinds of query asked, in turn: 1, 2 and 3 words, then the same by one author.
pub const KINDS: [(usize, bool); 6] = [
    (1, false),
    (2, false),
    (3, false),
    (1, true),
    (2, true),
    (3, true),
];

/// Who asks, and where.
pub struct Asking {
    pub rest: Rest,
    /// `/api/v1/guilds/{id}/messages/search`
    pub path: String,
    /// A member's token (every asker is the same member: the server's owner).
    pub token: String,
    /// The authors of the backlog, for `author_id`.
    pub authors: Vec<String>,
}

/// One kind of query's figures.
#[derive(Debug, Serialize)]
pub struct KindResult {
    pub words: usize,
    pub by_author: bool,
    pub queries: u64,
    pub errors_by_status: BTreeMap<u16, u64>,
    /// `total_results`, averaged over the answered queries.
    pub mean_hits: f64,
    /// Answers that found nothing.
    pub empty: u64,
    pub latency: Percentiles,
}

#[derive(Default)]
struct Tally {
    queries: u64,
    errors: BTreeMap<u16, u64>,
    hits: u64,
    empty: u64,
    latency: Option<Histogram<u64>>,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.queries += other.queries;
        self.hits += other.hits;
        self.empty += other.empty;
        for (status, n) in &other.errors {
            *self.errors.entry(*status).or_default() += n;
        }
        if let Some(h) = &other.latency {
            let _ = self
                .latency
                .get_or_insert_with(crate::device::histogram)
                .add(h);
        }
    }
}

/// `clients` askers for `duration`, each asking the next kind as soon as it has an answer.
pub async fn load(asking: Arc<Asking>, clients: usize, duration: Duration) -> Vec<KindResult> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients.max(1))
        .map(|client| {
            let asking = Arc::clone(&asking);
            tokio::spawn(async move {
                let mut tallies: Vec<Tally> = KINDS.iter().map(|_| Tally::default()).collect();
                let mut draw = Draw::new(u64::MAX - client as u64);
                let mut n = client;
                while started.elapsed() < duration {
                    let kind = n % KINDS.len();
                    let (words, by_author) = KINDS[kind];
                    let content = draw.words(words);
                    let author = &asking.authors[draw.number() as usize % asking.authors.len()];
                    let mut query = vec![("content", content.as_str())];
                    if by_author {
                        query.push(("author_id", author.as_str()));
                    }
                    let Ok(url) = asking.rest.url(n, &asking.path, &query) else {
                        break;
                    };
                    let sent = Instant::now();
                    let (status, body) = asking
                        .rest
                        .call(reqwest::Method::GET, url, &asking.token, None)
                        .await;
                    let took = sent.elapsed().as_micros() as u64;
                    let tally = &mut tallies[kind];
                    tally.queries += 1;
                    if status == 200 {
                        let hits = body["total_results"].as_u64().unwrap_or(0);
                        tally.hits += hits;
                        tally.empty += u64::from(hits == 0);
                        let _ = tally
                            .latency
                            .get_or_insert_with(crate::device::histogram)
                            .record(took.clamp(1, 600_000_000));
                    } else {
                        *tally.errors.entry(status).or_default() += 1;
                    }
                    n += 1;
                }
                tallies
            })
        })
        .collect();
    let mut totals: Vec<Tally> = KINDS.iter().map(|_| Tally::default()).collect();
    for task in tasks {
        if let Ok(tallies) = task.await {
            for (total, tally) in totals.iter_mut().zip(&tallies) {
                total.add(tally);
            }
        }
    }
    KINDS
        .iter()
        .zip(totals)
        .map(|(&(words, by_author), tally)| {
            let answered = tally.queries - tally.errors.values().sum::<u64>();
            KindResult {
                words,
                by_author,
                queries: tally.queries,
                errors_by_status: tally.errors,
                mean_hits: tally.hits as f64 / answered.max(1) as f64,
                empty: tally.empty,
                latency: (&tally.latency.unwrap_or_else(crate::device::histogram)).into(),
            }
        })
        .collect()
}

/// The live lag's figures.
#[derive(Debug, Serialize)]
pub struct LagResult {
    pub samples: usize,
    /// Sends whose message no search showed within the bound.
    pub never_found: u64,
    /// From the send's acknowledgement to the first search counting it (the index).
    pub ack_to_counted: Percentiles,
    /// … and to the first search showing it (the index and the store's context).
    pub ack_to_shown: Percentiles,
}

/// `samples` sends, one after another by the authors in turn (`tokens`), each of a word no
/// other message holds, each searched for every 20 ms until found (or `bound`).
pub async fn lag(
    asking: &Asking,
    channel: &str,
    tokens: &[String],
    tag: &str,
    samples: usize,
    bound: Duration,
) -> anyhow::Result<LagResult> {
    let mut counted = crate::device::histogram();
    let mut shown = crate::device::histogram();
    let mut never_found = 0;
    for s in 0..samples {
        let word = format!("lag{tag}x{s}");
        let token = &tokens[s % tokens.len()];
        asking
            .rest
            .send(
                s,
                channel,
                token,
                &format!("{word} {}", Draw::new(s as u64).text()),
            )
            .await?;
        let acked = Instant::now();
        let url = asking.rest.url(s, &asking.path, &[("content", &word)])?;
        let mut counted_at = None;
        loop {
            let (status, body) = asking
                .rest
                .call(reqwest::Method::GET, url.clone(), &asking.token, None)
                .await;
            if status == 200 {
                if counted_at.is_none() && body["total_results"].as_u64().unwrap_or(0) > 0 {
                    counted_at = Some(acked.elapsed());
                }
                if shows(&body) {
                    let took = acked.elapsed();
                    let c = counted_at.unwrap_or(took);
                    counted.record((c.as_micros() as u64).max(1))?;
                    shown.record((took.as_micros() as u64).max(1))?;
                    break;
                }
            }
            if acked.elapsed() > bound {
                never_found += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(LagResult {
        samples,
        never_found,
        ack_to_counted: (&counted).into(),
        ack_to_shown: (&shown).into(),
    })
}

/// Whether a search's answer shows a hit.
fn shows(body: &Value) -> bool {
    body["messages"]
        .as_array()
        .is_some_and(|groups| !groups.is_empty())
}
