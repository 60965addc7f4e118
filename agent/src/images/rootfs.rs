//! Container root filesystems. `prepare_rootfs` records a lease, unpacks any missing
//! layer (shared, once), then mounts an overlay at `<container_dir>/rootfs`:
//!
//! ```text
//! <container_dir>/
//!   rootfs/         overlay mount: lowerdir=layers (top first), or a private copy
//!   upper/ work/    the overlay's writable layer and work dir
//!   .rootfs-copy    present once a copy-fallback rootfs is complete
//! ```
//! If the overlay cannot be mounted (no overlayfs, an upper dir on overlayfs or a
//! filesystem without xattrs, mount options over a page) the layers are merged into a
//! copy instead (see `merge`). Both calls are idempotent, so the runtime can call them
//! again after an agent restart.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{self, MntFlags, MsFlags};

use super::digest::Digest;
use super::error::{ImageError, IoContext};
use super::fsutil;
use super::lease::{check_lease_id, Lease};
use super::merge::merge_layers;
use super::store::ImageStore;
use super::unpack::{unpack_layer, LayerSource};
use super::ResolvedImage;

const COPY_MARKER: &str = ".rootfs-copy";
/// The kernel reads mount options from one page.
const MAX_MOUNT_OPTIONS: usize = 4095;

impl ImageStore {
    /// Returns `<container_dir>/rootfs` holding `image`'s layers, leased under
    /// `lease_id` until [`release_rootfs`](Self::release_rootfs).
    pub fn prepare_rootfs(
        &self,
        image: &ResolvedImage,
        lease_id: &str,
        container_dir: &Path,
    ) -> Result<PathBuf, ImageError> {
        check_lease_id(lease_id)?;
        let layers = image
            .layers
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<Vec<_>, _>>()?;
        let diff_ids = image
            .diff_ids
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<Vec<_>, _>>()?;
        let layer_dirs: Vec<PathBuf> = layers
            .iter()
            .map(|d| self.layers_dir.join(d.hex()))
            .collect();
        {
            let lock = self.lock()?;
            let lease = Lease {
                reference: image.reference.clone(),
                manifest: image.manifest_digest.clone(),
                layers: image.layers.clone(),
                container_dir: container_dir.to_path_buf(),
            };
            self.write_lease(&lock, lease_id, &lease)?;
            if let Err(err) = self.record_use(&lock, &image.reference) {
                tracing::warn!(reference = %image.reference, %err, "image last use not recorded");
            }
            for (i, layer) in layers.iter().enumerate() {
                let blob = self.blobs.path(layer);
                if layer_dirs[i].is_dir() {
                    continue;
                }
                if self.blobs.size(layer).is_none() {
                    return Err(ImageError::MissingBlob {
                        digest: layer.to_string(),
                        path: self.blobs.dir().to_path_buf(),
                    });
                }
                let lowers: Vec<PathBuf> = layer_dirs[..i].iter().rev().cloned().collect();
                let source = LayerSource {
                    blob: &blob,
                    digest: layer,
                    diff_id: diff_ids.get(i),
                    lowers: &lowers,
                };
                unpack_layer(&source, &self.layers_dir)?;
            }
        }
        let rootfs = container_dir.join("rootfs");
        if is_mounted(&rootfs).at(&rootfs)? || container_dir.join(COPY_MARKER).exists() {
            return Ok(rootfs);
        }
        fs::create_dir_all(container_dir).at(container_dir)?;
        remove_rootfs_dirs(container_dir)?;
        fs::create_dir(&rootfs).at(&rootfs)?;
        if !self.force_copy {
            match mount_overlay(&layer_dirs, container_dir, &rootfs) {
                Ok(()) => {
                    tracing::debug!(rootfs = %rootfs.display(), layers = layers.len(), "overlay mounted");
                    return Ok(rootfs);
                }
                Err(err) => {
                    tracing::warn!(rootfs = %rootfs.display(), %err, "overlay mount failed; copying layers");
                    remove_rootfs_dirs(container_dir)?;
                    fs::create_dir(&rootfs).at(&rootfs)?;
                }
            }
        }
        merge_layers(&layer_dirs, &rootfs)?;
        fsutil::sync_fs(&rootfs).at(&rootfs)?;
        let marker = container_dir.join(COPY_MARKER);
        crate::store::write_atomic(&marker, lease_id.as_bytes()).at(&marker)?;
        tracing::debug!(rootfs = %rootfs.display(), layers = layers.len(), "rootfs copied");
        Ok(rootfs)
    }

