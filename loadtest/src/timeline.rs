//! A run's course, window by window (`--timeline FILE`): for finding what stalls deliveries, not
//! only how much. Each 100 ms window of the run's clock holds the deliveries of the messages
//! *sent* in it (how many, the slowest, how many took longer than 25 and 50 ms) beside the CPU
//! every process on the machine used in it, by command name, read from `/proc`. A window whose
//! deliveries were slow and the process that took the cores then stand on one line.
//!
//! The workers count their devices' deliveries into [`Windows`] (a few atomic operations per
//! read of a socket, only when asked for); the coordinator samples `/proc` ([`Sampler`]) and
//! writes the file ([`write()`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// A window's length, microseconds of the run's clock.
pub const WINDOW_MICROS: u64 = 100_000;

/// Windows a worker keeps: an hour of the run's clock; later sends count in the last.
pub const MAX_WINDOWS: usize = 36_000;

/// Deliveries later than these count apart.
const SLOW_MICROS: u64 = 25_000;
const SLOWER_MICROS: u64 = 50_000;

/// The deliveries of the messages sent in one window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub deliveries: u64,
    pub slowest_micros: u64,
    pub over_25ms: u64,
    pub over_50ms: u64,
}

impl Window {
    fn add(&mut self, other: &Self) {
        self.deliveries += other.deliveries;
        self.slowest_micros = self.slowest_micros.max(other.slowest_micros);
        self.over_25ms += other.over_25ms;
        self.over_50ms += other.over_50ms;
    }
}

/// A worker's windows, written by all its devices at once.
pub struct Windows(Vec<[AtomicU64; 4]>);

impl Windows {
    pub fn new(len: usize) -> Self {
        Self(
            (0..len.min(MAX_WINDOWS))
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
        )
    }

    /// Latencies read at `now` (the run's clock): each counts in the window its message was
    /// sent in. What one read of a socket holds was mostly sent in one window, so runs of the
    /// same window are added up before they touch the shared counters.
    pub fn record(&self, now: u64, latencies: &[u64]) {
        let Some(last) = self.0.len().checked_sub(1) else {
            return;
        };
        let index =
            |latency: u64| ((now.saturating_sub(latency) / WINDOW_MICROS) as usize).min(last);
        let mut pending: Option<(usize, Window)> = None;
        for &latency in latencies {
            let at = index(latency);
            if let Some((index, window)) = &pending
                && *index != at
            {
                self.add(*index, window);
                pending = None;
            }
            let (_, window) = pending.get_or_insert((at, Window::default()));
            window.add(&Window {
                deliveries: 1,
                slowest_micros: latency,
                over_25ms: u64::from(latency > SLOW_MICROS),
                over_50ms: u64::from(latency > SLOWER_MICROS),
            });
        }
        if let Some((index, window)) = pending {
            self.add(index, &window);
        }
    }

    fn add(&self, index: usize, window: &Window) {
        let [deliveries, slowest, over_25, over_50] = &self.0[index];
        deliveries.fetch_add(window.deliveries, Ordering::Relaxed);
        slowest.fetch_max(window.slowest_micros, Ordering::Relaxed);
        over_25.fetch_add(window.over_25ms, Ordering::Relaxed);
        over_50.fetch_add(window.over_50ms, Ordering::Relaxed);
    }

    /// The windows so far, as they cross the pipe: (index, window) for those that hold any.
    pub fn taken(&self) -> Vec<(usize, Window)> {
        self.0
            .iter()
            .enumerate()
            .map(|(i, [d, s, o25, o50])| {
                let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
                let window = Window {
                    deliveries: load(d),
                    slowest_micros: load(s),
                    over_25ms: load(o25),
                    over_50ms: load(o50),
                };
                (i, window)
            })
            .filter(|(_, w)| w.deliveries > 0)
            .collect()
    }
}

