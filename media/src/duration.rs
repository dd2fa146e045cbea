//! How long an audio or video file plays, read cheaply: from its container's headers (MP4, MOV
//! and M4A's `mvhd`, Matroska and WebM's segment info, FLAC's stream info, WAV's chunk sizes,
//! MP3's Xing/VBRI header or its bitrate, Ogg's last granule position), never by decoding it.
//!
//! Only an [`Excerpt`] of the file is read from storage: its first [`HEAD_BYTES`] and its last
//! [`TAIL_BYTES`] (a camera's MP4 keeps its index after the media; Ogg's length is in its last
//! page). The container reader (symphonia's, which seeks past what it does not need) sees the
//! whole file's length and may seek anywhere, but a read outside those two windows fails, so a
//! file whose headers lie elsewhere, or that is malformed, simply has no duration: memory and
//! work stay bounded by the excerpt whatever the file declares.

use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path;
use proto::api::attachments::Seconds;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

use crate::storage::{Storage, StorageError};

/// How much of a file's start is read: its headers, with room for cover art or a large index.
pub const HEAD_BYTES: u64 = 1024 * 1024;
/// How much of a file's end is read: an MP4's index written after its media, Ogg's last page.
pub const TAIL_BYTES: u64 = 512 * 1024;

/// The longest reading a file's headers may take (it takes milliseconds; this bounds a reader
/// gone wrong on a malformed file).
const WITHIN: Duration = Duration::from_secs(10);

/// The longest duration believed (a week): a header claiming more is taken as malformed.
const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// Whether a sniffed type is one whose duration is looked for.
pub fn has_duration(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| t.starts_with("audio/") || t.starts_with("video/"))
}

/// The parts of a file that were read: its first bytes, its last bytes, and its whole length.
#[derive(Debug, Clone)]
pub struct Excerpt {
    head: Vec<u8>,
    /// The file's last bytes, from `len - tail.len()`.
    tail: Vec<u8>,
    len: u64,
}

impl Excerpt {
    /// The ranges to read of a file of `len` bytes: the head, and the tail when it is not
    /// within the head already.
    pub fn ranges(len: u64) -> (Range<u64>, Option<Range<u64>>) {
        let head = 0..len.min(HEAD_BYTES);
        let tail = (len > HEAD_BYTES).then(|| len.saturating_sub(TAIL_BYTES).max(head.end)..len);
        (head, tail)
    }

    /// What was read of a file of `len` bytes: `head` from its start and `tail` up to its end
    /// (each cut to its window, should a store answer more than was asked).
    pub fn new(mut head: Vec<u8>, mut tail: Vec<u8>, len: u64) -> Self {
        head.truncate(usize::try_from(len.min(HEAD_BYTES)).unwrap_or(usize::MAX));
        let keep = usize::try_from(TAIL_BYTES.min(len)).unwrap_or(usize::MAX);
        if tail.len() > keep {
            tail.drain(..tail.len() - keep);
        }
        Self { head, tail, len }
    }

    /// A file read whole (a small one, or in tests).
    pub fn whole(bytes: Vec<u8>) -> Self {
        let len = bytes.len() as u64;
        Self {
            head: bytes,
            tail: Vec::new(),
            len,
        }
    }

    /// Where the tail starts in the file.
    fn tail_start(&self) -> u64 {
        self.len - self.tail.len() as u64
    }
}

