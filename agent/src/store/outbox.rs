//! The outbox: an append-only queue of reports on disk, in order, numbered, bounded.
//!
//! Everything the agent has to tell (events now; status, logs and metrics through
//! the MQTT link later) is appended here first, so a crash, `kill -9`, a reboot or a
//! long offline spell loses nothing that was synced, and a reader sees the reports in
//! the order they happened, each under a sequence number that a receiver can use to
//! drop duplicates. The outbox does not know what a payload means.
//!
//! ```text
//! <dir>/
//!   <first seq, 16 hex digits>.seg   segments, oldest first; only the newest grows
//!   acked                            "<seq>\n": everything up to it was delivered
//! ```
//!
//! A record is `len: u32 LE | crc32(seq ‖ payload): u32 LE | seq: u64 LE | payload`.
//! On open, the newest segment is cut back to its last whole record (a write torn by
//! a crash); a bad record inside an older segment ends that segment's reading, and
//! the numbering skips the gap. [`Outbox::sync`] makes appended records durable
//! (`fdatasync`); the caller syncs once per batch, not per record.
//!
//! Bounds: a segment is closed once it passes `segment_bytes`; when all segments
//! together pass `max_bytes`, the oldest segments are deleted, delivered or not (the
//! count of reports lost that way is kept and logged): a full outbox must never fill
//! the disk that the workloads need. [`Outbox::ack`] deletes segments whose records
//! were all delivered.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{sync_dir, write_atomic};

/// Header bytes before a record's payload.
const HEADER: usize = 16;
/// Largest payload accepted (a report is small; this catches corruption on read).
pub const MAX_PAYLOAD: usize = 1024 * 1024;
const ACKED_FILE: &str = "acked";
const SEGMENT_SUFFIX: &str = ".seg";

/// Size bounds of an outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    /// All segments together; past it, the oldest segments go.
    pub max_bytes: u64,
    /// A segment is closed once it is this large.
    pub segment_bytes: u64,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        Self {
            max_bytes: 8 * 1024 * 1024,
            segment_bytes: 512 * 1024,
        }
    }
}

/// One stored report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// What went wrong, with the file.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("outbox: a report of {0} bytes is larger than the {MAX_PAYLOAD}-byte limit")]
    TooLarge(usize),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone)]
struct Segment {
    first_seq: u64,
    path: PathBuf,
    bytes: u64,
    /// Last sequence number in it (`first_seq - 1` when empty).
    last_seq: u64,
}

/// The writer's handle: one per outbox directory (the agent).
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    limits: OutboxLimits,
    segments: Vec<Segment>,
    writer: Option<File>,
    next_seq: u64,
    /// Every report up to this number has been synced.
    durable: u64,
    acked: u64,
    dropped: u64,
}

impl Outbox {
    /// Opens (creating) the outbox in `dir`, repairing a torn tail.
    pub fn open(dir: &Path, limits: OutboxLimits) -> Result<Self, OutboxError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let acked = read_acked(dir);
        let mut segments = Vec::new();
        let paths = segment_paths(dir).map_err(io_err(dir))?;
        let count = paths.len();
        for (i, (first_seq, path)) in paths.into_iter().enumerate() {
            let newest = i + 1 == count;
            let scan = scan_segment(&path, first_seq, |_| {}).map_err(io_err(&path))?;
            if newest && scan.good_bytes < scan.file_bytes {
                tracing::warn!(
                    segment = %path.display(),
                    kept = scan.good_bytes,
                    cut = scan.file_bytes - scan.good_bytes,
                    "outbox: cutting a torn tail"
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                f.set_len(scan.good_bytes).map_err(io_err(&path))?;
                f.sync_all().map_err(io_err(&path))?;
            } else if scan.good_bytes < scan.file_bytes {
                tracing::error!(
                    segment = %path.display(),
                    at = scan.good_bytes,
                    "outbox: a damaged record ends this segment's reading"
                );
            }
            segments.push(Segment {
                first_seq,
                path,
                bytes: scan.good_bytes,
                last_seq: scan.last_seq,
            });
        }
        let next_seq = segments
            .iter()
            .map(|s| s.last_seq + 1)
            .max()
            .unwrap_or(1)
            .max(acked + 1);
        // Reports deleted undelivered before this open (the bound, while another
        // process or an earlier run wrote): the gap between the acked mark and the
        // oldest stored report.
        let dropped = segments
            .first()
            .map_or(0, |s| s.first_seq.saturating_sub(acked + 1));
        let mut outbox = Self {
            dir: dir.to_path_buf(),
            limits,
            segments,
            writer: None,
            next_seq,
            durable: next_seq - 1,
            acked,
            dropped,
        };
        outbox.trim_acked()?;
        Ok(outbox)
    }