/// Adds a worker's windows to the run's.
pub fn merge(into: &mut BTreeMap<usize, Window>, windows: Vec<(usize, Window)>) {
    for (index, window) in windows {
        into.entry(index).or_default().add(&window);
    }
}

/// CPU used per window, by command name (clock ticks of 10 ms: 10 is one core for a window),
/// and the machine's whole (`/proc/stat`, kernel included) under "machine".
type Cpu = BTreeMap<usize, HashMap<String, u64>>;

/// Reads every process's CPU time from `/proc` once a window, on a thread of its own, until
/// stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Cpu>,
}

impl Sampler {
    /// Starts sampling; windows are counted on the run's clock from `epoch_micros`.
    pub fn start(epoch_micros: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || sample(epoch_micros, &stop))
        };
        Self { stop, thread }
    }

    pub fn stop(self) -> Cpu {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

fn sample(epoch_micros: u64, stop: &AtomicBool) -> Cpu {
    let mut cpu = Cpu::new();
    let mut before: HashMap<u32, (String, u64)> = HashMap::new();
    let mut machine_before = machine_ticks();
    while !stop.load(Ordering::Relaxed) {
        let now = crate::device::unix_micros().saturating_sub(epoch_micros);
        let window = (now / WINDOW_MICROS) as usize;
        let processes = processes();
        let used = cpu.entry(window).or_default();
        for (pid, (name, ticks)) in &processes {
            if let Some((_, was)) = before.get(pid) {
                let delta = ticks.saturating_sub(*was);
                if delta > 0 {
                    *used.entry(name.clone()).or_default() += delta;
                }
            }
        }
        let machine = machine_ticks();
        *used.entry("machine".to_owned()).or_default() += machine.saturating_sub(machine_before);
        machine_before = machine;
        before = processes;
        // Sampled at the end of each window: what it holds is what the window used.
        let next = (now / WINDOW_MICROS + 1) * WINDOW_MICROS;
        std::thread::sleep(Duration::from_micros(next.saturating_sub(now).max(1_000)));
    }
    // Each sample holds the window that just ended: move it back to that one.
    cpu.into_iter()
        .map(|(window, used)| (window.saturating_sub(1), used))
        .collect()
}

/// Every process's CPU ticks and the machine's at one moment, to tell what a run's delivery
/// took per delivery without a sampler beside it.
pub struct CpuMark {
    processes: HashMap<u32, (String, u64)>,
    machine: u64,
}

/// CPU seconds since a [`CpuMark`], by command name, and the machine's whole.
#[derive(Debug, Default)]
pub struct CpuUsed {
    pub by_name: HashMap<String, f64>,
    pub machine: f64,
}

impl CpuMark {
    pub fn take() -> Self {
        Self {
            processes: processes(),
            machine: machine_ticks(),
        }
    }

    /// What every process alive at both moments used since, summed by command name (a
    /// process started since counts whole).
    pub fn since(&self) -> CpuUsed {
        let mut by_name: HashMap<String, f64> = HashMap::new();
        for (pid, (name, ticks)) in processes() {
            let was = self.processes.get(&pid).map_or(0, |(_, was)| *was);
            *by_name.entry(name).or_default() += ticks.saturating_sub(was) as f64 / 100.0;
        }
        CpuUsed {
            by_name,
            machine: machine_ticks().saturating_sub(self.machine) as f64 / 100.0,
        }
    }
}

/// Every process's command name and CPU ticks so far (user and system).
fn processes() -> HashMap<u32, (String, u64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            parse_stat(&stat).map(|(name, ticks)| (pid, (name.to_owned(), ticks)))
        })
        .collect()
}

/// A process's name and CPU ticks (user and system, 1/100 s) from its `/proc/<pid>/stat` line
/// (the name is in parentheses and may hold spaces and parentheses itself).
pub fn parse_stat(stat: &str) -> Option<(&str, u64)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let (_, name) = head.split_once('(')?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((name, user + system))
}

