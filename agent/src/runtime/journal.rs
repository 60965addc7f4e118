//! The `journald` log driver's writer, in the monitor: each line of the container's
//! output becomes one journal entry sent as a datagram to journald's native socket
//! (`/run/systemd/journal/socket`), with the container's fixed fields (computed by
//! [`skerry_core::spec::Journald::fields`] when the container is prepared),
//! `MESSAGE`, `PRIORITY` 6 (stdout) or 3 (stderr), and `CONTAINER_PARTIAL_MESSAGE=true`
//! on the parts of a line split at 16 KiB (as Docker marks them).
//!
//! Wire form (systemd's native protocol): `KEY=value\n` per field; a value holding a
//! newline is sent as `KEY\n`, its length as a little-endian u64, the bytes, `\n`.
//! Lines are at most 16 KiB ([`super::logfile`] splits them), so an entry always fits
//! one datagram and the memfd path for large entries is not needed. The socket is
//! unbound and each entry is sent to the path, so a restarted journald is found
//! again; an entry journald does not take (absent, full) is dropped: the line is in
//! the rotated files anyway.

use std::os::unix::net::UnixDatagram;
use std::path::Path;

use super::logfile::Stream;

/// journald's native protocol socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Whether the host's journal is there to take entries (a socket at its path).
pub fn present() -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(JOURNAL_SOCKET).is_ok_and(|m| m.file_type().is_socket())
}

/// Sends a container's lines to the journal.
pub struct JournalWriter {
    socket: UnixDatagram,
    /// The fixed fields, encoded once.
    head: Vec<u8>,
    /// Entries journald did not take (absent, busy): counted for monitor.log.
    pub dropped: u64,
}

/// Appends one field in the native protocol's form.
fn push_field(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    out.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value);
    } else {
        out.push(b'=');
        out.extend_from_slice(value);
    }
    out.push(b'\n');
}

/// One entry: the fixed fields, then the line's own.
pub fn entry(head: &[u8], stream: Stream, text: &[u8], partial: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + text.len() + 64);
    out.extend_from_slice(head);
    let priority: &[u8] = match stream {
        Stream::Stdout => b"6",
        Stream::Stderr => b"3",
    };
    push_field(&mut out, "PRIORITY", priority);
    if partial {
        push_field(&mut out, "CONTAINER_PARTIAL_MESSAGE", b"true");
    }
    push_field(&mut out, "MESSAGE", text);
    out
}

impl JournalWriter {
    /// A writer for a container with `fields`; `None` if no socket can be made.
    pub fn new(fields: &[(String, String)]) -> Option<Self> {
        let socket = UnixDatagram::unbound().ok()?;
        socket.set_nonblocking(true).ok()?;
        let mut head = Vec::new();
        for (k, v) in fields {
            push_field(&mut head, k, v.as_bytes());
        }
        Some(Self {
            socket,
            head,
            dropped: 0,
        })
    }

    /// Sends one line (best effort: never blocks the container's output).
    pub fn send(&mut self, stream: Stream, text: &[u8], partial: bool) {
        let msg = entry(&self.head, stream, text, partial);
        if self
            .socket
            .send_to(&msg, Path::new(JOURNAL_SOCKET))
            .is_err()
        {
            self.dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_entry_native_encoding() {
        let mut head = Vec::new();
        push_field(&mut head, "CONTAINER_NAME", b"app");
        let e = entry(&head, Stream::Stderr, b"boom", false);
        assert_eq!(e, b"CONTAINER_NAME=app\nPRIORITY=3\nMESSAGE=boom\n");
        let e = entry(&head, Stream::Stdout, b"a\nb", true);
        let mut want =
            b"CONTAINER_NAME=app\nPRIORITY=6\nCONTAINER_PARTIAL_MESSAGE=true\nMESSAGE\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"a\nb\n");
        assert_eq!(e, want);
    }
}
