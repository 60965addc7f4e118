//! Follows one container's rotated log files (`runtime::logfile`) from a cursor:
//! the inode and byte offset of the next unread line. When `container.log` has been
//! renamed to `.1` (or further), the rest of the old file is read first, found by
//! its inode, then every newer file: a rotation loses nothing. A file rotated away
//! before it was read is counted in `lost_files`. Only whole lines are taken.
//! Inode numbers are reused once a file is deleted, so a file is known by its inode
//! and a checksum of its first line (which never changes: the files only grow).

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runtime::logfile::{log_files, LOG_FILE};

/// Where reading resumes; persisted once what precedes it was delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub ino: u64,
    pub offset: u64,
    /// Lines read so far (the next line's number is `lines + 1`).
    pub lines: u64,
    pub lost_files: u64,
    /// crc32 of the cursor file's first line; 0 while it has none.
    #[serde(default)]
    pub head: u32,
    /// When this numbering began (wall ms; see `LogBatch::epoch`).
    #[serde(default)]
    pub epoch: u64,
}

/// crc32 of a file's first whole line (at most 256 bytes read); 0 if it has none.
fn head_of(path: &Path) -> u32 {
    let mut buf = [0u8; 256];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    buf[..n]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(0, |end| crc32fast::hash(&buf[..end]))
}

/// Reads new whole lines after `cursor`, at most about `max_bytes`. Returns the
/// lines and the cursor after them.
pub fn read_new(dir: &Path, cursor: Cursor, max_bytes: usize) -> (Vec<String>, Cursor) {
    let files: Vec<(PathBuf, u64, u64)> = log_files(dir)
        .into_iter()
        .filter_map(|p| {
            let m = fs::metadata(&p).ok()?;
            Some((p, m.ino(), m.len()))
        })
        .collect();
    let mut cur = cursor;
    let mut out = Vec::new();
    let known =
        |f: &(PathBuf, u64, u64)| f.1 == cur.ino && (cur.head == 0 || head_of(&f.0) == cur.head);
    let Some(start) = files.iter().position(known) else {
        // First look, or the cursor's file is gone: start at the oldest file there is.
        if cur.ino != 0 {
            cur.lost_files += 1;
        }
        let Some(first) = files.first() else {
            return (out, cur);
        };
        cur.ino = first.1;
        cur.offset = 0;
        cur.head = 0;
        return read_from(&files, 0, cur, max_bytes, out);
    };
    if files[start].2 < cur.offset {
        // Truncated in place (max_files = 1): what was there is gone.
        cur.lost_files += 1;
        cur.offset = 0;
    }
    read_from(&files, start, cur, max_bytes, std::mem::take(&mut out))
}

fn read_from(
    files: &[(PathBuf, u64, u64)],
    mut i: usize,
    mut cur: Cursor,
    max_bytes: usize,
    mut out: Vec<String>,
) -> (Vec<String>, Cursor) {
    let mut budget = max_bytes;
    loop {
        let (path, ino, _) = &files[i];
        let (lines, used, whole) = read_lines(path, cur.offset, budget);
        cur.offset += used as u64;
        cur.lines += lines.len() as u64;
        out.extend(lines);
        budget = budget.saturating_sub(used);
        // Move to the next file only when this one is finished: it is not the
        // current file (it was rotated: it will not grow) and it was read to its end.
        let rotated = path.file_name().is_some_and(|n| n != LOG_FILE);
        if cur.head == 0 {
            cur.head = head_of(path);
        }
        if budget == 0 || !whole || !rotated || i + 1 >= files.len() {
            cur.ino = *ino;
            return (out, cur);
        }
        i += 1;
        cur.ino = files[i].1;
        cur.offset = 0;
        cur.head = 0;
    }
}

/// Whole lines from `offset`, at most `budget` bytes: (lines, bytes used, reached end).
fn read_lines(path: &Path, offset: u64, budget: usize) -> (Vec<String>, usize, bool) {
    let Ok(mut f) = File::open(path) else {
        return (Vec::new(), 0, true);
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return (Vec::new(), 0, true);
    }
    let mut buf = Vec::new();
    let _ = (&mut f).take(budget as u64 + 1).read_to_end(&mut buf);
    let reached_end = buf.len() <= budget;
    buf.truncate(budget);
    let Some(last_nl) = buf.iter().rposition(|b| *b == b'\n') else {
        return (Vec::new(), 0, reached_end && buf.is_empty());
    };
    let used = last_nl + 1;
    let lines = buf[..last_nl]
        .split(|b| *b == b'\n')
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    (lines, used, reached_end && used == buf.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::logfile::{RotatingLog, Stream};

    fn texts(lines: &[String]) -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| crate::runtime::logfile::parse_line(l).map(|p| p.2.to_string()))
            .collect()
    }

    #[test]
    fn tail_follows_across_rotations_without_loss() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RotatingLog::open(dir.path(), 4096, 5).unwrap();
        let mut cur = Cursor::default();
        let mut got = Vec::new();
        let mut n = 0;
        for round in 0..10 {
            // Enough lines per round to rotate one or two times between reads.
            for _ in 0..(100 + round * 7) {
                log.feed(
                    Stream::Stdout,
                    format!("line {n:05} xxxxxxxxxxxxxxxxxxxx\n").as_bytes(),
                )
                .unwrap();
                n += 1;
            }
            loop {
                let (lines, next) = read_new(dir.path(), cur, 3000);
                cur = next;
                if lines.is_empty() {
                    break;
                }
                got.extend(texts(&lines));
            }
        }
        let want: Vec<String> = (0..n)
            .map(|i| format!("line {i:05} xxxxxxxxxxxxxxxxxxxx"))
            .collect();
        assert_eq!(got, want);
        assert_eq!(cur.lost_files, 0);
        assert_eq!(cur.lines, n as u64);
    }

    #[test]
    fn tail_counts_a_file_rotated_away_unread() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RotatingLog::open(dir.path(), 4096, 2).unwrap();
        log.feed(Stream::Stdout, b"first\n").unwrap();
        let (lines, cur) = read_new(dir.path(), Cursor::default(), 1 << 16);
        assert_eq!(texts(&lines), vec!["first"]);
        for i in 0..1000 {
            log.feed(
                Stream::Stdout,
                format!("filler {i} ..........\n").as_bytes(),
            )
            .unwrap();
        }
        let (_, cur) = read_new(dir.path(), cur, 1 << 20);
        assert_eq!(cur.lost_files, 1);
    }

    #[test]
    fn tail_keeps_a_partial_line_for_later() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LOG_FILE), "a\nb").unwrap();
        let (lines, cur) = read_new(dir.path(), Cursor::default(), 1 << 16);
        assert_eq!(lines, vec!["a"]);
        fs::write(dir.path().join(LOG_FILE), "a\nbc\n").unwrap();
        let (lines, _) = read_new(dir.path(), cur, 1 << 16);
        assert_eq!(lines, vec!["bc"]);
    }
}
