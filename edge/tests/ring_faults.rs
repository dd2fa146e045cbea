//! Chat on a three-node Cassandra ring (replication factor 3, every read and write at QUORUM)
//! while one node is SIGKILLed for a while and started again: chat goes on, history stays
//! readable throughout (two replicas of three make a quorum), nothing acknowledged is lost, and
//! the node that was away catches up (hinted handoff) until it alone holds every message.
//!
//! History is read as a person reading would, every [`POLL`] from just before the kill until
//! chat has settled after the node's return. What is asserted is a count, never a time: no more
//! than [`FAILED_IN_A_ROW`] reads in a row may fail. What is printed is the longest gap between
//! two good reads, for docs/RELIABILITY.md.
//!
//! The ring is this test's own (`testkit::CassandraRing`, ports from the OS); NATS is the stack's.
//! Three JVMs are the expensive part of the fault suite: the test starts the ring first and
//! everything else while it boots.

#[allow(dead_code)]
#[path = "gateway/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "faults/chat.rs"]
mod chat;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use testkit::{CassandraRing, Stack};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use chat::{Chat, EDGE, logs, wait_for_traffic};
use support::{Engines, World};

#[tokio::test]
#[ignore = "three Cassandra JVMs take minutes: run by `./natter test` beside the web step"]
async fn a_store_node_down_for_a_while_loses_nothing_and_history_stays_readable() {
    logs();
    let started = Instant::now();
    let mut ring = CassandraRing::start().await;
    eprintln!("the ring answered after {:?}", started.elapsed());
    let engines = Engines {
        nats_url: Stack::get().nats_url,
        cql_nodes: Some(ring.nodes()),
        cql_args: vec![
            "--cql-replication={'class': 'SimpleStrategy', 'replication_factor': 3}".to_owned(),
            "--cql-consistency=quorum".to_owned(),
        ],
    };
    let world = World::start_on(engines, 2, EDGE).await;
    let chat = Chat::start(&world).await;
    wait_for_traffic(&chat, 200).await;
    let edge = world.edge_url(1, "");

    let stop = CancellationToken::new();
    let (reads_before, baseline) = (AtomicUsize::new(0), std::sync::Mutex::new(Duration::ZERO));
    let scenario = async {
        // A few reads with every node up first: how long a read takes on this machine now.
        testkit::eventually(
            "five reads before the kill",
            Duration::from_secs(120),
            || async { (reads_before.load(Ordering::Relaxed) >= 5).then_some(()) },
        )
        .await;
        let down = Instant::now();
        ring.stop(2);
        // Chat goes on with two nodes of three, for half a minute and at least 600 messages.
        let before = chat.acked().len();
        while down.elapsed() < Duration::from_secs(30) || chat.acked().len() < before + 600 {
            wait_for_traffic(&chat, chat.acked().len() + 100).await;
        }
        let outage = down.elapsed();
        ring.resume(2).await;
        let healed = Instant::now();
        let before = chat.acked().len();
        wait_for_traffic(&chat, before + 200).await;
        chat.settle_and_check(healed).await;
        stop.cancel();
        outage
    };
    let watch = watch_history(&chat, &edge, &stop, &reads_before, &baseline);
    let (outage, watched) = tokio::join!(scenario, watch);
    eprintln!(
        "a store node down for {outage:?}: history read {} times from the kill until chat settled \
         after the return, {} failed ({} at most in a row, e.g. {:?}); the longest gap between two \
         good reads {:?}, the slowest read {:?} (before the kill, with every node up: {:?})",
        watched.reads,
        watched.failed,
        watched.failed_in_a_row,
        watched.last_failure,
        watched.longest_gap,
        watched.slowest,
        *baseline.lock().unwrap(),
    );
    assert!(
        watched.failed_in_a_row <= FAILED_IN_A_ROW,
        "history failed {} reads in a row (at most {FAILED_IN_A_ROW} may), e.g. {:?}",
        watched.failed_in_a_row,
        watched.last_failure
    );
    let stored = chat.check_stored(&world, &edge).await;
    let acked = chat.acked().len();

    // The node that was away holds every message on its own once hints are replayed.
    let alone = ring.session_on(2).await;
    let caught_up = Instant::now();
    let expected = chat.acked_ids();
    testkit::eventually(
        "the node that was away to hold every message",
        Duration::from_secs(600),
        || async {
            let held = held_ids(&alone, &world.keyspace).await?;
            expected.iter().all(|id| held.contains(id)).then_some(())
        },
    )
    .await;
    eprintln!(
        "{acked} acknowledged, all delivered, {stored} stored, lost {}; the node that was away \
         held every message {:?} after chat settled",
        acked - stored,
        caught_up.elapsed()
    );
}

