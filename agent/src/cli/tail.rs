//! Follows a container's rotating log: reads new lines, and across a rotation finishes
//! the old file (through its still-open handle) before switching to the new one.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::runtime::logfile::{log_files, parse_line, LOG_FILE};

/// A tail on one container's log directory.
pub struct LogTail {
    dir: PathBuf,
    reader: Option<(u64, BufReader<File>)>,
    pending: String,
}

/// One parsed log line.
pub struct LogLine {
    pub timestamp: String,
    pub stream: String,
    pub text: String,
}

impl LogTail {
    /// A tail that starts at the beginning of the oldest file (`from_start`) or at the
    /// current end.
    pub fn new(dir: &Path, from_start: bool) -> Self {
        let mut tail = Self {
            dir: dir.to_path_buf(),
            reader: None,
            pending: String::new(),
        };
        if !from_start {
            tail.open_current(true);
        }
        tail
    }

    /// Everything in the rotated files and the current one, oldest first.
    pub fn read_all(dir: &Path) -> Vec<LogLine> {
        let mut out = Vec::new();
        for f in log_files(dir) {
            if let Ok(file) = File::open(&f) {
                for line in BufReader::new(file).lines().map_while(Result::ok) {
                    out.extend(to_line(&line));
                }
            }
        }
        out
    }

    fn open_current(&mut self, seek_end: bool) {
        if let Ok(mut f) = File::open(self.dir.join(LOG_FILE)) {
            let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
            if seek_end {
                let _ = f.seek(SeekFrom::End(0));
            }
            self.reader = Some((ino, BufReader::new(f)));
        }
    }

    /// New complete lines since the last call.
    pub fn poll(&mut self) -> Vec<LogLine> {
        let mut out = Vec::new();
        if self.reader.is_none() {
            self.open_current(false);
        }
        loop {
            let Some((ino, reader)) = self.reader.as_mut() else {
                return out;
            };
            let mut buf = String::new();
            match reader.read_line(&mut buf) {
                Ok(0) | Err(_) => {
                    let current = std::fs::metadata(self.dir.join(LOG_FILE))
                        .map(|m| m.ino())
                        .ok();
                    if current.is_some() && current != Some(*ino) {
                        self.reader = None;
                        self.open_current(false);
                        continue;
                    }
                    return out;
                }
                Ok(_) => {
                    self.pending.push_str(&buf);
                    if self.pending.ends_with('\n') {
                        let line = std::mem::take(&mut self.pending);
                        out.extend(to_line(line.trim_end_matches('\n')));
                    }
                }
            }
        }
    }
}

fn to_line(line: &str) -> Option<LogLine> {
    parse_line(line).map(|(ts, stream, text)| LogLine {
        timestamp: ts.to_string(),
        stream: stream.to_string(),
        text: text.to_string(),
    })
}
