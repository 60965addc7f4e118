//! Placing the entries of one layer tar under a fresh root, safely.
//!
//! - Untrusted input: every entry is placed by hand, never with tar's `unpack_in`.
//!   Refused (naming layer and entry): `..` components, absolute paths, entries below a
//!   symlink (no symlink is ever followed while extracting), hard links whose target is
//!   outside the layer, absent or a directory.
//! - OCI whiteouts become overlay ones: `.wh.NAME` → a 0/0 char device `NAME`;
//!   `.wh..wh..opq` → `trusted.overlay.opaque=y` on its directory.
//! - Kept: modes (with setuid), uid/gid, symlinks, hard links, fifos, mtimes. Skipped with
//!   a warning: device nodes. Not applied: xattrs and file capabilities from PAX headers.
//! - Directories the tar implies without an entry take their owner and mode from the same
//!   directory in `lowers` (so an upper layer touching `/tmp/x` keeps `/tmp` at 1777).

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::digest::Digest;
use super::error::{ImageError, IoContext};
use super::fsutil;

/// Places tar entries under `root`, one at a time.
pub(crate) struct Extractor<'a> {
    root: PathBuf,
    digest: &'a Digest,
    /// Unpacked layers below, nearest first.
    lowers: &'a [PathBuf],
    /// Relative directories already checked to be real directories (not symlinks).
    dirs_ok: HashSet<PathBuf>,
    /// Directory mtimes, applied last (creating entries inside changes them).
    dir_mtimes: Vec<(PathBuf, i64)>,
    /// Device nodes skipped (logged once per layer: image content must not flood logs).
    skipped_devices: usize,
    first_device: Option<String>,
}

/// What a header says about ownership, mode and time.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
}

impl<'a> Extractor<'a> {
    pub(crate) fn new(root: &Path, digest: &'a Digest, lowers: &'a [PathBuf]) -> Self {
        Self {
            root: root.to_path_buf(),
            digest,
            lowers,
            dirs_ok: HashSet::new(),
            dir_mtimes: Vec::new(),
            skipped_devices: 0,
            first_device: None,
        }
    }

    /// Applies directory mtimes (last, as creating entries changed them).
    pub(crate) fn finish(self) -> Result<(), ImageError> {
        if let Some(first) = &self.first_device {
            tracing::warn!(
                layer = %self.digest,
                count = self.skipped_devices,
                first = %first,
                "skipped device nodes"
            );
        }
        for (path, mtime) in self.dir_mtimes.iter().rev() {
            fsutil::set_mtime(path, *mtime).at(path)?;
        }
        Ok(())
    }

