//! The copy fallback for when overlayfs cannot be mounted: merges unpacked layers
//! (bottom first) into one private directory tree, applying overlay semantics by hand.
//!
//! - A whiteout (0/0 char device) deletes the entry below; an opaque directory
//!   (`trusted.overlay.opaque=y`) drops what lower layers put in it; a directory over a
//!   non-directory (or the reverse) replaces it.
//! - Files are copied, never hard-linked to the shared layer (the container may write
//!   them); hard links inside one layer stay hard links. Owners, modes, mtimes are kept.
//! - Never follows a symlink in the destination: each level is checked with lstat and
//!   anything that is not a real directory is replaced.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::error::{ImageError, IoContext};
use super::fsutil;

/// Copies the union of `layers` (bottom first) into `dest` (an existing empty directory).
pub(crate) fn merge_layers(layers: &[PathBuf], dest: &Path) -> Result<(), ImageError> {
    let mut dir_times = Vec::new();
    for layer in layers {
        let mut links = HashMap::new();
        if fsutil::is_opaque(layer).at(layer)? {
            clear_dir(dest).at(dest)?;
        }
        merge_dir(layer, dest, &mut links, &mut dir_times)?;
    }
    for (path, mtime) in dir_times.iter().rev() {
        fsutil::set_mtime(path, *mtime).at(path)?;
    }
    Ok(())
}

fn merge_dir(
    src_dir: &Path,
    dest_dir: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
    dir_times: &mut Vec<(PathBuf, i64)>,
) -> Result<(), ImageError> {
    for entry in fs::read_dir(src_dir).at(src_dir)? {
        let entry = entry.at(src_dir)?;
        let src = entry.path();
        let dest = dest_dir.join(entry.file_name());
        let meta = fs::symlink_metadata(&src).at(&src)?;
        let kind = meta.file_type();
        if fsutil::is_whiteout(&meta) {
            fsutil::remove_any(&dest).at(&dest)?;
        } else if kind.is_dir() {
            let existing = fs::symlink_metadata(&dest).ok();
            match existing {
                Some(m) if m.is_dir() => {
                    if fsutil::is_opaque(&src).at(&src)? {
                        clear_dir(&dest).at(&dest)?;
                    }
                }
                Some(_) => {
                    fsutil::remove_any(&dest).at(&dest)?;
                    fs::create_dir(&dest).at(&dest)?;
                }
                None => fs::create_dir(&dest).at(&dest)?,
            }
            fsutil::set_meta(&dest, meta.uid(), meta.gid(), Some(meta.mode()), None).at(&dest)?;
            dir_times.push((dest.clone(), meta.mtime()));
            merge_dir(&src, &dest, links, dir_times)?;
        } else {
            fsutil::remove_any(&dest).at(&dest)?;
            copy_node(&src, &dest, &meta, links)?;
        }
    }
    Ok(())
}

/// Copies one non-directory `src` to the (now absent) `dest`.
fn copy_node(
    src: &Path,
    dest: &Path,
    meta: &fs::Metadata,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), ImageError> {
    let kind = meta.file_type();
    let (uid, gid, mode, mtime) = (meta.uid(), meta.gid(), meta.mode(), meta.mtime());
    if kind.is_file() {
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                if fs::hard_link(first, dest).is_ok() {
                    return Ok(());
                }
            }
            links.insert((meta.dev(), meta.ino()), dest.to_path_buf());
        }
        fs::copy(src, dest).at(dest)?;
        fsutil::set_meta(dest, uid, gid, Some(mode), Some(mtime)).at(dest)
    } else if kind.is_symlink() {
        let target = fs::read_link(src).at(src)?;
        std::os::unix::fs::symlink(&target, dest).at(dest)?;
        fsutil::set_meta(dest, uid, gid, None, Some(mtime)).at(dest)
    } else if kind.is_fifo() {
        nix::unistd::mkfifo(dest, nix::sys::stat::Mode::from_bits_truncate(0o600)).at(dest)?;
        fsutil::set_meta(dest, uid, gid, Some(mode), Some(mtime)).at(dest)
    } else {
        tracing::warn!(path = %src.display(), "skipping special file in copy fallback");
        Ok(())
    }
}

/// Empties a directory, keeping the directory itself.
fn clear_dir(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        fsutil::remove_any(&entry?.path())?;
    }
    Ok(())
}
