//! Leases: `leases/<lease_id>`, one per prepared rootfs, naming the manifest and layers
//! it uses. GC keeps everything a lease names, so removing an image while a container
//! runs never deletes its layers. A lease id is checked before it becomes a file name.

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{ImageError, IoContext};
use super::record;
use super::store::{ImageStore, StoreLock};

const LEASE_MAGIC: &str = "skerry-image-lease";
const MAX_LEASE_ID: usize = 128;

/// What one prepared rootfs holds on to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lease {
    pub(crate) reference: String,
    pub(crate) manifest: String,
    /// Layer blob digests, bottom first.
    pub(crate) layers: Vec<String>,
    pub(crate) container_dir: PathBuf,
}

/// Refuses ids that are not 1-128 of `[A-Za-z0-9_.-]` or start with `.`.
pub(crate) fn check_lease_id(id: &str) -> Result<(), ImageError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_LEASE_ID
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ImageError::InvalidLeaseId {
            lease_id: id.to_owned(),
        })
    }
}

impl ImageStore {
    pub(crate) fn write_lease(
        &self,
        _lock: &StoreLock,
        id: &str,
        lease: &Lease,
    ) -> Result<(), ImageError> {
        check_lease_id(id)?;
        record::save(&self.leases_dir.join(id), LEASE_MAGIC, lease)
    }

    /// Drops a lease; an absent one is fine.
    pub(crate) fn drop_lease(&self, _lock: &StoreLock, id: &str) -> Result<(), ImageError> {
        check_lease_id(id)?;
        let path = self.leases_dir.join(id);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).at(&path),
            _ => Ok(()),
        }
    }

    pub(crate) fn read_lease(&self, id: &str) -> Result<Option<Lease>, ImageError> {
        check_lease_id(id)?;
        record::load(&self.leases_dir.join(id), LEASE_MAGIC)
    }

    /// Every lease, by id.
    pub(crate) fn leases(&self) -> Result<Vec<(String, Lease)>, ImageError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.leases_dir).at(&self.leases_dir)? {
            let entry = entry.at(&self.leases_dir)?;
            let id = entry.file_name().to_string_lossy().into_owned();
            if check_lease_id(&id).is_err() {
                continue; // a temporary of write_atomic, or junk: not a lease
            }
            if let Some(lease) = self.read_lease(&id)? {
                out.push((id, lease));
            }
        }
        Ok(out)
    }

    /// Ids of the leases currently held (for operators and tests).
    pub fn lease_ids(&self) -> Result<Vec<String>, ImageError> {
        let mut ids: Vec<String> = self.leases()?.into_iter().map(|(id, _)| id).collect();
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_are_checked() {
        for good in ["task-1.web", "a", "A_b-9"] {
            assert!(check_lease_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "..", "x y", &"a".repeat(129)] {
            assert!(check_lease_id(bad).is_err(), "{bad}");
        }
    }
}
