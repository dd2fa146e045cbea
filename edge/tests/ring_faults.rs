//! Chat on a three-node Cassandra ring (replication factor 3, every read and write at QUORUM)
//! while one node is SIGKILLed for a while and started again: chat goes on, history stays
//! readable (two replicas of three make a quorum; the test prints the longest a read had to be
//! tried again, while the driver noticed the node was gone), nothing acknowledged is lost, and
//! the node that was away catches up (hinted handoff) until it alone holds every message.
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

use std::time::Duration;

use testkit::{CassandraRing, Stack};
use tokio::time::Instant;

use chat::{Chat, EDGE, logs, wait_for_traffic};
use support::{Engines, World};

#[tokio::test]
#[ignore = "three Cassandra JVMs take minutes: run by `./natter test --faults`"]
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

    let down = Instant::now();
    ring.stop(2);
    // Chat and history go on with two nodes of three, for half a minute.
    let (mut reads, mut unreadable) = (0, Duration::ZERO);
    let before = chat.acked().len();
    while down.elapsed() < Duration::from_secs(30) || chat.acked().len() < before + 600 {
        unreadable = unreadable.max(chat.history_readable(&edge).await);
        reads += 1;
        wait_for_traffic(&chat, chat.acked().len() + 100).await;
    }
    let outage = down.elapsed();
    ring.resume(2).await;
    let healed = Instant::now();
    let before = chat.acked().len();
    wait_for_traffic(&chat, before + 200).await;

    chat.settle_and_check(healed).await;
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
        "a store node down for {outage:?}: history read {reads} times meanwhile, unreadable at \
         most {unreadable:?}; {acked} acknowledged, all delivered, {stored} stored, lost {}; the node held \
         every message {:?} after chat settled",
        acked - stored,
        caught_up.elapsed()
    );
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