/// The machine's busy ticks so far, every CPU, from `/proc/stat` (all but idle and iowait).
fn machine_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(line) = stat.lines().next() else {
        return 0;
    };
    line.split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum()
}

/// Writes the timeline as CSV, from the first window with deliveries to the last: the window's
/// start (seconds of the run's clock), its deliveries, then the CPU each process used in it (per
/// cent of one core), for the processes that used at least 1% of a core over those windows,
/// busiest first. Returns a few lines on the slowest windows, for the run's report.
pub fn write(
    path: &Path,
    windows: &BTreeMap<usize, Window>,
    cpu: &Cpu,
) -> anyhow::Result<Vec<String>> {
    let (Some(&first), Some(&last)) = (windows.keys().next(), windows.keys().next_back()) else {
        std::fs::write(path, "no deliveries\n").with_context(|| path.display().to_string())?;
        return Ok(Vec::new());
    };
    let span = first..=last;
    let mut totals: HashMap<&str, u64> = HashMap::new();
    for used in cpu.range(span.clone()).map(|(_, used)| used) {
        for (name, ticks) in used {
            *totals.entry(name).or_default() += ticks;
        }
    }
    let windows_in_span = (last - first + 1) as u64;
    let mut names: Vec<&str> = totals
        .iter()
        .filter(|&(name, ticks)| *name != "machine" && ticks * 10 >= windows_in_span)
        .map(|(name, _)| *name)
        .collect();
    names.sort_by_key(|name| std::cmp::Reverse(totals[name]));
    let percent = |window: usize, name: &str| {
        cpu.get(&window)
            .and_then(|used| used.get(name))
            .map_or(0, |ticks| ticks * 10)
    };

    let mut out = String::from("seconds,deliveries,slowest_ms,over_25ms,over_50ms,machine_cpu");
    for name in &names {
        out.push_str(&format!(",{name}_cpu"));
    }
    out.push('\n');
    for index in span {
        let window = windows.get(&index).copied().unwrap_or_default();
        out.push_str(&format!(
            "{:.1},{},{:.1},{},{},{}",
            index as f64 * WINDOW_MICROS as f64 / 1e6,
            window.deliveries,
            window.slowest_micros as f64 / 1000.0,
            window.over_25ms,
            window.over_50ms,
            percent(index, "machine"),
        ));
        for name in &names {
            out.push_str(&format!(",{}", percent(index, name)));
        }
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| path.display().to_string())?;

    // The slowest windows, with the processes busiest over them and the window after (a message
    // sent in a window is delivered in it or in the next).
    let mut slowest: Vec<(&usize, &Window)> =
        windows.iter().filter(|(_, w)| w.over_25ms > 0).collect();
    slowest.sort_by_key(|(_, w)| std::cmp::Reverse(w.over_25ms));
    Ok(slowest
        .into_iter()
        .take(5)
        .map(|(&index, window)| {
            let mut busy: Vec<(&str, u64)> = names
                .iter()
                .map(|name| (*name, percent(index, name) + percent(index + 1, name)))
                .collect();
            busy.sort_by_key(|(_, p)| std::cmp::Reverse(*p));
            let busy: Vec<String> = busy
                .iter()
                .take(3)
                .map(|(name, p)| format!("{name} {}%", p / 2))
                .collect();
            format!(
                "{:.1} s: {} of {} deliveries over 25 ms, the slowest {:.1} ms; busiest then: {}",
                index as f64 * WINDOW_MICROS as f64 / 1e6,
                window.over_25ms,
                window.deliveries,
                window.slowest_micros as f64 / 1000.0,
                busy.join(", ")
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_counts_in_the_window_its_message_was_sent_in() {
        let windows = Windows::new(10);
        // Read at 0.35 s: sent at 0.34 s (window 3), 0.29 s (window 2), 0.27 s (window 2).
        windows.record(350_000, &[10_000, 60_000, 80_000]);
        windows.record(120_000, &[30_000]); // sent at 0.09 s, window 0, over 25 ms
        let taken: BTreeMap<usize, Window> = windows.taken().into_iter().collect();
        assert_eq!(taken.keys().copied().collect::<Vec<_>>(), [0, 2, 3]);
        assert_eq!(
            taken[&2],
            Window {
                deliveries: 2,
                slowest_micros: 80_000,
                over_25ms: 2,
                over_50ms: 2
            }
        );
        assert_eq!(
            taken[&0],
            Window {
                deliveries: 1,
                slowest_micros: 30_000,
                over_25ms: 1,
                over_50ms: 0
            }
        );
        assert_eq!(taken[&3].deliveries, 1);
    }

    #[test]
    fn sends_past_the_last_window_count_in_it() {
        let windows = Windows::new(2);
        windows.record(10_000_000, &[1_000]);
        assert_eq!(
            windows.taken(),
            [(
                1,
                Window {
                    deliveries: 1,
                    slowest_micros: 1_000,
                    over_25ms: 0,
                    over_50ms: 0
                }
            )]
        );
    }

    #[test]
    fn workers_windows_add_up() {
        let mut run = BTreeMap::new();
        let one = Window {
            deliveries: 2,
            slowest_micros: 5,
            over_25ms: 0,
            over_50ms: 0,
        };
        let two = Window {
            deliveries: 3,
            slowest_micros: 9,
            over_25ms: 1,
            over_50ms: 0,
        };
        merge(&mut run, vec![(4, one)]);
        merge(&mut run, vec![(4, two), (5, one)]);
        assert_eq!(
            run[&4],
            Window {
                deliveries: 5,
                slowest_micros: 9,
                over_25ms: 1,
                over_50ms: 0
            }
        );
        assert_eq!(run[&5], one);
    }

    #[test]
    fn a_process_name_may_hold_spaces_and_parentheses() {
        let stat = "42 (C2 Compiler (x)) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0";
        assert_eq!(parse_stat(stat), Some(("C2 Compiler (x)", 10)));
    }

    #[test]
    fn the_file_names_the_busy_processes_beside_the_slow_windows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timeline.csv");
        let mut windows = BTreeMap::new();
        windows.insert(
            3,
            Window {
                deliveries: 100,
                slowest_micros: 1_000,
                over_25ms: 0,
                over_50ms: 0,
            },
        );
        windows.insert(
            5,
            Window {
                deliveries: 100,
                slowest_micros: 90_000,
                over_25ms: 40,
                over_50ms: 10,
            },
        );
        let mut cpu = Cpu::new();
        for w in 3..=6 {
            let busy = if w == 5 { 9 } else { 1 };
            cpu.insert(
                w,
                HashMap::from([
                    ("java".to_owned(), busy),
                    ("edge".to_owned(), 5),
                    ("idle".to_owned(), 0),
                    ("machine".to_owned(), 15),
                ]),
            );
        }
        let slowest = write(&path, &windows, &cpu).unwrap();
        let csv = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "seconds,deliveries,slowest_ms,over_25ms,over_50ms,machine_cpu,edge_cpu,java_cpu"
        );
        assert_eq!(lines[1], "0.3,100,1.0,0,0,150,50,10");
        assert_eq!(
            lines[2], "0.4,0,0.0,0,0,150,50,10",
            "a window without sends is a row of its own"
        );
        assert_eq!(lines[3], "0.5,100,90.0,40,10,150,50,90");
        assert_eq!(lines.len(), 4);
        assert_eq!(slowest.len(), 1);
        assert!(
            slowest[0].starts_with("0.5 s: 40 of 100 deliveries over 25 ms"),
            "{}",
            slowest[0]
        );
        assert!(slowest[0].contains("edge 50%, java 50%"), "{}", slowest[0]);
    }
}