    /// The number the next appended report gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Every report up to this number survives a power loss. A sender publishes only
    /// these: an unsynced report lost in a crash has its number given again to the
    /// next report, and a receiver dropping duplicates by number would drop that one.
    pub fn durable_seq(&self) -> u64 {
        self.durable
    }

    /// Everything up to this number was delivered.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Reports deleted undelivered because the outbox was full, since open.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The number of the oldest report still stored (delivered or not); `None` before
    /// the first segment. Anything below it that was not acked, the bound deleted.
    pub fn first_seq(&self) -> Option<u64> {
        self.segments.first().map(|s| s.first_seq)
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Appends one report (not yet durable: see [`Outbox::sync`]); returns its number.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, OutboxError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(OutboxError::TooLarge(payload.len()));
        }
        let need_new = self
            .segments
            .last()
            .is_none_or(|s| s.bytes >= self.limits.segment_bytes);
        if need_new {
            self.start_segment()?;
        }
        let seq = self.next_seq;
        let record = encode(seq, payload);
        let Some(seg) = self.segments.last_mut() else {
            return Err(OutboxError::Io {
                path: self.dir.clone(),
                source: io::Error::other("no segment"),
            });
        };
        if self.writer.is_none() {
            let f = OpenOptions::new()
                .append(true)
                .open(&seg.path)
                .map_err(io_err(&seg.path))?;
            self.writer = Some(f);
        }
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = w.write_all(&record) {
                // Leave no half record behind for the next append to follow.
                let _ = w.set_len(seg.bytes);
                return Err(OutboxError::Io {
                    path: seg.path.clone(),
                    source: e,
                });
            }
        }
        seg.bytes += record.len() as u64;
        seg.last_seq = seq;
        self.next_seq += 1;
        self.enforce_bound()?;
        Ok(seq)
    }

    /// Makes every appended report durable.
    pub fn sync(&mut self) -> Result<(), OutboxError> {
        if let (Some(w), Some(seg)) = (self.writer.as_ref(), self.segments.last()) {
            w.sync_data().map_err(io_err(&seg.path))?;
        }
        self.durable = self.next_seq - 1;
        Ok(())
    }

    /// Up to `max` reports after `after`, in order.
    pub fn read_after(&self, after: u64, max: usize) -> Result<Vec<OutboxEntry>, OutboxError> {
        read_segments(&self.segments, after, max)
    }

    /// Records that everything up to `seq` was delivered; deletes what is no longer
    /// needed. An ack below the current one changes nothing.
    pub fn ack(&mut self, seq: u64) -> Result<(), OutboxError> {
        let seq = seq.min(self.next_seq.saturating_sub(1));
        if seq <= self.acked {
            return Ok(());
        }
        let path = self.dir.join(ACKED_FILE);
        write_atomic(&path, format!("{seq}\n").as_bytes()).map_err(io_err(&path))?;
        self.acked = seq;
        self.trim_acked()
    }

    fn start_segment(&mut self) -> Result<(), OutboxError> {
        if let (Some(w), Some(seg)) = (self.writer.take(), self.segments.last()) {
            w.sync_data().map_err(io_err(&seg.path))?;
        }
        let path = self
            .dir
            .join(format!("{:016x}{SEGMENT_SUFFIX}", self.next_seq));
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        self.segments.push(Segment {
            first_seq: self.next_seq,
            path,
            bytes: 0,
            last_seq: self.next_seq - 1,
        });
        self.writer = Some(f);
        Ok(())
    }

    /// Deletes the oldest segments (never the one being written) while over the bound.
    fn enforce_bound(&mut self) -> Result<(), OutboxError> {
        while self.bytes() > self.limits.max_bytes && self.segments.len() > 1 {
            let seg = self.segments.remove(0);
            let undelivered = seg
                .last_seq
                .saturating_sub(self.acked.max(seg.first_seq - 1));
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
            if undelivered > 0 {
                self.dropped += undelivered;
                tracing::warn!(
                    reports = undelivered,
                    first = seg.first_seq,
                    last = seg.last_seq,
                    "outbox full: oldest undelivered reports deleted"
                );
            }
        }
        Ok(())
    }

    /// Deletes segments all of whose records were delivered (never the newest).
    fn trim_acked(&mut self) -> Result<(), OutboxError> {
        while self.segments.len() > 1 && self.segments[0].last_seq <= self.acked {
            let seg = self.segments.remove(0);
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
        }
        Ok(())
    }
}

