//! Safe layer unpacking: one layer blob (gzip or plain tar, by magic) becomes
//! `layers/<blob hex>/`, a tree overlayfs can use as a lower dir.
//!
//! - The tree is built in a `.tmp-*` directory and renamed into place, so a crash never
//!   leaves a half layer under a real name. The blob digest and the config's diff_id are
//!   re-checked while reading.
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
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use flate2::bufread::MultiGzDecoder;
use tar::EntryType;

use super::digest::{Digest, HashingReader};
use super::error::{ImageError, IoContext};
use super::fsutil::{self, TempTree};
use crate::store::sync_dir;

/// One layer to unpack.
pub(crate) struct LayerSource<'a> {
    /// The verified blob file.
    pub(crate) blob: &'a Path,
    pub(crate) digest: &'a Digest,
    /// sha256 of the uncompressed tar, from the image config.
    pub(crate) diff_id: Option<&'a Digest>,
    /// Unpacked layers below this one, nearest first.
    pub(crate) lowers: &'a [PathBuf],
}

/// Unpacks `layer` into `layers_dir/<hex>` unless it is there. Returns true if it made it.
pub(crate) fn unpack_layer(layer: &LayerSource<'_>, layers_dir: &Path) -> Result<bool, ImageError> {
    let dest = layers_dir.join(layer.digest.hex());
    if dest.is_dir() {
        return Ok(false);
    }
    let tmp = TempTree::new(layers_dir.join(fsutil::temp_name(layer.digest.hex())));
    fs::create_dir(tmp.path()).at(tmp.path())?;
    let started = std::time::Instant::now();
    extract(layer, tmp.path())?;
    fsutil::sync_fs(tmp.path()).at(tmp.path())?;
    match fs::rename(tmp.path(), &dest) {
        Ok(()) => tmp.keep(),
        // Another process unpacked the same layer first: theirs is as good as ours.
        Err(_) if dest.is_dir() => return Ok(false),
        Err(e) => return Err(e).at(&dest),
    }
    sync_dir(layers_dir).at(layers_dir)?;
    tracing::debug!(layer = %layer.digest, elapsed_ms = started.elapsed().as_millis() as u64, "layer unpacked");
    Ok(true)
}

enum Decoded<R: BufRead> {
    Gzip(MultiGzDecoder<R>),
    Plain(R),
}

impl<R: BufRead> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Gzip(r) => r.read(buf),
            Self::Plain(r) => r.read(buf),
        }
    }
}

impl<R: BufRead> Decoded<R> {
    fn into_inner(self) -> R {
        match self {
            Self::Gzip(r) => r.into_inner(),
            Self::Plain(r) => r,
        }
    }
}

fn extract(layer: &LayerSource<'_>, root: &Path) -> Result<(), ImageError> {
    let stream_err = |source| ImageError::Unpack {
        layer: layer.digest.to_string(),
        entry: String::new(),
        source,
    };
    let file = File::open(layer.blob).at(layer.blob)?;
    let mut buffered = BufReader::new(HashingReader::new(file));
    let magic = buffered.fill_buf().at(layer.blob)?;
    let decoded = if magic.starts_with(&[0x1f, 0x8b]) {
        Decoded::Gzip(MultiGzDecoder::new(buffered))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(ImageError::UnsupportedMediaType {
            digest: layer.digest.to_string(),
            media_type: "zstd-compressed layer".to_owned(),
        });
    } else {
        Decoded::Plain(buffered)
    };
    let mut archive = tar::Archive::new(HashingReader::new(decoded));
    let mut extractor = Extractor {
        root: root.to_path_buf(),
        layer,
        dirs_ok: HashSet::new(),
        dir_mtimes: Vec::new(),
    };
    for entry in archive.entries().map_err(stream_err)? {
        extractor.entry(entry.map_err(stream_err)?)?;
    }
    // Drain both streams to their ends and check what the config and manifest promised.
    let mut tar_stream = archive.into_inner();
    let (diff_id, _) = tar_stream.finish().map_err(stream_err)?;
    let mut blob_stream = tar_stream.into_inner().into_inner().into_inner();
    let (blob_digest, _) = blob_stream.finish().map_err(stream_err)?;
    for (expected, actual) in [
        (Some(layer.digest), &blob_digest),
        (layer.diff_id, &diff_id),
    ] {
        if let Some(expected) = expected.filter(|e| *e != actual) {
            return Err(ImageError::DigestMismatch {
                path: layer.blob.to_path_buf(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
    }
    for (path, mtime) in extractor.dir_mtimes.iter().rev() {
        fsutil::set_mtime(path, *mtime).at(path)?;
    }
    Ok(())
}

/// Places tar entries under `root`, one at a time.
struct Extractor<'a> {
    root: PathBuf,
    layer: &'a LayerSource<'a>,
    /// Relative directories already checked to be real directories (not symlinks).
    dirs_ok: HashSet<PathBuf>,
    /// Directory mtimes, applied last (creating entries inside changes them).
    dir_mtimes: Vec<(PathBuf, i64)>,
}

/// What a header says about ownership, mode and time.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
}

impl Extractor<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), ImageError> {
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
        let digest = self.layer.digest;
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
                tracing::warn!(layer = %self.layer.digest, entry = %name, "skipping device node");
            }
            other => {
                tracing::debug!(layer = %self.layer.digest, entry = %name, kind = ?other, "skipping entry");
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
            tracing::debug!(layer = %self.layer.digest, entry = %name, "skipping aufs metadata");
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
                        format!("hard link target passes through {}", dir.display()),
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
        let lower = self
            .layer
            .lowers
            .iter()
            .map(|l| fs::symlink_metadata(l.join(rel)))
            .find_map(|m| m.ok())
            .filter(|m| m.is_dir());
        let (uid, gid, mode, mtime) = match lower {
            Some(m) => (m.uid(), m.gid(), m.mode(), Some(m.mtime())),
            None => (0, 0, 0o755, None),
        };
        fsutil::set_meta(&path, uid, gid, Some(mode), mtime).map_err(|e| self.io(name, e))
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
            layer: self.layer.digest.to_string(),
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
            layer: self.layer.digest.to_string(),
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
