//! The media process's memory, from `/proc/<pid>/status`: its resident set now (`VmRSS`) and
//! its peak (`VmHWM`), sampled through a run. The peak is reset before each phase where the
//! kernel allows it (writing 5 to `/proc/<pid>/clear_refs`, which needs the process's owner or
//! root), so each phase's `VmHWM` is its own.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

/// Resident memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    pub rss_bytes: u64,
    pub hwm_bytes: u64,
}

/// `VmRSS` and `VmHWM` of a `/proc/<pid>/status` text (given in kB, as the kernel writes them).
pub fn parse_status(text: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let mut words = line[name.len()..].split_whitespace();
        let kb: u64 = words.next()?.parse().ok()?;
        (words.next() == Some("kB")).then_some(kb * 1024)
    };
    Some(Memory {
        rss_bytes: field("VmRSS:")?,
        hwm_bytes: field("VmHWM:")?,
    })
}

pub fn read(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_status(&text).with_context(|| format!("{path} has no VmRSS or VmHWM"))
}

/// Resets the process's peak to its resident set now; false when the kernel refused.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// What a phase's samples found.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseMemory {
    pub before_bytes: u64,
    /// The largest `VmRSS` sampled.
    pub sampled_peak_bytes: u64,
    /// `VmHWM` at the end: the phase's true peak when `peak_was_reset`, else the process's
    /// since it started.
    pub hwm_bytes: u64,
    pub peak_was_reset: bool,
    pub samples: u64,
}

/// Samples `pid`'s memory every `every` until stopped.
pub struct Sampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<PhaseMemory>>,
}

impl Sampler {
    pub fn start(pid: u32, every: Duration) -> anyhow::Result<Self> {
        let peak_was_reset = reset_peak(pid);
        let before = read(pid)?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut phase = PhaseMemory {
                before_bytes: before.rss_bytes,
                sampled_peak_bytes: before.rss_bytes,
                hwm_bytes: before.hwm_bytes,
                peak_was_reset,
                samples: 1,
            };
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stopped => break,
                }
                let now = read(pid)?;
                phase.sampled_peak_bytes = phase.sampled_peak_bytes.max(now.rss_bytes);
                phase.samples += 1;
            }
            let last = read(pid)?;
            phase.sampled_peak_bytes = phase.sampled_peak_bytes.max(last.rss_bytes);
            phase.hwm_bytes = last.hwm_bytes;
            Ok(phase)
        });
        Ok(Self { stop, task })
    }

    pub async fn finish(self) -> anyhow::Result<PhaseMemory> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tmedia\nVmPeak:\t 1234567 kB\nVmSize:\t 1200000 kB\n\
                          VmHWM:\t   81920 kB\nVmRSS:\t   40960 kB\nThreads:\t5\n";

    #[test]
    fn rss_and_peak_are_read_in_bytes() {
        assert_eq!(
            parse_status(STATUS),
            Some(Memory {
                rss_bytes: 40960 * 1024,
                hwm_bytes: 81920 * 1024
            })
        );
    }

    #[test]
    fn a_status_without_memory_lines_reads_as_none() {
        // A kernel thread's status has no Vm lines.
        assert_eq!(
            parse_status("Name:\tkthreadd\nState:\tS (sleeping)\n"),
            None
        );
        assert_eq!(parse_status("VmHWM:\t12 kB\nVmRSS:\tmany kB\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_set_no_larger_than_its_peak() {
        let memory = read(std::process::id()).unwrap();
        assert!(memory.rss_bytes > 0);
        assert!(memory.rss_bytes <= memory.hwm_bytes);
    }
}
