//! Results: percentiles, a table for people and a JSON file for tools, and every service's
//! `/metrics` scraped before and after a run so the server side's figures stand beside the
//! clients'.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Writes `result` as pretty JSON to `path`.
pub fn write_json<T: Serialize>(path: &Path, result: &T) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(result)?;
    std::fs::write(path, json + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl From<&Histogram<u64>> for Percentiles {
    fn from(h: &Histogram<u64>) -> Self {
        Self {
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

pub fn print_percentiles(rows: &[(&str, &Percentiles)]) {
    println!(
        "{:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "microseconds", "count", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, p) in rows {
        println!(
            "{name:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            p.count, p.p50_us, p.p90_us, p.p99_us, p.p999_us, p.max_us
        );
    }
}

/// Every sample of one `/metrics` page: `name{labels}` → value.
pub type Samples = BTreeMap<String, f64>;

/// Reads a `/metrics` page.
pub async fn scrape_all(url: &str) -> anyhow::Result<Samples> {
    let text = reqwest::get(url)
        .await
        .with_context(|| format!("cannot scrape {url}"))?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect())
}

/// One sample (`name`, any labels summed) of a `/metrics` URL.
pub async fn scrape(url: &str, name: &str) -> anyhow::Result<f64> {
    let samples = scrape_all(url).await?;
    let mut found = samples
        .iter()
        .filter(|(series, _)| series.split('{').next() == Some(name))
        .map(|(_, v)| *v)
        .peekable();
    found
        .peek()
        .with_context(|| format!("{url} has no {name}"))?;
    Ok(found.sum())
}

/// What a service did during a run, from its own metrics.
#[derive(Debug, Serialize)]
pub struct ServiceDelta {
    pub metrics_url: String,
    pub cpu_seconds: f64,
    pub rss_after_bytes: f64,
    /// Every `natter_*_total` counter that moved, by series.
    pub counters: BTreeMap<String, f64>,
}

/// `/metrics` of several services, before a run.
pub struct Baseline(Vec<(String, Samples)>);

impl Baseline {
    /// Scrapes each URL; a service that does not answer is left out with a note.
    pub async fn take(urls: &[String]) -> Self {
        let mut taken = Vec::new();
        for url in urls {
            match scrape_all(url).await {
                Ok(samples) => taken.push((url.clone(), samples)),
                Err(e) => eprintln!("loadtest: {e:#}; its figures are left out"),
            }
        }
        Self(taken)
    }

    /// Scrapes again and reports what moved.
    pub async fn deltas(&self) -> Vec<ServiceDelta> {
        let mut out = Vec::new();
        for (url, before) in &self.0 {
            let Ok(after) = scrape_all(url).await else {
                continue;
            };
            let get = |samples: &Samples, name: &str| samples.get(name).copied().unwrap_or(0.0);
            let counters = after
                .iter()
                .filter(|(series, _)| {
                    series.starts_with("natter_")
                        && series
                            .split('{')
                            .next()
                            .is_some_and(|n| n.ends_with("_total"))
                })
                .filter_map(|(series, value)| {
                    let delta = value - before.get(series).copied().unwrap_or(0.0);
                    (delta != 0.0).then(|| (series.clone(), delta))
                })
                .collect();
            let cpu = |samples: &Samples| {
                samples
                    .iter()
                    .find(|(s, _)| s.starts_with("process_cpu_seconds_total"))
                    .map_or(0.0, |(_, v)| *v)
            };
            let rss = after
                .iter()
                .find(|(s, _)| s.starts_with("process_resident_memory_bytes"))
                .map_or_else(|| get(&after, "process_resident_memory_bytes"), |(_, v)| *v);
            out.push(ServiceDelta {
                metrics_url: url.clone(),
                cpu_seconds: cpu(&after) - cpu(before),
                rss_after_bytes: rss,
                counters,
            });
        }
        out
    }
}

pub fn print_deltas(deltas: &[ServiceDelta]) {
    println!("{:<36} {:>9} {:>10}", "service /metrics", "CPU s", "RSS MB");
    for d in deltas {
        println!(
            "{:<36} {:>9.1} {:>10.1}",
            d.metrics_url,
            d.cpu_seconds,
            d.rss_after_bytes / 1e6
        );
        for (series, delta) in &d.counters {
            println!("    {series} +{delta}");
        }
    }
}

/// The `q` quantile (in seconds) of a prometheus histogram's observations between two scrapes:
/// the upper bound of the bucket the quantile falls in.
pub fn histogram_quantile(before: &Samples, after: &Samples, name: &str, q: f64) -> Option<f64> {
    let bucket = format!("{name}_bucket{{");
    let mut buckets: Vec<(f64, f64)> = after
        .iter()
        .filter(|(series, _)| series.starts_with(&bucket))
        .filter_map(|(series, value)| {
            let le = series.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, value - before.get(series).copied().unwrap_or(0.0)))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    buckets
        .iter()
        .find(|(_, cumulative)| *cumulative >= q * total)
        .map(|(le, _)| *le)
}
