//! Media's upload flow as a client goes through it (docs/API.md, "Files"): a slot from
//! `POST /api/v1/channels/{id}/attachments`, the bytes PUT to its `upload_url`, and a file read
//! back through a message's link. Bodies stream from one shared buffer, so 50 uploads of 25 MiB
//! in flight hold 1 MiB between them, not 1.25 GiB.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use proto::api::attachments::UploadSlots;
use serde_json::json;

/// The buffer every body is cut from.
pub const PATTERN_BYTES: usize = 1024 * 1024;

/// How long one transfer may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// One upload slot.
#[derive(Debug, Clone)]
pub struct Slot {
    pub upload_url: String,
    pub upload_filename: String,
}

/// Why a transfer failed: the status media answered (0 when none), and what it said.
#[derive(Debug)]
pub struct Failed {
    pub status: u16,
    pub why: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.why)
    }
}

/// Media's public origin and a client for it.
#[derive(Clone)]
pub struct Media {
    http: reqwest::Client,
    base: url::Url,
}

impl Media {
    pub fn new(base: &url::Url) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                // Below media's 10 s for an idle kept-alive connection (`--header-read-timeout`),
                // so a request never goes out on a connection media is closing; one of 50
                // downloads after a long upload phase did.
                .pool_idle_timeout(Duration::from_secs(5))
                .build()?,
            base: base.clone(),
        })
    }

    /// A slot for one file of `size` bytes named `filename`, in `channel`, as `token`.
    pub async fn slot(
        &self,
        channel: &str,
        token: &str,
        filename: &str,
        size: u64,
    ) -> Result<Slot, Failed> {
        let url = self
            .base
            .join(&format!("/api/v1/channels/{channel}/attachments"))
            .map_err(|e| failed(0, &e))?;
        let body = json!({"files": [{"id": "0", "filename": filename, "file_size": size}]});
        let response = self
            .http
            .post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|e| failed(0, &e))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if status != 200 {
            return Err(failed(status, &text));
        }
        let slots: UploadSlots = serde_json::from_str(&text).map_err(|e| failed(status, &e))?;
        let slot = slots
            .attachments
            .into_iter()
            .next()
            .ok_or_else(|| failed(status, &"no slot in the answer"))?;
        Ok(Slot {
            upload_url: slot.upload_url,
            upload_filename: slot.upload_filename,
        })
    }

    /// PUTs `size` bytes cut from `pattern` to the slot, streamed.
    pub async fn put(&self, slot: &Slot, pattern: &Bytes, size: u64) -> Result<(), Failed> {
        let chunks = body_chunks(pattern, size)
            .into_iter()
            .map(Ok::<_, std::io::Error>);
        let response = self
            .http
            .put(&slot.upload_url)
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .send()
            .await
            .map_err(|e| failed(0, &e))?;
        // 204 from media (local disk), 200 from the store itself (a presigned PUT on S3).
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(failed(status, &response.text().await.unwrap_or_default()));
        }
        Ok(())
    }

    /// Reads a file's link to the end, chunk by chunk: the bytes read.
    pub async fn download(&self, url: &str) -> Result<u64, Failed> {
        let mut response = self.http.get(url).send().await.map_err(|e| failed(0, &e))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(failed(status, &response.text().await.unwrap_or_default()));
        }
        let mut read = 0;
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(status, &e))? {
            read += chunk.len() as u64;
        }
        Ok(read)
    }
}

fn failed(status: u16, why: &impl ToString) -> Failed {
    Failed {
        status,
        why: why.to_string(),
    }
}

/// `PATTERN_BYTES` of pseudo-random bytes (so no type is sniffed from them, and nothing on the
/// way compresses them), made once.
pub fn pattern(seed: u64) -> Bytes {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(PATTERN_BYTES);
    while out.len() < PATTERN_BYTES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(PATTERN_BYTES);
    Bytes::from(out)
}

/// A body of `size` bytes as slices of `pattern` (views of the one buffer, never copies).
pub fn body_chunks(pattern: &Bytes, size: u64) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(pattern.len() as u64) as usize;
        chunks.push(pattern.slice(..n));
        left -= n as u64;
    }
    chunks
}

/// Parses a size such as `1MiB`, `25MiB`, `512KiB` or `1000` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 1MiB or 25MiB"))?;
    let unit = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        other => return Err(format!("unknown unit {other:?}: use B, KiB or MiB")),
    };
    number
        .checked_mul(unit)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?} is not a size media takes"))
}

/// A size as people read it: `1 MiB`, `25 MiB`, `1536 KiB`, `100 B`.
pub fn show_size(bytes: u64) -> String {
    if bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// The upload slot's filename for the `i`th file of `size` bytes.
pub fn filename(size: u64, i: usize) -> String {
    format!("load-{}-{i}.bin", show_size(size).replace(' ', ""))
}

/// `/proc/<pid>/cmdline`'s value after `--storage` (media's back end), when it says.
pub fn storage_of(pid: u32) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let at = args.iter().position(|a| *a == b"--storage")?;
    String::from_utf8(args.get(at + 1)?.to_vec()).ok()
}

/// Reads the pid media's script wrote.
pub fn pid_from_file(path: &std::path::Path) -> anyhow::Result<u32> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (run from the checkout ./natter up runs in, or give --media-pid)",
            path.display()
        )
    })?;
    text.trim()
        .parse()
        .with_context(|| format!("{} holds no pid", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_cut_from_the_pattern_to_the_exact_size() {
        let pattern = pattern(1);
        let size = 25 * 1024 * 1024 + 17;
        let chunks = body_chunks(&pattern, size);
        assert_eq!(chunks.iter().map(|c| c.len() as u64).sum::<u64>(), size);
        assert_eq!(chunks.len(), 26);
        assert_eq!(chunks.last().unwrap().len(), 17);
        // Views of the one buffer, not copies of it.
        assert_eq!(chunks[0].as_ptr(), pattern.as_ptr());
        assert_eq!(chunks[25].as_ptr(), pattern.as_ptr());
    }

    #[test]
    fn an_empty_body_has_no_chunks() {
        assert!(body_chunks(&pattern(1), 0).is_empty());
    }

    #[test]
    fn the_pattern_is_a_mebibyte_and_not_one_repeated_byte() {
        let pattern = pattern(9);
        assert_eq!(pattern.len(), PATTERN_BYTES);
        let zeros = pattern.iter().filter(|&&b| b == 0).count();
        assert!(zeros < PATTERN_BYTES / 100, "{zeros} zero bytes");
    }

    #[test]
    fn sizes_are_read_in_bytes_kibibytes_and_mebibytes() {
        assert_eq!(parse_size("1MiB"), Ok(1024 * 1024));
        assert_eq!(parse_size("25MiB"), Ok(25 * 1024 * 1024));
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("0MiB").is_err());
        assert!(parse_size("1MB").is_err());
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn sizes_are_shown_in_the_largest_whole_unit() {
        assert_eq!(show_size(25 * 1024 * 1024), "25 MiB");
        assert_eq!(show_size(1536 * 1024), "1536 KiB");
        assert_eq!(show_size(100), "100 B");
        assert_eq!(filename(1024 * 1024, 3), "load-1MiB-3.bin");
    }
}
