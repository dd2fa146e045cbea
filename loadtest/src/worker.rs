//! Worker processes. The devices of a run live in `loadtest worker` child processes, so a run is
//! not held to one process's open-file limit (20,000 here): each worker holds its share of the
//! sockets, the coordinator ([`mod@crate::run`]) holds none. The coordinator signs up the users and
//! makes the channels, hands each worker its devices, tells it when each device sends, and adds
//! up what the workers report.
//!
//! The conversation is one JSON object per line over the child's stdin and stdout:
//!
//! ```text
//! coordinator -> worker   Assignment, then Orders: send, storm, stop
//! worker -> coordinator   connected (or failed), progress every 100 ms, done (at stop)
//! ```
//!
//! Every process measures time from the run's epoch, microseconds of the Unix clock, so a latency
//! is this one machine's clock read twice (by the sending and the receiving device's process).

use anyhow::Context;

mod fleet;
mod process;
mod protocol;

pub use fleet::Fleet;
pub use process::work;
pub use protocol::{Assignment, DeviceSpec, Done, Order, Progress, Recorded, Report};

/// Devices per worker process when `--workers` is not given.
pub const DEVICES_PER_WORKER: usize = 15_000;

/// How many worker processes, and which program they run: every scenario's options.
#[derive(Debug, Clone, clap::Args)]
pub struct Workers {
    /// Worker processes to hold the devices (0: one per core, and at least one per 15,000
    /// devices, as each process may open at most 20,000 files here). Each runs on one thread.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,

    /// The program workers run as (`<it> worker`); this one unless set.
    #[arg(long, hide = true)]
    pub worker_exe: Option<std::path::PathBuf>,
}

impl Workers {
    fn count(&self, devices: usize) -> usize {
        match self.workers {
            0 => {
                let cores = std::thread::available_parallelism().map_or(1, usize::from);
                devices.div_ceil(DEVICES_PER_WORKER).max(cores)
            }
            n => n,
        }
    }

    fn exe(&self) -> anyhow::Result<std::path::PathBuf> {
        match &self.worker_exe {
            Some(exe) => Ok(exe.clone()),
            None => std::env::current_exe().context("where this program is"),
        }
    }
}