/// Reads up to `max` reports after `after` from the outbox in `dir` without changing
/// it (another process may be appending: a record still being written is not seen).
pub fn read_outbox(dir: &Path, after: u64, max: usize) -> Result<Vec<OutboxEntry>, OutboxError> {
    let paths = match segment_paths(dir) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let segments: Vec<Segment> = paths
        .into_iter()
        .map(|(first_seq, path)| Segment {
            first_seq,
            path,
            bytes: u64::MAX,
            last_seq: u64::MAX,
        })
        .collect();
    read_segments(&segments, after, max)
}

fn read_segments(
    segments: &[Segment],
    after: u64,
    max: usize,
) -> Result<Vec<OutboxEntry>, OutboxError> {
    let mut out = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        let next_first = segments.get(i + 1).map(|s| s.first_seq);
        if seg.last_seq <= after || next_first.is_some_and(|n| n <= after + 1) {
            continue;
        }
        let scan = scan_segment(&seg.path, seg.first_seq, |e| {
            if e.seq > after && out.len() < max {
                out.push(e);
            }
        });
        match scan {
            Ok(_) => {}
            // Trimmed between listing and reading: its reports were delivered.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&seg.path)(e)),
        }
        if out.len() >= max {
            break;
        }
    }
    Ok(out)
}

