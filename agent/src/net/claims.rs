//! Host-wide claims on bridge addresses and host ports, as files under
//! `/run/skerry/claims/` made with `O_EXCL`: several agents (one per state
//! directory) may share a host and must not hand out the same address or port.
//! A claim file holds its owner (`<state dir> <task> <container>`), so a refusal
//! can say who holds it. `/run` is a tmpfs: after a reboot the claims are made
//! again as tasks are re-attached.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::NetError;

/// The claims of one kind (`addr-<bridge>` or `ports`).
#[derive(Debug, Clone)]
pub struct Claims {
    dir: PathBuf,
}

impl Claims {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Claims `key` for `owner`. `Ok(None)` when claimed (or already ours),
    /// `Ok(Some(holder))` when someone else holds it.
    pub fn claim(&self, key: &str, owner: &str) -> Result<Option<String>, NetError> {
        fs::create_dir_all(&self.dir).map_err(|e| NetError::io(&self.dir, e))?;
        let path = self.dir.join(key);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                f.write_all(owner.as_bytes())
                    .map_err(|e| NetError::io(&path, e))?;
                Ok(None)
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                Ok((holder != owner).then_some(holder))
            }
            Err(e) => Err(NetError::io(&path, e)),
        }
    }

    /// Drops `key` if `owner` holds it.
    pub fn release(&self, key: &str, owner: &str) {
        let path = self.dir.join(key);
        if fs::read_to_string(&path).is_ok_and(|h| h == owner) {
            let _ = fs::remove_file(&path);
        }
    }

    /// Every claim: (key, owner).
    pub fn list(&self) -> Vec<(String, String)> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let key = e.file_name().into_string().ok()?;
                Some((key, fs::read_to_string(e.path()).ok()?))
            })
            .collect()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_claims_are_exclusive_idempotent_and_released_by_their_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Claims::new(dir.path().join("ports"));
        assert_eq!(c.claim("tcp-8080", "a t1 web").expect("claim"), None);
        assert_eq!(c.claim("tcp-8080", "a t1 web").expect("again"), None);
        assert_eq!(
            c.claim("tcp-8080", "b t2 web").expect("other"),
            Some("a t1 web".to_string())
        );
        c.release("tcp-8080", "b t2 web");
        assert_eq!(c.list().len(), 1, "not released by a non-owner");
        c.release("tcp-8080", "a t1 web");
        assert!(c.list().is_empty());
    }
}
