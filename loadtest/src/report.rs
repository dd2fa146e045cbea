//! Results: a table for people and a JSON file for tools, and scraping services' `/metrics`.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// Writes `result` as pretty JSON to `path`.
pub(crate) fn write_json<T: Serialize>(path: &Path, result: &T) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(result)?;
    std::fs::write(path, json + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// Reads one unlabelled-or-service-labelled sample (`name{service="x"} 123`) from a `/metrics` URL.
pub(crate) async fn scrape(url: &str, name: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(url)
        .await
        .with_context(|| format!("cannot scrape {url}"))?
        .text()
        .await?;
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| line.split(['{', ' ']).next() == Some(name))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .with_context(|| format!("{url} has no {name}"))
}