    pub(crate) fn entry<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
    ) -> Result<(), ImageError> {
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = entry.path().map_err(|e| self.io(&name, e))?.into_owned();
        let rel = self.sanitize(&name, &path, "path")?;
        let Some(file_name) = rel.file_name().map(|f| f.to_string_lossy().into_owned()) else {
            return Ok(()); // the layer root itself: its attributes come from the base
        };
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if let Some(hidden) = file_name.strip_prefix(".wh.") {
            return self.whiteout(&name, &parent, hidden);
        }
        self.ensure_dir(&name, &parent)?;
        let header = entry.header();
        let meta = self.meta(&name, header)?;
        let kind = header.entry_type();
        let target = self.root.join(&rel);
        let digest = self.digest;
        let io = |source| ImageError::Unpack {
            layer: digest.to_string(),
            entry: name.clone(),
            source,
        };
        match kind {
            EntryType::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(m) => {
                        self.remove_existing(&rel).map_err(io)?;
                        fs::create_dir(&target).map_err(io)?;
                        if fsutil::is_whiteout(&m) {
                            // Re-created after a whiteout in this layer: hide what is below.
                            fsutil::set_opaque(&target).map_err(io)?;
                        }
                    }
                    Err(_) => fs::create_dir(&target).map_err(io)?,
                }
                fsutil::set_meta(&target, meta.uid, meta.gid, Some(meta.mode), None).map_err(io)?;
                self.dir_mtimes.push((target, meta.mtime));
                self.dirs_ok.insert(rel);
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let expected = entry.size();
                self.remove_existing(&rel).map_err(io)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&target)
                    .map_err(io)?;
                let written = io::copy(&mut entry, &mut file).map_err(io)?;
                if kind != EntryType::GNUSparse && written != expected {
                    return Err(io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "truncated entry",
                    )));
                }
                drop(file);
                fsutil::set_meta(
                    &target,
                    meta.uid,
                    meta.gid,
                    Some(meta.mode),
                    Some(meta.mtime),
                )
                .map_err(io)?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(io)?
                    .ok_or_else(|| self.refuse(&name, "symlink without a target".to_owned()))?;
                self.remove_existing(&rel).map_err(io)?;
                std::os::unix::fs::symlink(&link, &target).map_err(io)?;
                fsutil::set_meta(&target, meta.uid, meta.gid, None, Some(meta.mtime))
                    .map_err(io)?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(io)?
                    .ok_or_else(|| self.refuse(&name, "hard link without a target".to_owned()))?
                    .into_owned();
                self.hard_link(&name, &rel, &link)?;
            }
            EntryType::Fifo => {
                self.remove_existing(&rel).map_err(io)?;
                nix::unistd::mkfifo(&target, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| io(e.into()))?;
                fsutil::set_meta(
                    &target,
                    meta.uid,
                    meta.gid,
                    Some(meta.mode),
                    Some(meta.mtime),
                )
                .map_err(io)?;
            }
            EntryType::Char | EntryType::Block => {
                self.skipped_devices += 1;
                self.first_device.get_or_insert_with(|| name.clone());
            }
            other => {
                tracing::debug!(layer = %self.digest, entry = %name, kind = ?other, "skipping entry");
            }
        }
        Ok(())
    }

    /// `.wh.NAME` and `.wh..wh..opq` in directory `parent`.
    fn whiteout(&mut self, name: &str, parent: &Path, hidden: &str) -> Result<(), ImageError> {
        self.ensure_dir(name, parent)?;
        let dir = self.root.join(parent);
        if hidden == ".wh..opq" {
            return fsutil::set_opaque(&dir).map_err(|e| self.io(name, e));
        }
        if hidden.starts_with(".wh.") {
            tracing::debug!(layer = %self.digest, entry = %name, "skipping aufs metadata");
            return Ok(());
        }
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(self.refuse(name, "whiteout of an invalid name".to_owned()));
        }
        let target = dir.join(hidden);
        if fs::symlink_metadata(&target).is_ok() {
            // This layer also adds NAME: the whiteout only hides lower layers, which the
            // entry already does.
            return Ok(());
        }
        fsutil::make_whiteout(&target).map_err(|e| self.io(name, e))
    }

    fn hard_link(&mut self, name: &str, rel: &Path, link: &Path) -> Result<(), ImageError> {
        let link_rel = self.sanitize(name, link, "hard link target")?;
        let link_parent = link_rel.parent().unwrap_or(Path::new(""));
        for dir in prefixes(link_parent) {
            match fs::symlink_metadata(self.root.join(&dir)) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(self.refuse(
                        name,
                        format!(
                            "hard link target {} passes through non-directory {}",
                            link.display(),
                            dir.display()
                        ),
                    ))
                }
                Err(_) => return Err(self.absent(name, link)),
            }
        }
        let source = self.root.join(&link_rel);
        match fs::symlink_metadata(&source) {
            Ok(m) if m.is_dir() || fsutil::is_whiteout(&m) => {
                return Err(self.refuse(
                    name,
                    format!("hard link to directory or whiteout {}", link.display()),
                ))
            }
            Ok(_) => {}
            Err(_) => return Err(self.absent(name, link)),
        }
        if link_rel == rel {
            return Ok(());
        }
        let target = self.root.join(rel);
        self.remove_existing(rel).map_err(|e| self.io(name, e))?;
        fs::hard_link(&source, &target).map_err(|e| self.io(name, e))
    }

    /// Makes sure `dir` (relative) is a real directory, creating missing ones and
    /// refusing to pass through a symlink or a non-directory.
    fn ensure_dir(&mut self, name: &str, dir: &Path) -> Result<(), ImageError> {
        for prefix in prefixes(dir) {
            if self.dirs_ok.contains(&prefix) {
                continue;
            }
            let path = self.root.join(&prefix);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(
                        self.refuse(name, format!("parent {} is a symlink", prefix.display()))
                    )
                }
                Ok(m) if fsutil::is_whiteout(&m) => {
                    fs::remove_file(&path).map_err(|e| self.io(name, e))?;
                    self.implied_dir(name, &prefix)?;
                    fsutil::set_opaque(&path).map_err(|e| self.io(name, e))?;
                }
                Ok(_) => {
                    return Err(self.refuse(
                        name,
                        format!("parent {} is not a directory", prefix.display()),
                    ))
                }
                Err(_) => self.implied_dir(name, &prefix)?,
            }
            self.dirs_ok.insert(prefix);
        }
        Ok(())
    }

    /// Creates a directory the tar implies, with the lower layers' owner and mode.
    fn implied_dir(&self, name: &str, rel: &Path) -> Result<(), ImageError> {
        let path = self.root.join(rel);
        fs::create_dir(&path).map_err(|e| self.io(name, e))?;
        let (uid, gid, mode, mtime) = match self.lower_dir(rel) {
            Some(m) => (m.uid(), m.gid(), m.mode(), Some(m.mtime())),
            None => (0, 0, 0o755, None),
        };
        fsutil::set_meta(&path, uid, gid, Some(mode), mtime).map_err(|e| self.io(name, e))
    }

    /// The directory `rel` as the nearest lower layer has it, walking real directories
    /// only (never through a symlink); `None` if no lower has it or one hides it.
    fn lower_dir(&self, rel: &Path) -> Option<fs::Metadata> {
        'lowers: for lower in self.lowers {
            let mut found = None;
            for prefix in prefixes(rel) {
                match fs::symlink_metadata(lower.join(&prefix)) {
                    Ok(m) if m.is_dir() => found = Some(m),
                    Ok(_) => return None,
                    Err(_) => continue 'lowers,
                }
            }
            return found;
        }
        None
    }

    /// Removes what this layer already has at `rel` (forgetting checked dirs below it).
    fn remove_existing(&mut self, rel: &Path) -> io::Result<()> {
        fsutil::remove_any(&self.root.join(rel))?;
        self.dirs_ok.retain(|d| !d.starts_with(rel));
        Ok(())
    }

    /// `path` as a relative path with only normal components, or a refusal.
    fn sanitize(&self, name: &str, path: &Path, what: &str) -> Result<PathBuf, ImageError> {
        let mut rel = PathBuf::new();
        for component in path.components() {
            match component {
                Component::Normal(c) => rel.push(c),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(self.refuse(
                        name,
                        format!("{what} {} has a '..' component", path.display()),
                    ))
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.refuse(name, format!("{what} {} is absolute", path.display())))
                }
            }
        }
        Ok(rel)
    }

    fn meta(&self, name: &str, header: &tar::Header) -> Result<Meta, ImageError> {
        let io = |e| self.io(name, e);
        let id = |v: u64| {
            u32::try_from(v).map_err(|_| self.refuse(name, format!("uid/gid {v} out of range")))
        };
        Ok(Meta {
            uid: id(header.uid().map_err(io)?)?,
            gid: id(header.gid().map_err(io)?)?,
            mode: header.mode().map_err(io)? & 0o7777,
            mtime: i64::try_from(header.mtime().map_err(io)?).unwrap_or(0),
        })
    }

    fn refuse(&self, name: &str, reason: String) -> ImageError {
        ImageError::UnsafeEntry {
            layer: self.digest.to_string(),
            entry: name.to_owned(),
            reason,
        }
    }

    fn absent(&self, name: &str, link: &Path) -> ImageError {
        self.refuse(
            name,
            format!(
                "hard link target {} is absent (it must come earlier in the same layer)",
                link.display()
            ),
        )
    }

    fn io(&self, name: &str, source: io::Error) -> ImageError {
        ImageError::Unpack {
            layer: self.digest.to_string(),
            entry: name.to_owned(),
            source,
        }
    }
}

/// `a`, `a/b`, `a/b/c` for `a/b/c`.
fn prefixes(dir: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    let mut acc = PathBuf::new();
    dir.components().map(move |c| {
        acc.push(c);
        acc.clone()
    })
}