/// How often history is read while the node is away and back.
const POLL: Duration = Duration::from_millis(300);

/// How many reads in a row may fail. A read in flight on the killed node's connections fails
/// over inside the driver (every read is idempotent), a coordinator that does not answer is
/// doubled after 200 ms (the driver's speculative execution), and a coordinator waiting on the
/// dead replica asks the third after 50 ms (the tables' `speculative_retry`): none of that
/// should fail a read. Two in a row are allowed for what a loaded machine adds (an edge's 2 s
/// request timeout hit by a pause of the JVMs on two busy cores); before those mechanisms,
/// reads failed for up to 23.8 s, dozens of polls in a row.
const FAILED_IN_A_ROW: usize = 2;

/// What reading history through the fault saw.
#[derive(Debug, Default)]
struct Watched {
    reads: usize,
    failed: usize,
    /// The longest run of failed reads.
    failed_in_a_row: usize,
    last_failure: Option<String>,
    /// The longest time between two reads that succeeded (or from the first read).
    longest_gap: Duration,
    /// The longest a read took, failed or not.
    slowest: Duration,
}

/// Reads every channel's newest page through `edge` every [`POLL`] until `stop`. The first five
/// reads, which the scenario waits for before it kills a node, are a baseline (counted in
/// `reads_before`, the slowest in `baseline`), must succeed, and are not in what it answers.
async fn watch_history(
    chat: &Chat,
    edge: &str,
    stop: &CancellationToken,
    reads_before: &AtomicUsize,
    baseline: &std::sync::Mutex<Duration>,
) -> Watched {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");
    let mut watched = Watched::default();
    let (mut last_good, mut run) = (Instant::now(), 0);
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.is_cancelled() {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let started = Instant::now();
        let read = chat.read_history(&http, edge).await;
        if reads_before.load(Ordering::Relaxed) < 5 {
            // Before the kill: every node is up, and every read must succeed.
            read.expect("history with every node up");
            let mut slowest = baseline.lock().unwrap();
            *slowest = (*slowest).max(started.elapsed());
            reads_before.fetch_add(1, Ordering::Relaxed);
            last_good = Instant::now();
            continue;
        }
        watched.reads += 1;
        watched.slowest = watched.slowest.max(started.elapsed());
        match read {
            Ok(()) => {
                watched.longest_gap = watched.longest_gap.max(last_good.elapsed());
                last_good = Instant::now();
                run = 0;
            }
            Err(e) => {
                watched.failed += 1;
                run += 1;
                watched.failed_in_a_row = watched.failed_in_a_row.max(run);
                watched.last_failure = Some(e);
            }
        }
    }
    watched.longest_gap = watched.longest_gap.max(last_good.elapsed());
    watched
}

/// Every message id one node holds in the keyspace (read at ONE from that node alone).
async fn held_ids(
    session: &scylla::client::session::Session,
    keyspace: &str,
) -> Option<std::collections::HashSet<String>> {
    use futures::TryStreamExt;
    let mut query = scylla::statement::unprepared::Statement::new(format!(
        "SELECT message_id FROM {keyspace}.messages"
    ));
    query.set_consistency(scylla::statement::Consistency::One);
    query.set_page_size(1000);
    let rows = session.query_iter(query, &[]).await.ok()?;
    let ids: Vec<(i64,)> = rows
        .rows_stream::<(i64,)>()
        .ok()?
        .try_collect()
        .await
        .ok()?;
    Some(ids.into_iter().map(|(id,)| id.to_string()).collect())
}
