//! `search`: the search service over a large server. A server of `--channels` channels and
//! `--authors` members is made over REST; `--messages` messages by those members (words from a
//! fixed vocabulary, [`backlog`]) go straight into the chat stream; the command waits until the
//! search process's index has committed the stream's last sequence (its
//! `natter_search_position`), which gives messages indexed per second, and until a search shows
//! the last of them (the persister has stored it too: hits come with their context from the
//! store). Then `--clients` concurrent clients ask the server's search route for one, two and
//! three words, with and without `author_id`, for `--duration` ([`queries`]): p50/p99 and hits
//! per kind. Last, the live lag: the time from a send's acknowledgement to the first search
//! that finds its unique word, `--lag-samples` times, optionally while the authors chat at
//! `--chat-rate`.
//!
//! It fails when the index does not catch up, when any query is refused, or when a sampled
//! message is never found.

pub mod backlog;
pub mod queries;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream;
use proto::Snowflake;
use proto::subjects::{Prefix, Subjects};
use serde::Serialize;

use crate::population::Population;
use crate::report::{self, Baseline};
use crate::run::Target;
use crate::server::{Rest, Server, now_us};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    #[arg(long, default_value = "nats://127.0.0.1:14222")]
    pub nats_url: String,
    /// The deployment's NATS prefix (the services' `--nats-prefix`).
    #[arg(long, default_value = "natter")]
    pub nats_prefix: String,
    /// The search process's `/metrics` (its index position is read there).
    #[arg(long, default_value = "http://127.0.0.1:9087/metrics")]
    pub search: String,
    /// The persister's `/metrics` (the backlog must be stored before hits show with context).
    #[arg(long, default_value = "http://127.0.0.1:9083/metrics")]
    pub persister: String,
    /// Messages put into the server.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: usize,
    #[arg(long, default_value_t = 20)]
    pub channels: usize,
    /// Members who wrote them (the owner among them).
    #[arg(long, default_value_t = 10)]
    pub authors: usize,
    /// Clients searching at once.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    #[arg(long, default_value = "60s", value_parser = kit::config::duration)]
    pub duration: Duration,
    /// Sends whose time until a search finds them is measured.
    #[arg(long, default_value_t = 20)]
    pub lag_samples: usize,
    /// Messages per second the authors send over REST meanwhile (0: none; the edges'
    /// NATTER_SEND_RATE must allow it).
    #[arg(long, default_value_t = 0)]
    pub chat_rate: u64,
    /// How long the index and the store may take to hold the whole backlog.
    #[arg(long, default_value = "60m", value_parser = kit::config::duration)]
    pub index_timeout: Duration,
}

#[derive(Debug, Serialize)]
struct SearchResult {
    messages: usize,
    channels: usize,
    authors: usize,
    published_per_second: f64,
    /// From the first publish until the index committed the stream's last sequence.
    seconds_to_index: f64,
    indexed_per_second: f64,
    /// The index's rate once everything was published, when a fair part (a tenth) was left.
    indexed_alone_per_second: Option<f64>,
    /// From the first publish until a search showed the last message (stored, with context).
    seconds_to_searchable: f64,
    clients: usize,
    seconds: f64,
    queries_per_second: f64,
    kinds: Vec<queries::KindResult>,
    lag: queries::LagResult,
    chat_rate: u64,
    chat_sent: u64,
    chat_errors: u64,
    services: Vec<report::ServiceDelta>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.messages == 0 || args.channels == 0 || args.authors == 0 {
        bail!("--messages, --channels and --authors must be at least 1");
    }
    let target = &args.target;
    let people = Population::new(&target.auth);
    let rest = Rest::new(&target.gateway)?;
    let tag = format!("{}", now_us() % 1_000_000_000);
    let users = people.sign_up(&format!("s{tag}"), args.authors).await?;
    println!(
        "search: a server of {} channels and {} authors",
        args.channels, args.authors
    );
    let server = Server::build(&people, &users, "loadtest search", args.channels, 8).await?;
    let ids = |all: &[String]| -> anyhow::Result<Vec<Snowflake>> {
        all.iter()
            .map(|s| s.parse().context("an id"))
            .collect::<anyhow::Result<_>>()
    };
    let (channels, authors) = (ids(&server.channels)?, ids(&server.user_ids)?);

