//! The telemetry spool: metrics reports (and any other telemetry item with no file
//! behind it; log lines wait in their own files) on disk until the broker
//! acknowledged them, so an agent restart, a `kill -9` or a reboot during an outage
//! loses none. It is a second [`Outbox`] (same segment format, torn-tail cut on
//! open, byte bound dropping the oldest segments with a count, `ack`), in its own
//! directory with its own bound (`telemetry.spool_max_bytes`), apart from the state
//! outbox so that telemetry can never evict a state report (design D28).
//!
//! ```text
//! <state>/telemetry/spool/   <seq>.seg, acked   (see crate::store::outbox)
//! record payload             topic length: u16 LE | topic | message
//! ```
//!
//! A spool that cannot be opened or written (a full or read-only disk) never stops
//! telemetry: the item is kept in memory only, the failure is logged once and
//! counted, and the next append tries again.

use std::path::{Path, PathBuf};

use crate::store::outbox::{Outbox, OutboxEntry, OutboxLimits};

/// One message read back from the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    pub seq: u64,
    pub topic: String,
    pub payload: Vec<u8>,
}

/// The spool, or why there is none right now.
pub struct Spool {
    dir: PathBuf,
    limits: OutboxLimits,
    outbox: Option<Outbox>,
    /// Appends that failed since the last one that worked (kept in memory only).
    failing: u64,
    /// Appends that failed, in all.
    pub failed: u64,
}

/// The spool's directory under a state directory.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("telemetry").join("spool")
}

/// Segments of a sixteenth of the bound (at least 512 bytes, a few reports): the
/// bound drops at most that much at once.
fn limits(max_bytes: u64) -> OutboxLimits {
    OutboxLimits {
        max_bytes,
        segment_bytes: (max_bytes / 16).max(512),
    }
}

impl Spool {
    /// Opens (creating) the spool in `dir`; a failure is logged and leaves a spool
    /// that keeps trying on each append.
    pub fn open(dir: &Path, max_bytes: u64) -> Self {
        let limits = limits(max_bytes);
        let outbox = match Outbox::open(dir, limits) {
            Ok(o) => Some(o),
            Err(e) => {
                tracing::warn!(error = %e, "telemetry: spool not opened; metrics kept in memory only");
                None
            }
        };
        Self {
            dir: dir.to_path_buf(),
            limits,
            outbox,
            failing: 0,
            failed: 0,
        }
    }

    /// What it holds that the broker has not acknowledged, in order.
    pub fn load(&self) -> Vec<Spooled> {
        let Some(o) = &self.outbox else {
            return Vec::new();
        };
        match o.read_after(o.acked(), usize::MAX) {
            Ok(entries) => decode_all(entries),
            Err(e) => {
                tracing::warn!(error = %e, "telemetry: spool not read");
                Vec::new()
            }
        }
    }

    /// The number the next stored item gets (0: none can be stored now).
    pub fn next_seq(&mut self) -> u64 {
        self.reopen();
        self.outbox.as_ref().map_or(0, Outbox::next_seq)
    }

    /// Stores one message durably (`fdatasync`); its number, or `None` when the disk
    /// refused (logged when it starts and when it ends, counted).
    pub fn append(&mut self, topic: &str, payload: &[u8]) -> Option<u64> {
        self.reopen();
        let record = encode(topic, payload);
        let res = match self.outbox.as_mut() {
            Some(o) => o.append(&record).and_then(|seq| o.sync().map(|()| seq)),
            None => return self.fail("spool not open"),
        };
        match res {
            Ok(seq) => {
                if self.failing > 0 {
                    tracing::info!(
                        kept_in_memory = self.failing,
                        "telemetry: spool writable again"
                    );
                    self.failing = 0;
                }
                Some(seq)
            }
            Err(e) => self.fail(&e.to_string()),
        }
    }

    fn fail(&mut self, why: &str) -> Option<u64> {
        if self.failing == 0 {
            tracing::warn!(dir = %self.dir.display(), error = why,
                "telemetry: spool append failed; metrics kept in memory only until it works again");
        }
        self.failing += 1;
        self.failed += 1;
        None
    }

    fn reopen(&mut self) {
        if self.outbox.is_none() {
            self.outbox = Outbox::open(&self.dir, self.limits).ok();
        }
    }

    /// Everything up to `seq` was acknowledged: it leaves the disk.
    pub fn ack(&mut self, seq: u64) {
        if let Some(o) = self.outbox.as_mut() {
            if let Err(e) = o.ack(seq) {
                tracing::debug!(error = %e, "telemetry: spool ack not stored (resent after a restart)");
            }
        }
    }

