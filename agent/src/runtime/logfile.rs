//! Container log files: one line per record, `<RFC 3339 UTC time> <stream> <text>`,
//! in `container.log`, rotated by size to `container.log.1` … `.N-1` (oldest dropped).
//! The writer lives in the monitor; readers (`skerry logs`, `skerry run`) parse lines.
//! With the journald driver each record also goes to the journal ([`super::journal`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::journal::JournalWriter;

/// Name of the current log file inside a container's log directory.
pub const LOG_FILE: &str = "container.log";
/// Longest line kept whole; longer output is split into several records.
const MAX_LINE: usize = 16 * 1024;

/// Which output stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A size-capped, rotating log writer with per-stream line buffering.
pub struct RotatingLog {
    dir: PathBuf,
    max_bytes: u64,
    max_files: u32,
    file: File,
    size: u64,
    partial: [Vec<u8>; 2],
    journal: Option<JournalWriter>,
}

impl RotatingLog {
    /// Opens (appending to) `dir/container.log`.
    pub fn open(dir: &Path, max_bytes: u64, max_files: u32) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(LOG_FILE))?;
        let size = file.metadata()?.len();
        Ok(Self {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(4096),
            max_files: max_files.max(1),
            file,
            size,
            partial: [Vec::new(), Vec::new()],
            journal: None,
        })
    }

    /// Also sends every record to the journal.
    pub fn with_journal(mut self, journal: JournalWriter) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Entries the journal did not take so far.
    pub fn journal_dropped(&self) -> u64 {
        self.journal.as_ref().map_or(0, |j| j.dropped)
    }

    /// Feeds raw output; complete lines are written, a partial line is kept.
    pub fn feed(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let idx = stream as usize;
        let mut buf = std::mem::take(&mut self.partial[idx]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            // A line longer than MAX_LINE whose end arrived with this read: its first
            // parts are split off here too (marked partial), not only while it waits.
            let mut line = &buf[start..start + pos];
            while line.len() > MAX_LINE {
                self.write_record(stream, &line[..MAX_LINE], true)?;
                line = &line[MAX_LINE..];
            }
            self.write_record(stream, line, false)?;
            start += pos + 1;
        }
        while buf.len() - start >= MAX_LINE {
            self.write_record(stream, &buf[start..start + MAX_LINE], true)?;
            start += MAX_LINE;
        }
        buf.drain(..start);
        self.partial[idx] = buf;
        Ok(())
    }

    /// Writes out any partial lines (at container exit).
    pub fn flush_partial(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let buf = std::mem::take(&mut self.partial[stream as usize]);
            if !buf.is_empty() {
                self.write_record(stream, &buf, false)?;
            }
        }
        self.file.flush()
    }

    fn write_record(&mut self, stream: Stream, text: &[u8], partial: bool) -> io::Result<()> {
        if let Some(j) = self.journal.as_mut() {
            j.send(stream, text, partial);
        }
        let mut line = Vec::with_capacity(text.len() + 40);
        line.extend_from_slice(format_rfc3339_ms(super::record::now_ms()).as_bytes());
        line.push(b' ');
        line.extend_from_slice(stream.as_str().as_bytes());
        line.push(b' ');
        line.extend_from_slice(text);
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let path = |n: u32| {
            if n == 0 {
                self.dir.join(LOG_FILE)
            } else {
                self.dir.join(format!("{LOG_FILE}.{n}"))
            }
        };
        if self.max_files == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = fs::remove_file(path(self.max_files - 1));
        for n in (0..self.max_files - 1).rev() {
            match fs::rename(path(n), path(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        self.file = OpenOptions::new().create(true).append(true).open(path(0))?;
        self.size = 0;
        Ok(())
    }
}

/// All log files of a container, oldest first.
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix(&format!("{LOG_FILE}."))?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    let current = dir.join(LOG_FILE);
    if current.exists() {
        files.push(current);
    }
    files
}

/// Splits a log line into (timestamp, stream, text).
pub fn parse_line(line: &str) -> Option<(&str, &str, &str)> {
    let (ts, rest) = line.split_once(' ')?;
    let (stream, text) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((ts, stream, text))
}

/// Formats milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_time_format() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_ms(1_709_208_000_000),
            "2024-02-29T12:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339_ms(1_795_999_999_123),
            "2026-11-30T00:53:19.123Z"
        );
    }

    #[test]
    fn log_lines_split_and_partial_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = RotatingLog::open(dir.path(), 1 << 20, 3).expect("open");
        log.feed(Stream::Stdout, b"one\ntw").expect("feed");
        log.feed(Stream::Stderr, b"err\n").expect("feed");
        log.feed(Stream::Stdout, b"o\n").expect("feed");
        log.flush_partial().expect("flush");
        let text = fs::read_to_string(dir.path().join(LOG_FILE)).expect("read");
        let parsed: Vec<_> = text
            .lines()
            .filter_map(parse_line)
            .map(|(_, s, t)| (s.to_string(), t.to_string()))
            .collect();
        assert_eq!(
            parsed,
            vec![
                ("stdout".into(), "one".into()),
                ("stderr".into(), "err".into()),
                ("stdout".into(), "two".into())
            ]
        );
    }

    #[test]
    fn log_long_line_is_split_even_when_its_end_arrives_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = RotatingLog::open(dir.path(), 1 << 20, 3).expect("open");
        // A partial start below MAX_LINE, then the rest with the newline in one read.
        log.feed(Stream::Stdout, &vec![b'x'; 10_000]).expect("feed");
        let mut rest = vec![b'x'; 30_000];
        rest.push(b'\n');
        log.feed(Stream::Stdout, &rest).expect("feed");
        let text = fs::read_to_string(dir.path().join(LOG_FILE)).expect("read");
        let lens: Vec<usize> = text
            .lines()
            .filter_map(parse_line)
            .map(|(_, _, t)| t.len())
            .collect();
        assert_eq!(lens, vec![MAX_LINE, MAX_LINE, 40_000 - 2 * MAX_LINE]);
    }

    #[test]
    fn log_rotation_caps_files_and_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = RotatingLog::open(dir.path(), 4096, 3).expect("open");
        for i in 0..2000 {
            log.feed(
                Stream::Stdout,
                format!("line {i:05} padding padding\n").as_bytes(),
            )
            .expect("feed");
        }
        let files = log_files(dir.path());
        assert_eq!(files.len(), 3, "{files:?}");
        for f in &files {
            assert!(fs::metadata(f).expect("meta").len() <= 4096);
        }
        let last = fs::read_to_string(dir.path().join(LOG_FILE)).expect("read");
        assert!(last.contains("line 01999"));
    }
}