    let prefix = Prefix::parse(&args.nats_prefix).map_err(anyhow::Error::msg)?;
    let subjects = Subjects::new(prefix);
    let nats = async_nats::connect(&args.nats_url)
        .await
        .context("cannot reach NATS")?;
    let js = jetstream::new(nats);
    let mut metrics = target.metrics.clone();
    metrics.push(args.search.clone());
    let baseline = Baseline::take(&metrics).await;

    println!("search: {} messages into the chat stream", args.messages);
    let last_word = format!("fin{tag}");
    let started = Instant::now();
    let published = backlog::publish(
        &js,
        &subjects,
        &channels,
        &authors,
        args.messages,
        &last_word,
    )
    .await?;
    let position_then = report::scrape(&args.search, "natter_search_position").await?;
    let last = published.last_sequence as f64;
    loop {
        if report::scrape(&args.search, "natter_search_position").await? >= last {
            break;
        }
        if started.elapsed() > args.index_timeout {
            bail!(
                "the index had not caught up with the stream after {:?}",
                args.index_timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seconds_to_index = started.elapsed().as_secs_f64();
    let left = last - position_then;
    let indexed_alone_per_second = (left > args.messages as f64 / 10.0)
        .then(|| left / (seconds_to_index - published.seconds).max(1e-3));

    // The last message shown by a search: indexed, and stored for its context.
    let asking = Arc::new(queries::Asking {
        rest: rest.clone(),
        path: format!("/api/v1/guilds/{}/messages/search", server.id),
        token: users[0].token.clone(),
        authors: server.user_ids.clone(),
    });
    let find_last = rest.url(0, &asking.path, &[("content", &last_word)])?;
    loop {
        let (status, body) = rest
            .call(reqwest::Method::GET, find_last.clone(), &asking.token, None)
            .await;
        if status == 200 && body["messages"].as_array().is_some_and(|m| !m.is_empty()) {
            break;
        }
        if started.elapsed() > args.index_timeout {
            bail!(
                "no search showed the last message after {:?}",
                args.index_timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seconds_to_searchable = started.elapsed().as_secs_f64();
    // The persister may still be writing older messages (a channel's last is not its slowest).
    let stored_by = Instant::now();
    while report::scrape(&args.persister, "natter_persister_lag_messages")
        .await
        .unwrap_or(0.0)
        > 0.0
        && stored_by.elapsed() < args.index_timeout
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "search: published at {:.0}/s; indexed in {seconds_to_index:.1} s; searchable in {seconds_to_searchable:.1} s",
        args.messages as f64 / published.seconds
    );

    println!("search: {} clients for {:?}", args.clients, args.duration);
    let asked = Instant::now();
    let kinds = queries::load(Arc::clone(&asking), args.clients, args.duration).await;
    let seconds = asked.elapsed().as_secs_f64();

    println!(
        "search: {} sends, each until a search finds it",
        args.lag_samples
    );
    let tokens: Vec<String> = users.iter().map(|u| u.token.clone()).collect();
    let chatting = Chat::start(&rest, &server, &tokens, args.chat_rate);
    let lag = queries::lag(
        &asking,
        &server.channels[0],
        &tokens,
        &tag,
        args.lag_samples,
        Duration::from_secs(60),
    )
    .await;
    let (chat_sent, chat_errors) = chatting.stop();
    let lag = lag?;
    let services = baseline.deltas().await;

    let queries_total: u64 = kinds.iter().map(|k| k.queries).sum();
    let result = SearchResult {
        messages: args.messages,
        channels: args.channels,
        authors: args.authors,
        published_per_second: args.messages as f64 / published.seconds,
        seconds_to_index,
        indexed_per_second: args.messages as f64 / seconds_to_index,
        indexed_alone_per_second,
        seconds_to_searchable,
        clients: args.clients,
        seconds,
        queries_per_second: queries_total as f64 / seconds,
        kinds,
        lag,
        chat_rate: args.chat_rate,
        chat_sent,
        chat_errors,
        services,
    };
    print(&result);
    let path: PathBuf = target
        .out
        .clone()
        .unwrap_or_else(|| "loadtest-search.json".into());
    report::write_json(&path, &result)?;
    println!("result written to {}", path.display());
    let refused: u64 = result
        .kinds
        .iter()
        .map(|k| k.errors_by_status.values().sum::<u64>())
        .sum();
    if refused > 0 || result.lag.never_found > 0 {
        bail!(
            "{refused} searches failed and {} sampled messages were never found",
            result.lag.never_found
        );
    }
    Ok(())
}

fn print(result: &SearchResult) {
    println!(
        "search: {} messages in {} channels; indexed at {:.0}/s ({:.1} s{}), searchable after {:.1} s",
        result.messages,
        result.channels,
        result.indexed_per_second,
        result.seconds_to_index,
        result
            .indexed_alone_per_second
            .map_or(String::new(), |r| format!(
                ", {r:.0}/s once all were published"
            )),
        result.seconds_to_searchable
    );
    println!(
        "queries: {} clients, {:.0}/s over {:.1} s",
        result.clients, result.queries_per_second, result.seconds
    );
    println!(
        "{:<16} {:>8} {:>8} {:>10} {:>8} {:>10} {:>10}",
        "query", "count", "errors", "mean hits", "empty", "p50 us", "p99 us"
    );
    for k in &result.kinds {
        let name = format!(
            "{} word{}{}",
            k.words,
            if k.words == 1 { "" } else { "s" },
            if k.by_author { " +author" } else { "" }
        );
        println!(
            "{name:<16} {:>8} {:>8} {:>10.1} {:>8} {:>10} {:>10}",
            k.queries,
            k.errors_by_status.values().sum::<u64>(),
            k.mean_hits,
            k.empty,
            k.latency.p50_us,
            k.latency.p99_us
        );
    }
    println!(
        "live lag: {} samples, {} never found; chat at {}/s meanwhile ({} sent, {} failed)",
        result.lag.samples,
        result.lag.never_found,
        result.chat_rate,
        result.chat_sent,
        result.chat_errors
    );
    report::print_percentiles(&[
        ("ack -> counted", &result.lag.ack_to_counted),
        ("ack -> shown", &result.lag.ack_to_shown),
    ]);
    report::print_deltas(&result.services);
}

/// Chat beside the lag samples: the authors in turn, over REST, at a steady rate, at most 64
/// sends in flight (a tick with none free is skipped and counted failed).
struct Chat {
    task: Option<tokio::task::JoinHandle<()>>,
    sent: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
}

impl Chat {
    fn start(rest: &Rest, server: &Server, tokens: &[String], rate: u64) -> Self {
        let (sent, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let task = (rate > 0).then(|| {
            let (rest, channels, tokens) = (rest.clone(), server.channels.clone(), tokens.to_vec());
            let (sent, errors) = (Arc::clone(&sent), Arc::clone(&errors));
            tokio::spawn(async move {
                let slots = Arc::new(tokio::sync::Semaphore::new(64));
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
                for i in 0usize.. {
                    tick.tick().await;
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let (rest, sent, errors) = (rest.clone(), sent.clone(), errors.clone());
                    let channel = channels[i % channels.len()].clone();
                    let token = tokens[i % tokens.len()].clone();
                    tokio::spawn(async move {
                        let text = backlog::Draw::new(i as u64 ^ 0x5eed).text();
                        match rest.send(i, &channel, &token, &text).await {
                            Ok(_) => sent.fetch_add(1, Ordering::Relaxed),
                            Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                        };
                        drop(slot);
                    });
                }
            })
        });
        Self { task, sent, errors }
    }

    /// Stops sending; what was sent and what failed.
    fn stop(self) -> (u64, u64) {
        if let Some(task) = self.task {
            task.abort();
        }
        (
            self.sent.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}