    /// Unmounts (lazily if busy) and deletes the rootfs, upper and work dirs, drops the
    /// lease and collects garbage. Releasing twice is fine.
    pub fn release_rootfs(&self, lease_id: &str, container_dir: &Path) -> Result<(), ImageError> {
        check_lease_id(lease_id)?;
        unmount(&container_dir.join("rootfs"))?;
        remove_rootfs_dirs(container_dir)?;
        let lock = self.lock()?;
        self.drop_lease(&lock, lease_id)?;
        self.gc_logged(&lock);
        Ok(())
    }
}

fn mount_overlay(layers: &[PathBuf], container_dir: &Path, rootfs: &Path) -> io::Result<()> {
    let upper = container_dir.join("upper");
    let work = container_dir.join("work");
    fs::create_dir(&upper)?;
    fs::create_dir(&work)?;
    let text = |p: &Path| p.to_string_lossy().into_owned();
    let lower: Vec<String> = layers.iter().rev().map(|p| text(p)).collect();
    let (upper, work) = (text(&upper), text(&work));
    let invalid = |msg| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
    if lower
        .iter()
        .chain([&upper, &work])
        .any(|p| p.contains([',', ':', '\\']))
    {
        return invalid("a path holds ',', ':' or '\\'");
    }
    let options = format!(
        "lowerdir={},upperdir={upper},workdir={work}",
        lower.join(":")
    );
    if options.len() > MAX_MOUNT_OPTIONS {
        return invalid("overlay options longer than a page");
    }
    let data = Some(options.as_str());
    mount::mount(
        Some("overlay"),
        rootfs,
        Some("overlay"),
        MsFlags::empty(),
        data,
    )
    .map_err(io::Error::from)
}

/// Unmounts `rootfs` until nothing is mounted there.
fn unmount(rootfs: &Path) -> Result<(), ImageError> {
    let failed = |source| ImageError::Umount {
        path: rootfs.to_path_buf(),
        source,
    };
    for _ in 0..8 {
        if !is_mounted(rootfs).at(rootfs)? {
            return Ok(());
        }
        match mount::umount2(rootfs, MntFlags::empty()) {
            Ok(()) => {}
            Err(Errno::EBUSY) => mount::umount2(rootfs, MntFlags::MNT_DETACH).map_err(failed)?,
            Err(e) => return Err(failed(e)),
        }
    }
    Err(failed(Errno::EBUSY))
}

/// True if a filesystem is mounted at `path` (its device differs from its parent's).
fn is_mounted(path: &Path) -> io::Result<bool> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let parent = path.parent().unwrap_or(Path::new("/"));
    Ok(fs::symlink_metadata(parent)?.dev() != meta.dev())
}

fn remove_rootfs_dirs(container_dir: &Path) -> Result<(), ImageError> {
    let rootfs = container_dir.join("rootfs");
    if is_mounted(&rootfs).at(&rootfs)? {
        // Never delete through a mount: that would write whiteouts, or worse.
        return Err(ImageError::Umount {
            path: rootfs,
            source: Errno::EBUSY,
        });
    }
    for name in [COPY_MARKER, "rootfs", "upper", "work"] {
        let path = container_dir.join(name);
        fsutil::remove_any(&path).at(&path)?;
    }
    Ok(())
}