/// The `acked` mark of the outbox in `dir` (0: none).
pub fn read_acked(dir: &Path) -> u64 {
    fs::read_to_string(dir.join(ACKED_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Segments in `dir`, oldest first.
fn segment_paths(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(hex) = name.strip_suffix(SEGMENT_SUFFIX) else {
            continue;
        };
        if let Ok(first) = u64::from_str_radix(hex, 16) {
            out.push((first, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn encode(seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(HEADER + payload.len());
    rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    rec.extend_from_slice(&checksum(seq, payload).to_le_bytes());
    rec.extend_from_slice(&seq.to_le_bytes());
    rec.extend_from_slice(payload);
    rec
}

fn checksum(seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

struct Scan {
    good_bytes: u64,
    file_bytes: u64,
    last_seq: u64,
}

/// Reads a segment's whole records in order, giving each to `each`; stops at the
/// first record that is short, damaged or out of order.
fn scan_segment(
    path: &Path,
    first_seq: u64,
    mut each: impl FnMut(OutboxEntry),
) -> io::Result<Scan> {
    let mut f = File::open(path)?;
    let file_bytes = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(0))?;
    let mut data = Vec::with_capacity(usize::try_from(file_bytes).unwrap_or(0));
    f.read_to_end(&mut data)?;
    let mut at = 0usize;
    let mut last_seq = first_seq.saturating_sub(1);
    while data.len() - at >= HEADER {
        let word = |o: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&data[at + o..at + o + 4]);
            u32::from_le_bytes(b)
        };
        let len = word(0) as usize;
        let crc = word(4);
        let mut sb = [0u8; 8];
        sb.copy_from_slice(&data[at + 8..at + 16]);
        let seq = u64::from_le_bytes(sb);
        if len > MAX_PAYLOAD || data.len() - at - HEADER < len || seq <= last_seq {
            break;
        }
        let payload = &data[at + HEADER..at + HEADER + len];
        if checksum(seq, payload) != crc {
            break;
        }
        each(OutboxEntry {
            seq,
            payload: payload.to_vec(),
        });
        last_seq = seq;
        at += HEADER + len;
    }
    Ok(Scan {
        good_bytes: at as u64,
        file_bytes: data.len() as u64,
        last_seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> OutboxLimits {
        OutboxLimits {
            max_bytes: 1000,
            segment_bytes: 200,
        }
    }

    fn payloads(entries: &[OutboxEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.payload).into_owned())
            .collect()
    }

    #[test]
    fn outbox_appends_in_order_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), OutboxLimits::default()).unwrap();
        for i in 0..5 {
            assert_eq!(o.append(format!("r{i}").as_bytes()).unwrap(), i + 1);
        }
        assert_eq!(o.durable_seq(), 0);
        o.sync().unwrap();
        assert_eq!(o.durable_seq(), 5);
        drop(o);
        let o = Outbox::open(dir.path(), OutboxLimits::default()).unwrap();
        assert_eq!(o.next_seq(), 6);
        assert_eq!(o.durable_seq(), 5);
        let all = o.read_after(0, 100).unwrap();
        assert_eq!(payloads(&all), ["r0", "r1", "r2", "r3", "r4"]);
        assert_eq!(payloads(&o.read_after(3, 1).unwrap()), ["r3"]);
        assert_eq!(read_outbox(dir.path(), 0, 100).unwrap(), all);
    }

    #[test]
    fn outbox_cuts_a_torn_tail_and_numbers_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), OutboxLimits::default()).unwrap();
        o.append(b"whole").unwrap();
        o.append(b"torn away").unwrap();
        o.sync().unwrap();
        let seg = segment_paths(dir.path()).unwrap()[0].1.clone();
        let len = fs::metadata(&seg).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        drop(o);
        // A reader meanwhile sees only whole records.
        assert_eq!(
            payloads(&read_outbox(dir.path(), 0, 10).unwrap()),
            ["whole"]
        );
        let mut o = Outbox::open(dir.path(), OutboxLimits::default()).unwrap();
        assert_eq!(o.append(b"next").unwrap(), 2);
        assert_eq!(payloads(&o.read_after(0, 10).unwrap()), ["whole", "next"]);
    }

    #[test]
    fn outbox_flipped_byte_is_not_read_as_a_report() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), OutboxLimits::default()).unwrap();
        o.append(b"aaaa").unwrap();
        o.append(b"bbbb").unwrap();
        o.sync().unwrap();
        drop(o);
        let seg = segment_paths(dir.path()).unwrap()[0].1.clone();
        let mut data = fs::read(&seg).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0x40;
        fs::write(&seg, data).unwrap();
        let o = Outbox::open(dir.path(), OutboxLimits::default()).unwrap();
        assert_eq!(payloads(&o.read_after(0, 10).unwrap()), ["aaaa"]);
    }

    #[test]
    fn outbox_ack_deletes_delivered_segments_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), small()).unwrap();
        for i in 0..20 {
            o.append(format!("report {i:02}").as_bytes()).unwrap();
        }
        let before = segment_paths(dir.path()).unwrap().len();
        assert!(before > 2, "{before} segments");
        o.ack(10).unwrap();
        assert!(segment_paths(dir.path()).unwrap().len() < before);
        let left = o.read_after(10, 100).unwrap();
        assert_eq!(left.first().map(|e| e.seq), Some(11));
        assert_eq!(left.len(), 10);
        // The ack survives a restart; an older ack changes nothing.
        drop(o);
        let mut o = Outbox::open(dir.path(), small()).unwrap();
        assert_eq!(o.acked(), 10);
        o.ack(3).unwrap();
        assert_eq!(o.acked(), 10);
        assert_eq!(o.next_seq(), 21);
    }

    #[test]
    fn outbox_full_drops_the_oldest_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), small()).unwrap();
        for i in 0..200 {
            o.append(format!("report {i:03}").as_bytes()).unwrap();
        }
        assert!(o.bytes() <= 1000 + 200, "{} bytes", o.bytes());
        assert!(o.dropped() > 0);
        let left = o.read_after(0, 1000).unwrap();
        assert_eq!(left.last().map(|e| e.seq), Some(200));
        assert_eq!(o.dropped() + left.len() as u64, 200);
        // What is left is in order, with no gap.
        assert!(left.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        // The loss is still counted after a restart: it is the gap below the oldest.
        let dropped = o.dropped();
        drop(o);
        assert_eq!(
            Outbox::open(dir.path(), small()).unwrap().dropped(),
            dropped
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 128,
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]

        /// Whatever a crash or a bad sector does to the files (the newest segment cut
        /// anywhere, one bit flipped anywhere), reopening never yields a report that was
        /// not written under that number, numbers only grow, and appending goes on.
        #[test]
        fn outbox_damage_never_yields_a_wrong_report(
            written in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120), 1..40),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            flip in proptest::option::of((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<proptest::sample::Index>(), 0u8..8)),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let limits = OutboxLimits { max_bytes: 1 << 20, segment_bytes: 400 };
            let mut o = Outbox::open(dir.path(), limits).unwrap();
            for p in &written {
                o.append(p).unwrap();
            }
            o.sync().unwrap();
            drop(o);
            let segs = segment_paths(dir.path()).unwrap();
            if let Some((_, newest)) = segs.last() {
                let len = fs::metadata(newest).unwrap().len() as usize;
                let keep = cut.index(len + 1) as u64;
                OpenOptions::new().write(true).open(newest).unwrap().set_len(keep).unwrap();
            }
            if let Some((seg, at, bit)) = flip {
                let (_, path) = &segs[seg.index(segs.len())];
                let mut data = fs::read(path).unwrap();
                if !data.is_empty() {
                    let i = at.index(data.len());
                    data[i] ^= 1 << bit;
                    fs::write(path, data).unwrap();
                }
            }
            let mut o = Outbox::open(dir.path(), limits).unwrap();
            let read = o.read_after(0, usize::MAX).unwrap();
            let mut last = 0;
            for e in &read {
                proptest::prop_assert!(e.seq > last, "seq {} after {}", e.seq, last);
                last = e.seq;
                let original = usize::try_from(e.seq - 1).ok().and_then(|i| written.get(i));
                proptest::prop_assert_eq!(Some(&e.payload), original, "report {} changed", e.seq);
            }
            let next = o.append(b"after").unwrap();
            proptest::prop_assert!(next > last);
            let again = o.read_after(last, 10).unwrap();
            proptest::prop_assert_eq!(again.last().map(|e| e.seq), Some(next));
        }
    }

    #[test]
    fn outbox_refuses_an_oversized_report_and_keeps_going() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), OutboxLimits::default()).unwrap();
        let err = o.append(&vec![0u8; MAX_PAYLOAD + 1]).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        assert_eq!(o.append(b"ok").unwrap(), 1);
    }
}
