//! Deletes uploads no message took: a client that asked for a slot and never sent its message
//! (closed the tab, cancelled, crashed) leaves a file in `uploads/`; after `--upload-ttl` it goes,
//! so storage never holds orphans for long.

use std::time::{Duration, SystemTime};

use kit::lifecycle::Shutdown;
use object_store::path::Path;

use crate::files::CLAIMS;
use crate::routes::uploads::UPLOADS;
use crate::storage::Storage;

pub struct Sweeper {
    storage: Storage,
    ttl: Duration,
    every: Duration,
}

impl Sweeper {
    pub fn new(storage: Storage, ttl: Duration, every: Duration) -> Self {
        Self {
            storage,
            ttl,
            every,
        }
    }

    /// Sweeps once now and then every interval, until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => self.sweep().await,
            }
        }
    }

    /// Deletes every upload older than the TTL, and the records of claims as old (a send is
    /// not retried hours later); a failure is logged and tried again next time.
    pub async fn sweep(&self) {
        let before = SystemTime::now() - self.ttl;
        if let Err(e) = self
            .storage
            .delete_under(&Path::from(CLAIMS), Some(before))
            .await
        {
            tracing::warn!(error = %e, "cannot sweep old claim records");
        }
        match self
            .storage
            .delete_under(&Path::from(UPLOADS), Some(before))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "swept uploads no message took"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep old uploads"),
        }
    }
}
