//! Garbage collection: deletes blobs and unpacked layers that no tag and no lease
//! reaches, and temporaries of dead processes. Conservative: if any tagged manifest or
//! lease cannot be read, nothing is deleted. A layer is renamed to a temporary name
//! before its tree is removed, so a crash never leaves a half-deleted layer that looks
//! whole.

use std::collections::HashSet;
use std::fs;

use super::digest::{is_sha256_hex, Digest};
use super::error::{ImageError, IoContext};
use super::fsutil;
use super::oci::Image;
use super::store::{ImageStore, StoreLock};

/// What one GC pass removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub layers_removed: usize,
    /// Bytes of blobs removed (unpacked layer sizes are not counted).
    pub blob_bytes_freed: u64,
}

impl ImageStore {
    /// Runs one GC pass under the store lock.
    pub fn gc(&self) -> Result<GcReport, ImageError> {
        let lock = self.lock()?;
        self.gc_locked(&lock)
    }

    /// GC where failing is not the caller's problem (after remove or release): the
    /// error is logged here, once.
    pub(crate) fn gc_logged(&self, lock: &StoreLock) {
        match self.gc_locked(lock) {
            Ok(report) => tracing::debug!(
                blobs = report.blobs_removed,
                layers = report.layers_removed,
                bytes = report.blob_bytes_freed,
                "image gc"
            ),
            Err(err) => {
                tracing::warn!(%err, "image gc failed; will retry on the next remove or release")
            }
        }
    }

    pub(crate) fn gc_locked(&self, _lock: &StoreLock) -> Result<GcReport, ImageError> {
        let mut live_blobs = HashSet::new();
        let mut live_layers = HashSet::new();
        for digest in self.load_refs()?.values() {
            let image = Image::read(&[&self.blobs], digest)?;
            live_blobs.extend(image.blobs().map(|d| d.hex().to_owned()));
            live_layers.extend(image.layers.iter().map(|d| d.hex().to_owned()));
        }
        for (_, lease) in self.leases()? {
            let manifest = Digest::parse(&lease.manifest)?;
            if let Ok(image) = Image::read(&[&self.blobs], &manifest) {
                live_blobs.extend(image.blobs().map(|d| d.hex().to_owned()));
            }
            for layer in &lease.layers {
                live_layers.insert(Digest::parse(layer)?.hex().to_owned());
            }
        }
        let mut report = GcReport::default();
        let blob_dir = self.blobs.dir().to_path_buf();
        for entry in fs::read_dir(&blob_dir).at(&blob_dir)? {
            let entry = entry.at(&blob_dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if is_sha256_hex(&name) && !live_blobs.contains(&name) {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&path).at(&path)?;
                report.blobs_removed += 1;
                report.blob_bytes_freed += size;
            } else if fsutil::is_stale_temp(&name) {
                fsutil::remove_any(&path).at(&path)?;
            }
        }
        for entry in fs::read_dir(&self.layers_dir).at(&self.layers_dir)? {
            let entry = entry.at(&self.layers_dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if is_sha256_hex(&name) && !live_layers.contains(&name) {
                let trash = self.layers_dir.join(fsutil::temp_name("trash"));
                fs::rename(&path, &trash).at(&path)?;
                fsutil::remove_any(&trash).at(&trash)?;
                report.layers_removed += 1;
            } else if fsutil::is_stale_temp(&name) {
                fsutil::remove_any(&path).at(&path)?;
            }
        }
        Ok(report)
    }
}
