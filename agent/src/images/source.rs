//! Import sources. An OCI layout directory is read in place. An OCI archive (a tar of a
//! layout, plain or gzip) is streamed once into a staging directory: only `oci-layout`,
//! `index.json` and `blobs/sha256/<hex>` are taken (other entries are ignored, none is
//! ever written under its own name), and each blob is hash-checked while written.
//! A truncated entry is an error, not a short file.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use flate2::bufread::MultiGzDecoder;
use oci_spec::image::ImageIndex;
use tar::EntryType;

use super::blobs::BlobDir;
use super::digest::{is_sha256_hex, Digest};
use super::error::{ImageError, IoContext};
use super::oci;
use super::record::{read_limited, METADATA_LIMIT};

const LAYOUT_FILE_LIMIT: u64 = 4096;

/// An OCI layout ready to import from.
pub(crate) struct Layout {
    /// What the user named (for error messages).
    pub(crate) origin: PathBuf,
    /// `blobs/sha256` of the layout.
    pub(crate) blobs: BlobDir,
    /// True if every blob was already hash-checked (staged from an archive).
    pub(crate) verified: bool,
    pub(crate) index: ImageIndex,
}

/// Opens `path` (layout directory or archive), staging an archive under `staging`.
pub(crate) fn open(path: &Path, staging: &Path) -> Result<Layout, ImageError> {
    let meta = fs::metadata(path).at(path)?;
    let (root, verified) = if meta.is_dir() {
        (path.to_path_buf(), false)
    } else {
        let root = staging.join("layout");
        stage_archive(path, &root)?;
        (root, true)
    };
    let not_layout = |reason: String| ImageError::NotOciLayout {
        path: path.to_path_buf(),
        reason,
    };
    let layout_file = root.join("oci-layout");
    let header = match File::open(&layout_file) {
        Ok(f) => read_limited(f, LAYOUT_FILE_LIMIT, &layout_file)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(not_layout("no oci-layout file".to_owned()))
        }
        Err(e) => return Err(e).at(&layout_file),
    };
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| not_layout(format!("oci-layout: {e}")))?;
    if header
        .get("imageLayoutVersion")
        .and_then(|v| v.as_str())
        .is_none()
    {
        return Err(not_layout(
            "oci-layout has no imageLayoutVersion".to_owned(),
        ));
    }
    let index_file = root.join("index.json");
    let index = match File::open(&index_file) {
        Ok(f) => read_limited(f, METADATA_LIMIT, &index_file)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(not_layout("no index.json".to_owned()))
        }
        Err(e) => return Err(e).at(&index_file),
    };
    Ok(Layout {
        origin: path.to_path_buf(),
        blobs: BlobDir::new(root.join("blobs").join("sha256")),
        verified,
        index: oci::parse_index(&index, &index_file)?,
    })
}

fn stage_archive(archive_path: &Path, root: &Path) -> Result<(), ImageError> {
    let malformed = |reason: String| ImageError::Malformed {
        path: archive_path.to_path_buf(),
        what: "OCI archive",
        reason,
    };
    let blobs = BlobDir::new(root.join("blobs").join("sha256"));
    fs::create_dir_all(blobs.dir()).at(blobs.dir())?;
    let mut reader = BufReader::new(File::open(archive_path).at(archive_path)?);
    let gzip = reader
        .fill_buf()
        .at(archive_path)?
        .starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().map_err(|e| malformed(e.to_string()))? {
        let mut entry = entry.map_err(|e| malformed(e.to_string()))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(parts) = layout_path(
            &entry
                .path()
                .map_err(|e| malformed(format!("{name}: {e}")))?,
        ) else {
            continue;
        };
        let origin = PathBuf::from(format!("{}!{name}", archive_path.display()));
        let kind = entry.header().entry_type();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        match (parts.as_slice(), kind) {
            (["oci-layout" | "index.json"], EntryType::Regular | EntryType::Continuous) => {
                let size = entry.size();
                let bytes = read_limited(Exact::new(&mut entry, size), METADATA_LIMIT, &origin)?;
                let dest = root.join(parts[0]);
                fs::write(&dest, bytes).at(&dest)?;
            }
            (["blobs", "sha256", hex], EntryType::Regular | EntryType::Continuous)
                if is_sha256_hex(hex) =>
            {
                let size = entry.size();
                blobs.write_verified(
                    Exact::new(&mut entry, size),
                    &Digest::from_hex(hex)?,
                    None,
                    &origin,
                )?;
            }
            (["blobs", "sha256", hex], EntryType::Link) if is_sha256_hex(hex) => {
                // tar stores identical files once: the target must be a staged blob.
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .and_then(|l| layout_path(&l))
                    .and_then(|p| (p.len() == 3 && is_sha256_hex(&p[2])).then(|| p[2].clone()))
                    .ok_or_else(|| malformed(format!("{name}: hard link outside blobs/sha256")))?;
                let source = blobs.dir().join(&target);
                let file = File::open(&source)
                    .map_err(|_| malformed(format!("{name}: hard link to absent {target}")))?;
                blobs.write_verified(file, &Digest::from_hex(hex)?, None, &origin)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The normal components of an archive path (`./` dropped), or `None` if it has others.
fn layout_path(path: &Path) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?.to_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts)
}

/// Fails with `UnexpectedEof` if the inner reader ends before `remaining` bytes.
struct Exact<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, size: u64) -> Self {
        Self {
            inner,
            remaining: size,
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive is truncated",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}
