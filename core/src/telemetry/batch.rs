//! When a container's pending lines become a batch, and how it is packed: a batch
//! closes at `max_lines`, at `max_bytes` of text, or when its oldest line has waited
//! `max_wait_ms`; its lines are deflated when that saves at least a quarter.

use super::{LogLine, LogLines};

/// Batching bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRule {
    pub max_lines: usize,
    pub max_bytes: usize,
    pub max_wait_ms: u64,
}

impl BatchRule {
    /// Whether `lines` (the oldest read at `oldest_ms`) should be sent now.
    pub fn due(&self, lines: &[LogLine], oldest_ms: u64, now_ms: u64) -> bool {
        if lines.is_empty() {
            return false;
        }
        lines.len() >= self.max_lines
            || text_bytes(lines) >= self.max_bytes
            || now_ms.saturating_sub(oldest_ms) >= self.max_wait_ms
    }
}

/// Bytes of text in `lines` (what the byte bound counts).
pub fn text_bytes(lines: &[LogLine]) -> usize {
    lines.iter().map(|l| l.text.len() + l.time.len() + 8).sum()
}

/// [`pack`]ed lines with the indices of those that continue the line before them
/// (none: plain [`pack`]).
pub fn pack_grouped(lines: Vec<LogLine>, continued: Vec<u32>) -> LogLines {
    if continued.is_empty() {
        return pack(lines);
    }
    LogLines::Grouped {
        continued,
        lines: Box::new(pack(lines)),
    }
}

/// The lines plain, or deflated when that is at most three quarters of the size.
pub fn pack(lines: Vec<LogLine>) -> LogLines {
    let raw = postcard::to_allocvec(&lines).unwrap_or_default();
    if raw.len() < 256 {
        return LogLines::Plain(lines);
    }
    let packed = miniz_oxide::deflate::compress_to_vec(&raw, 6);
    if packed.len() * 4 <= raw.len() * 3 {
        LogLines::Deflated(packed)
    } else {
        LogLines::Plain(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::super::LogBatch;
    use super::*;

    fn line(i: usize) -> LogLine {
        LogLine {
            time: "2026-12-02T00:00:00.000Z".into(),
            stream: "stdout".into(),
            text: format!("request {i} served in 3 ms from /api/v1/items"),
        }
    }

    #[test]
    fn batch_due_by_count_bytes_age() {
        let r = BatchRule {
            max_lines: 3,
            max_bytes: 10_000,
            max_wait_ms: 500,
        };
        let two: Vec<_> = (0..2).map(line).collect();
        assert!(!r.due(&[], 0, 10_000));
        assert!(!r.due(&two, 0, 499));
        assert!(r.due(&two, 0, 500));
        assert!(r.due(&(0..3).map(line).collect::<Vec<_>>(), 0, 0));
        let small = BatchRule { max_bytes: 50, ..r };
        assert!(small.due(&two, 0, 0));
    }

    fn batch(lines: LogLines) -> LogBatch {
        LogBatch {
            task: "t".into(),
            container: "c".into(),
            stream: String::new(),
            group: String::new(),
            epoch: 1,
            first_line: 1,
            cut: 0,
            lost: 0,
            lines,
            lost_files: 0,
        }
    }

    #[test]
    fn batch_pack_deflates_when_it_pays_and_round_trips() {
        let lines: Vec<_> = (0..100).map(line).collect();
        let packed = pack(lines.clone());
        assert!(matches!(packed, LogLines::Deflated(_)));
        let b = batch(packed);
        assert_eq!(b.lines(1 << 20).unwrap(), lines);
        assert!(b.lines(100).is_err(), "the inflate limit holds");
        assert!(matches!(pack(vec![line(1)]), LogLines::Plain(_)));
    }

    #[test]
    fn batch_grouped_lines_round_trip_with_their_continuations() {
        let lines: Vec<_> = (0..100).map(line).collect();
        let mut b = batch(pack_grouped(lines.clone(), vec![0, 5, 6]));
        let wire = postcard::to_allocvec(&b).unwrap();
        b = postcard::from_bytes(&wire).unwrap();
        assert_eq!(b.lines(1 << 20).unwrap(), lines);
        let marked: Vec<usize> = (0..100).filter(|&i| b.continues(i)).collect();
        assert_eq!(marked, [0, 5, 6]);
        assert!(matches!(
            pack_grouped(lines, Vec::new()),
            LogLines::Deflated(_)
        ));
    }
}
