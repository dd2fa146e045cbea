//! Building the index again from the CQL store, when it is lost (its folder deleted or
//! unreadable), was built for other partitions, or lies behind what the stream still holds.
//!
//! The store says how far it holds the stream (its watermark, read first); the channels that
//! hold messages come from the store too (`channel_last_message`), and each of this process's
//! channels is read through `store::History`, newest first, as a reader would page it, with its
//! pins as the store holds them and its server as auth says (a thousand channels at a time). The
//! rebuilt index's position is that watermark: the intake then applies the stream's events after
//! it, so whatever changed while the rebuild read (an edit, a delete) is applied on top, and
//! nothing between the two is missed. Until then the process answers "not ready".

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kit::lifecycle::Shutdown;
use proto::Snowflake;
use proto::api::messages::Page;
use store::history::History;

use crate::Shared;
use crate::index::{Position, SCHEMA_VERSION};

/// Messages read per page of a channel.
const PAGE: usize = 100;

/// Messages put between two commits of a rebuild (marked incomplete, so a crash starts again).
const COMMIT_EVERY: usize = 20_000;

/// Rebuilds the index until it succeeds (retrying while the store is down) or `shutdown`.
pub async fn until_done(
    history: &History,
    stream_name: &str,
    shared: &Arc<Shared>,
    shutdown: &Shutdown,
) -> Option<Position> {
    loop {
        match rebuild(history, stream_name, shared, shutdown).await {
            Ok(position) => return position,
            Err(e) => {
                tracing::warn!(error = %e, "rebuilding the search index failed; trying again");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    () = shutdown.cancelled() => return None,
                }
            }
        }
    }
}

async fn rebuild(
    history: &History,
    stream_name: &str,
    shared: &Arc<Shared>,
    shutdown: &Shutdown,
) -> Result<Option<Position>, String> {
    shared.ready.set(false);
    let started = std::time::Instant::now();
    let partitions = &shared.partitions;
    let unfinished = Position {
        sequence: 0,
        partitions: partitions.owned.clone(),
        of: partitions.of,
        complete: false,
        version: SCHEMA_VERSION,
    };
    shared.index.clear().map_err(|e| e.to_string())?;
    commit(shared, unfinished.clone()).await?;
    let store = history.store();
    let watermark = store
        .stored_through(stream_name)
        .await
        .map_err(|e| e.to_string())?;
    let channels: Vec<Snowflake> = store
        .channels_with_messages()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|&c| partitions.holds(c))
        .collect();
    tracing::info!(
        channels = channels.len(),
        watermark,
        "rebuilding the search index from the store"
    );
    // Nobody reads reactions here: any reader will do.
    let reader = Snowflake::from_u64(0);
    let (mut put, mut since_commit) = (0_usize, 0_usize);
    for group in channels.chunks(proto::access::MAX_CHANNEL_GUILDS) {
        let set: BTreeSet<Snowflake> = group.iter().copied().collect();
        let guilds = shared.guilds.of(&set).await?;
        for &channel in group {
            let guild = guilds.get(&channel).copied().flatten();
            let mut page = Page::Latest;
            loop {
                if shutdown.is_cancelled() {
                    return Ok(None);
                }
                let messages = history
                    .page_for(reader, channel, page, PAGE)
                    .await
                    .map_err(|e| e.to_string())?;
                for message in &messages {
                    shared.index.put(message, guild);
                }
                put += messages.len();
                since_commit += messages.len();
                if since_commit >= COMMIT_EVERY {
                    commit(shared, unfinished.clone()).await?;
                    since_commit = 0;
                }
                match messages.last() {
                    Some(oldest) if messages.len() == PAGE => page = Page::Before(oldest.id),
                    _ => break,
                }
            }
            // Pins after the watermark are applied again from the stream, in order.
            let pins = store.pins(channel).await.map_err(|e| e.to_string())?;
            for (message, _) in pins {
                shared.index.pin(channel, message, true);
            }
        }
    }
    let position = Position {
        sequence: watermark,
        complete: true,
        ..unfinished
    };
    commit(shared, position.clone()).await?;
    tracing::info!(
        messages = put,
        seconds = started.elapsed().as_secs_f64(),
        "search index rebuilt"
    );
    Ok(Some(position))
}

/// Commits on a blocking thread (a commit writes and syncs files).
pub(crate) async fn commit(shared: &Arc<Shared>, position: Position) -> Result<(), String> {
    let sequence = i64::try_from(position.sequence).unwrap_or(i64::MAX);
    let blocking = Arc::clone(shared);
    tokio::task::spawn_blocking(move || blocking.index.commit(&position))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    shared.position.set(sequence);
    Ok(())
}
