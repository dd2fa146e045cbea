//! What the coordinator and its workers say to each other, a JSON object per line.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::device::{self};
use crate::timeline;

/// A worker's share of a run: the first line it reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct Assignment {
    /// The run's clock: microseconds since the Unix epoch when it began.
    pub epoch_micros: u64,
    /// Every channel of the run, by index.
    pub channel_ids: Vec<String>,
    pub devices: Vec<DeviceSpec>,
    /// Windows of the run's timeline to count deliveries in (0: none; see `crate::timeline`).
    #[serde(default)]
    pub timeline_windows: usize,
}

/// One device: where it connects from and to, as whom, and which channels it is in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// The device's index in the run.
    pub index: usize,
    pub gateway: url::Url,
    pub source: IpAddr,
    pub token: String,
    /// Indexes of the channels the device's user is a member of.
    pub channels: Vec<usize>,
}

/// What the coordinator tells a worker, after the assignment.
// Externally tagged (`{"send": {...}}`): an internally tagged enum buffers its content, and
// serde_json cannot then read the number keys of `Done::ended` back.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// The device with this run index sends one message to the channel with this index.
    Send { device: usize, channel: usize },
    /// Every device drops its socket at once and resumes; `at` is the run's clock.
    Storm { at: u64 },
    /// Close every session, report, exit.
    Stop,
}

/// What a worker tells the coordinator.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// Every device of the assignment identified.
    Connected,
    Failed {
        error: String,
    },
    Progress(Progress),
    Done(Box<Done>),
}

/// Running totals, cumulative.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    /// MESSAGE_CREATEs received (in order, not duplicated).
    pub received: u64,
    /// Sends acknowledged, per channel index.
    pub acked: Vec<u64>,
    /// Sends answered with an error.
    pub send_errors: u64,
    /// Sends not made because the device's session had ended.
    pub not_sent: u64,
}

impl Progress {
    pub(super) fn add(&mut self, other: &Self) {
        self.received += other.received;
        self.send_errors += other.send_errors;
        self.not_sent += other.not_sent;
        if self.acked.len() < other.acked.len() {
            self.acked.resize(other.acked.len(), 0);
        }
        for (sum, acked) in self.acked.iter_mut().zip(&other.acked) {
            *sum += acked;
        }
    }
}

/// Everything a worker saw, at the end.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Done {
    pub progress: Progress,
    /// Messages delivered, per channel index, over all the worker's devices.
    pub delivered: Vec<u64>,
    /// Deliveries whose sequence number was not above the last one in their channel.
    pub disorder: u64,
    pub send_to_ack: Recorded,
    pub send_to_receive: Recorded,
    /// The same two to the kernel's receipt of the frame, before the generator read it.
    #[serde(default)]
    pub send_to_ack_arrival: Recorded,
    #[serde(default)]
    pub send_to_arrival: Recorded,
    /// Seconds from the storm's start to each device's RESUMED.
    pub resumed: Vec<f64>,
    pub resume_failures: u64,
    /// Sessions that ended before the run did, by close code.
    pub ended: BTreeMap<u16, u64>,
    /// Deliveries by the window their message was sent in, when asked for.
    #[serde(default)]
    pub timeline: Vec<(usize, timeline::Window)>,
}

impl Done {
    pub(super) fn add(&mut self, other: Self) {
        self.progress.add(&other.progress);
        if self.delivered.len() < other.delivered.len() {
            self.delivered.resize(other.delivered.len(), 0);
        }
        for (sum, delivered) in self.delivered.iter_mut().zip(&other.delivered) {
            *sum += delivered;
        }
        self.disorder += other.disorder;
        self.send_to_ack.0.extend(other.send_to_ack.0);
        self.send_to_receive.0.extend(other.send_to_receive.0);
        self.send_to_ack_arrival
            .0
            .extend(other.send_to_ack_arrival.0);
        self.send_to_arrival.0.extend(other.send_to_arrival.0);
        self.resumed.extend(other.resumed);
        self.resume_failures += other.resume_failures;
        for (code, count) in other.ended {
            *self.ended.entry(code).or_default() += count;
        }
        self.timeline.extend(other.timeline);
    }
}

/// A latency histogram as (microseconds, count) pairs: what crosses the pipe, merged exactly.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Recorded(Vec<(u64, u64)>);

impl From<&Histogram<u64>> for Recorded {
    fn from(h: &Histogram<u64>) -> Self {
        Self(
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        )
    }
}

impl From<&Recorded> for Histogram<u64> {
    fn from(recorded: &Recorded) -> Self {
        let mut h = device::histogram();
        for &(value, count) in &recorded.0 {
            let _ = h.record_n(value, count);
        }
        h
    }
}

pub(super) async fn write_line<T: Serialize>(
    to: &mut (impl AsyncWrite + Unpin),
    value: &T,
) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    to.write_all(&line).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_crosses_the_pipe_unchanged() {
        let mut h = device::histogram();
        for micros in [1, 7, 250, 1_000, 1_001, 52_000, 3_000_000] {
            h.record_n(micros, micros % 5 + 1).unwrap();
        }
        let line = serde_json::to_string(&Recorded::from(&h)).unwrap();
        let back = Histogram::from(&serde_json::from_str::<Recorded>(&line).unwrap());
        assert_eq!(back.len(), h.len());
        for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(back.value_at_quantile(q), h.value_at_quantile(q), "q {q}");
        }
    }

    #[test]
    fn a_done_report_reads_back_with_its_close_codes() {
        let done = Done {
            ended: BTreeMap::from([(0, 1), (4009, 2)]),
            ..Done::default()
        };
        let line = serde_json::to_string(&Report::Done(Box::new(done))).unwrap();
        let Report::Done(back) = serde_json::from_str(&line).unwrap() else {
            panic!("{line}");
        };
        assert_eq!(back.ended, BTreeMap::from([(0, 1), (4009, 2)]));
    }

    #[test]
    fn what_workers_saw_adds_up() {
        let one = Done {
            progress: Progress {
                received: 10,
                acked: vec![1, 2],
                send_errors: 1,
                not_sent: 0,
            },
            delivered: vec![4, 6],
            disorder: 1,
            resumed: vec![0.5],
            ended: BTreeMap::from([(4009, 1)]),
            ..Done::default()
        };
        let two = Done {
            progress: Progress {
                received: 5,
                acked: vec![0, 3],
                send_errors: 0,
                not_sent: 2,
            },
            delivered: vec![1, 4],
            resumed: vec![0.25],
            resume_failures: 1,
            ended: BTreeMap::from([(4009, 2), (0, 1)]),
            ..Done::default()
        };
        let mut all = Done::default();
        all.add(one);
        all.add(two);
        assert_eq!(all.progress.received, 15);
        assert_eq!(all.progress.acked, [1, 5]);
        assert_eq!((all.progress.send_errors, all.progress.not_sent), (1, 2));
        assert_eq!(all.delivered, [5, 10]);
        assert_eq!((all.disorder, all.resume_failures), (1, 1));
        assert_eq!(all.resumed, [0.5, 0.25]);
        assert_eq!(all.ended, BTreeMap::from([(0, 1), (4009, 3)]));
    }
}