/// The duration of the file at `key` (`size` bytes long, as its attachment says): its excerpt is
/// read from storage, then its headers off the async workers, within [`WITHIN`]. `None` when the
/// file is gone, or its headers do not say it cheaply.
pub async fn read(
    storage: &Storage,
    key: &Path,
    size: u64,
) -> Result<Option<Seconds>, StorageError> {
    if size == 0 {
        return Ok(None);
    }
    let (head, _) = Excerpt::ranges(size);
    let (size, head) = match read_range(storage, key, head).await {
        Ok(read) => read,
        Err(StorageError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    // The length the store knows is the one the container's offsets are relative to.
    let tail = match Excerpt::ranges(size).1 {
        Some(range) => match read_range(storage, key, range).await {
            Ok((_, tail)) => tail,
            Err(StorageError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        },
        None => Vec::new(),
    };
    let excerpt = Excerpt::new(head, tail, size);
    let reading = tokio::task::spawn_blocking(move || duration_of(excerpt));
    Ok(match tokio::time::timeout(WITHIN, reading).await {
        Ok(Ok(seconds)) => seconds,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "reading a duration panicked");
            None
        }
        Err(_) => {
            tracing::warn!(%key, "reading a duration took too long");
            None
        }
    })
}

/// `range` of the file at `key`, never more (whatever the store answers), and the file's length.
async fn read_range(
    storage: &Storage,
    key: &Path,
    range: Range<u64>,
) -> Result<(u64, Vec<u8>), StorageError> {
    let cap = usize::try_from(range.end - range.start).unwrap_or(usize::MAX);
    let download = storage.get(key, Some(range)).await?;
    let mut bytes = Vec::with_capacity(cap);
    let mut body = download.body;
    while bytes.len() < cap {
        let Some(chunk) = body.try_next().await? else {
            break;
        };
        let room = cap - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok((download.size, bytes))
}

/// The duration of the file `excerpt` is of, `None` when its headers (within the excerpt) do not
/// say it or are malformed. CPU-bound but short: run it off the async workers.
pub fn duration_of(excerpt: Excerpt) -> Option<Seconds> {
    let source = Window {
        excerpt,
        position: 0,
    };
    let stream = MediaSourceStream::new(Box::new(source), MediaSourceStreamOptions::default());
    let reader = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .ok()?;
    seconds(reader.as_ref())
}

/// The media's duration as the container states it, else its longest track's.
fn seconds(reader: &dyn FormatReader) -> Option<Seconds> {
    let info = reader.media_info();
    let whole = info
        .time_base
        .zip(info.duration)
        .and_then(|(base, duration)| base.calc_duration(duration))
        .map(|time| time.as_secs_f64());
    let longest_track = || {
        reader
            .tracks()
            .iter()
            .filter_map(|track| {
                let duration = track.duration?;
                Some(track.time_base?.calc_duration(duration)?.as_secs_f64())
            })
            .fold(None, |longest: Option<f64>, s| {
                Some(longest.map_or(s, |l| l.max(s)))
            })
    };
    let seconds = whole.filter(|s| *s > 0.0).or_else(longest_track)?;
    if seconds > 0.0 && seconds <= MAX_SECONDS {
        Seconds::new(seconds)
    } else {
        None
    }
}

/// The file as the container reader sees it: seekable to anywhere in its length, readable in the
/// excerpt's two windows only.
struct Window {
    excerpt: Excerpt,
    position: u64,
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let excerpt = &self.excerpt;
        let at = self.position;
        if at >= excerpt.len || buf.is_empty() {
            return Ok(0);
        }
        let (window, from) = if at < excerpt.head.len() as u64 {
            (&excerpt.head, at)
        } else if at >= excerpt.tail_start() {
            (&excerpt.tail, at - excerpt.tail_start())
        } else {
            return Err(io::Error::other("beyond the bytes read of the file"));
        };
        let from = usize::try_from(from).map_err(io::Error::other)?;
        let n = buf.len().min(window.len() - from);
        buf[..n].copy_from_slice(&window[from..from + n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for Window {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.excerpt.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        let target = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?;
        self.position = target;
        Ok(target)
    }
}

impl MediaSource for Window {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.excerpt.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixtures (made by `tests/fixtures/make.sh`) and how long each plays.
    const FIXTURES: &[(&str, &[u8], f64)] = &[
        ("wav", include_bytes!("../tests/fixtures/tone.wav"), 0.5),
        (
            "flac",
            include_bytes!("../tests/fixtures/silence.flac"),
            2.0,
        ),
        ("mp3", include_bytes!("../tests/fixtures/tone.mp3"), 3.0),
        (
            "ogg opus",
            include_bytes!("../tests/fixtures/voice.ogg"),
            2.5,
        ),
        (
            "webm opus",
            include_bytes!("../tests/fixtures/voice.webm"),
            1.5,
        ),
        ("m4a", include_bytes!("../tests/fixtures/voice.m4a"), 1.25),
        ("mp4", include_bytes!("../tests/fixtures/clip.mp4"), 2.0),
        ("mov", include_bytes!("../tests/fixtures/clip.mov"), 2.0),
        (
            "webm vp8",
            include_bytes!("../tests/fixtures/clip.webm"),
            2.0,
        ),
        ("mkv", include_bytes!("../tests/fixtures/clip.mkv"), 2.0),
    ];

    fn seconds_of(bytes: &[u8]) -> Option<f64> {
        duration_of(Excerpt::whole(bytes.to_vec())).map(Seconds::get)
    }

    #[test]
    fn every_kind_of_recording_gets_its_duration_from_its_headers() {
        for (kind, bytes, expected) in FIXTURES {
            let seconds = seconds_of(bytes);
            eprintln!("{kind}: {seconds:?}");
            let seconds = seconds.unwrap_or_else(|| panic!("{kind} has no duration"));
            // Encoders pad a little (an Opus pre-skip, an AAC priming frame).
            assert!(
                (seconds - expected).abs() < 0.15,
                "{kind}: {seconds} s, not {expected} s"
            );
        }
    }

    #[test]
    fn a_camera_mp4_whose_index_follows_megabytes_of_media_is_read_by_its_ends() {
        // The fixture's `mdat` grown by 4 MiB: its `moov` now sits beyond the head.
        let clip = include_bytes!("../tests/fixtures/clip.mp4").to_vec();
        let at = clip.windows(4).position(|w| w == b"mdat").unwrap() - 4;
        let size = u32::from_be_bytes(clip[at..at + 4].try_into().unwrap());
        let grown = 4 * 1024 * 1024;
        let mut big = clip[..at].to_vec();
        big.extend((size + grown).to_be_bytes());
        big.extend(&clip[at + 4..at + size as usize]);
        big.extend(vec![0; grown as usize]);
        big.extend(&clip[at + size as usize..]);
        let len = big.len() as u64;
        let (head, tail) = Excerpt::ranges(len);
        let tail = tail.expect("a tail");
        let slice = |r: Range<u64>| big[r.start as usize..r.end as usize].to_vec();
        let excerpt = Excerpt::new(slice(head), slice(tail), len);
        let seconds = duration_of(excerpt).expect("a duration").get();
        assert!((seconds - 2.0).abs() < 0.15, "{seconds}");
        // Without its tail, it has none (and reading the middle was never tried).
        let head_only = Excerpt::new(slice(0..HEAD_BYTES), Vec::new(), len);
        assert_eq!(duration_of(head_only), None);
    }

    #[test]
    fn truncated_or_corrupted_recordings_have_no_duration_or_a_plausible_one() {
        for (kind, bytes, _) in FIXTURES {
            for cut in [0, 1, 4, 12, 40, bytes.len() / 3, bytes.len() / 2] {
                // Whatever a cut file gives, it is no panic and no error.
                if let Some(seconds) = seconds_of(&bytes[..cut]) {
                    assert!(seconds <= MAX_SECONDS, "{kind} cut at {cut}: {seconds}");
                }
            }
            // Bytes overwritten all through it, deterministically.
            let mut state = 0x2545_f491_u32;
            for _ in 0..20 {
                let mut bad = bytes.to_vec();
                for _ in 0..8 {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    let at = state as usize % bad.len();
                    bad[at] = (state >> 24) as u8;
                }
                let _ = seconds_of(&bad);
            }
        }
    }

    #[test]
    fn headers_declaring_gigabytes_or_nonsense_give_no_duration() {
        // An `ftyp`, then a `moov` declaring 4 GB that is not there.
        let mut mp4 = b"\0\0\0\x14ftypisom\0\0\x02\0isom".to_vec();
        mp4.extend(u32::MAX.to_be_bytes());
        mp4.extend(b"moov");
        mp4.extend([0; 64]);
        assert_eq!(seconds_of(&mp4), None);
        // A WAV whose `data` chunk claims 4 GB of samples at one byte a second.
        let mut wav = b"RIFF\xff\xff\xff\xffWAVEfmt \x10\0\0\0\x01\0\x01\0".to_vec();
        wav.extend(1u32.to_le_bytes()); // one sample a second
        wav.extend(1u32.to_le_bytes()); // one byte a second
        wav.extend([1, 0, 8, 0]);
        wav.extend(b"data\xff\xff\xff\xff");
        wav.extend([0x80; 64]);
        assert_eq!(seconds_of(&wav), None, "longer than a week");
        for junk in [
            &b""[..],
            b"not a recording at all",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
        ] {
            assert_eq!(seconds_of(junk), None);
        }
    }

    #[test]
    fn audio_and_video_are_timed_and_nothing_else() {
        assert!(has_duration(Some("audio/ogg")));
        assert!(has_duration(Some("video/mp4")));
        assert!(!has_duration(Some("image/png")));
        assert!(!has_duration(None));
    }

    #[test]
    fn a_small_file_is_read_in_one_range_and_a_large_one_by_its_ends() {
        assert_eq!(Excerpt::ranges(1000), (0..1000, None));
        assert_eq!(Excerpt::ranges(HEAD_BYTES), (0..HEAD_BYTES, None));
        assert_eq!(
            Excerpt::ranges(HEAD_BYTES + 10),
            (0..HEAD_BYTES, Some(HEAD_BYTES..HEAD_BYTES + 10))
        );
        let big = 25 * 1024 * 1024;
        assert_eq!(
            Excerpt::ranges(big),
            (0..HEAD_BYTES, Some(big - TAIL_BYTES..big))
        );
    }

    #[test]
    fn the_window_reads_the_ends_and_refuses_the_middle() {
        let mut window = Window {
            excerpt: Excerpt::new(vec![1; 4], vec![2; 4], 100),
            position: 0,
        };
        let mut buf = [0; 8];
        assert_eq!(window.read(&mut buf).unwrap(), 4);
        assert!(window.read(&mut buf).is_err(), "the middle was never read");
        window.seek(SeekFrom::End(-2)).unwrap();
        assert_eq!(window.read(&mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], [2, 2]);
        assert_eq!(window.read(&mut buf).unwrap(), 0, "the end");
        assert!(window.seek(SeekFrom::Current(-1000)).is_err());
    }

    #[test]
    fn a_store_answering_more_than_asked_is_cut_to_the_windows() {
        let len = 10 * HEAD_BYTES;
        let excerpt = Excerpt::new(vec![0; 3 * HEAD_BYTES as usize], vec![0; len as usize], len);
        assert_eq!(excerpt.head.len() as u64, HEAD_BYTES);
        assert_eq!(excerpt.tail.len() as u64, TAIL_BYTES);
    }
}