    /// Acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.outbox.as_ref().map_or(0, Outbox::acked)
    }

    /// The oldest number still stored: anything queued below it was dropped by the
    /// bound.
    pub fn oldest(&self) -> Option<u64> {
        self.outbox.as_ref().and_then(Outbox::first_seq)
    }

    /// Messages the bound deleted unacknowledged (since open, plus the gap an earlier
    /// run left).
    pub fn dropped(&self) -> u64 {
        self.outbox.as_ref().map_or(0, Outbox::dropped)
    }
}

/// What the spool of `state_dir` holds unacknowledged, read without changing it
/// (another process may be writing: a record being written is not seen).
pub fn read(state_dir: &Path) -> Result<Vec<Spooled>, String> {
    let dir = dir(state_dir);
    let acked = crate::store::outbox::read_acked(&dir);
    let entries =
        crate::store::outbox::read_outbox(&dir, acked, usize::MAX).map_err(|e| e.to_string())?;
    Ok(decode_all(entries))
}

fn encode(topic: &str, payload: &[u8]) -> Vec<u8> {
    let t = topic.as_bytes();
    let len = u16::try_from(t.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(2 + t.len() + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&t[..usize::from(len)]);
    out.extend_from_slice(payload);
    out
}

/// The spooled items of `entries` (a record that does not decode is skipped).
fn decode_all(entries: Vec<OutboxEntry>) -> Vec<Spooled> {
    entries
        .into_iter()
        .filter_map(|e| {
            let (topic, payload) = decode(&e.payload)?;
            Some(Spooled {
                seq: e.seq,
                topic,
                payload,
            })
        })
        .collect()
}

fn decode(record: &[u8]) -> Option<(String, Vec<u8>)> {
    let len = usize::from(u16::from_le_bytes([*record.first()?, *record.get(1)?]));
    let topic = std::str::from_utf8(record.get(2..2 + len)?).ok()?;
    Some((topic.to_string(), record.get(2 + len..)?.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn seqs(s: &Spool) -> Vec<u64> {
        s.load().iter().map(|e| e.seq).collect()
    }

    #[test]
    fn telemetry_spool_reloads_unacked_in_order_after_reopen() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spool::open(d.path(), 1 << 20);
        for i in 0..5u8 {
            assert_eq!(s.append("t/metrics", &[i]), Some(u64::from(i) + 1));
        }
        s.ack(2);
        drop(s);
        let s = Spool::open(d.path(), 1 << 20);
        let got = s.load();
        assert_eq!(got.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(got[0].topic, "t/metrics");
        assert_eq!(got[0].payload, [2]);
        assert_eq!(s.dropped(), 0);
    }

    #[test]
    fn telemetry_spool_torn_tail_reloads_cleanly() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spool::open(d.path(), 1 << 20);
        for i in 0..4u8 {
            s.append("t/metrics", &[i; 100]).unwrap();
        }
        drop(s);
        let seg = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "seg"))
            .unwrap();
        // A crash in the middle of the fourth record's write.
        let len = std::fs::metadata(&seg).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 50)
            .unwrap();
        let mut s = Spool::open(d.path(), 1 << 20);
        let got = s.load();
        assert_eq!(got.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(got.iter().all(|e| e.payload.len() == 100));
        // Numbering goes on from the last whole record.
        assert_eq!(s.append("t/metrics", b"next"), Some(4));
        assert_eq!(seqs(&s), [1, 2, 3, 4]);
    }

    #[test]
    fn telemetry_spool_bound_drops_the_oldest_and_counts_them() {
        let d = tempfile::tempdir().unwrap();
        let max = 16 * 1024;
        let mut s = Spool::open(d.path(), max);
        for i in 0..200u32 {
            s.append("t/metrics", &[i as u8; 500]).unwrap();
        }
        let left = seqs(&s);
        assert_eq!(left.last(), Some(&200));
        assert!(left.windows(2).all(|w| w[1] == w[0] + 1), "{left:?}");
        assert!(s.dropped() > 0);
        assert_eq!(s.dropped() + left.len() as u64, 200);
        assert_eq!(s.oldest(), left.first().copied());
        let on_disk: u64 = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(on_disk <= max + max / 16 + 1024, "{on_disk} bytes");
        // The count survives a restart (the gap below the oldest stored).
        let dropped = s.dropped();
        drop(s);
        assert_eq!(Spool::open(d.path(), max).dropped(), dropped);
    }

    /// A full disk (a 64 KiB tmpfs filled up; needs root, as the other real tests):
    /// the append fails without a panic, is counted, and works again once there is room.
    #[test]
    fn telemetry_spool_full_disk_is_counted_and_recovers() {
        let d = tempfile::tempdir().unwrap();
        let mnt = d.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &mnt,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=64k"),
        )
        .expect("mount a tmpfs (run as root)");
        let res = std::panic::catch_unwind(|| {
            let mut s = Spool::open(&mnt.join("spool"), 1 << 20);
            assert_eq!(s.append("t/metrics", b"before"), Some(1));
            let filler = mnt.join("filler");
            let mut f = std::fs::File::create(&filler).unwrap();
            let chunk = vec![0u8; 4096];
            while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
            drop(f);
            let big = vec![7u8; 8192];
            assert_eq!(s.append("t/metrics", &big), None);
            assert_eq!(s.append("t/metrics", &big), None);
            assert_eq!(s.failed, 2);
            std::fs::remove_file(&filler).unwrap();
            assert_eq!(s.append("t/metrics", b"after"), Some(2));
            let got: Vec<Vec<u8>> = s.load().into_iter().map(|e| e.payload).collect();
            assert_eq!(got, [b"before".to_vec(), b"after".to_vec()]);
        });
        let _ = nix::mount::umount2(&mnt, nix::mount::MntFlags::MNT_DETACH);
        if let Err(p) = res {
            std::panic::resume_unwind(p);
        }
    }

    /// A report of a gateway with 10 running containers, with figures of realistic
    /// size (a varint grows with its value).
    fn gateway_report() -> Vec<u8> {
        use skerry_core::proto::{Body, Envelope};
        use skerry_core::telemetry::{ContainerMetrics, DeviceMetrics, MetricsReport};
        let containers = (0..10)
            .map(|i| ContainerMetrics {
                task: format!("sensor-gateway-{i}-1a2b3c4d"),
                container: "main".into(),
                cpu_millis: 120,
                cpu_total_ns: 3_600_000_000_000,
                throttled_periods: 12_000,
                throttled_ns: 40_000_000_000,
                memory_bytes: 48 << 20,
                memory_peak_bytes: 52 << 20,
                memory_limit_bytes: Some(64 << 20),
                oom_kills: 0,
                pids: 12,
                restarts: 1,
                health: "HEALTHY".into(),
                state: "RUNNING".into(),
                log_lines_cut: 1_000,
                log_lines_lost: 0,
            })
            .collect();
        let r = MetricsReport {
            at_ms: 1_796_000_000_000,
            period_ms: 60_000,
            device: DeviceMetrics {
                load1_milli: 1_500,
                memory_total_bytes: 1 << 30,
                memory_available_bytes: 600 << 20,
                state_disk_free_bytes: 6 << 30,
                state_disk_total_bytes: 14 << 30,
                uptime_secs: 3_000_000,
                agent_rss_bytes: 6 << 20,
                agent_cpu_ms: 9_000_000,
                telemetry_dropped: 0,
            },
            containers,
        };
        Envelope::new("gateway-0042", 123_456, Body::Metrics(r)).encode()
    }

    /// The default bound's arithmetic (docs/telemetry.md): a 10-container gateway's
    /// record, and how many hours of reports at the default period 1 MiB holds.
    #[test]
    fn telemetry_spool_default_bound_holds_half_a_day_of_reports() {
        let cfg = crate::telemetry::TelemetryConfig::default();
        let topic = "skerry/v1/plant-a/gateway-0042/metrics";
        let record = 16 + encode(topic, &gateway_report()).len() as u64;
        let reports = cfg.spool_max_bytes / record;
        let hours = reports * cfg.publish_secs / 3600;
        eprintln!("spool record {record} B; default bound {reports} reports = {hours} h");
        assert!(hours >= 12, "{record} B a record: {hours} h");
    }

    #[test]
    fn telemetry_spool_record_round_trips() {
        let r = encode("skerry/v1/f/d/metrics", b"\x00\x01payload");
        assert_eq!(
            decode(&r),
            Some(("skerry/v1/f/d/metrics".into(), b"\x00\x01payload".to_vec()))
        );
        assert_eq!(decode(&[5]), None);
        assert_eq!(decode(&[5, 0, b'a']), None);
    }
}
