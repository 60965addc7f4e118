//! Layer unpacking: one layer blob (gzip, zstd or plain tar, by magic) becomes
//! `layers/<blob hex>/`, a tree overlayfs can use as a lower dir. The tree is built in a
//! `.tmp-*` directory, flushed, and renamed into place, so a crash never leaves a half
//! layer under a real name. The blob digest and the config's diff_id are re-checked
//! while reading. Entry placement (the part that faces untrusted input) is `extract`.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use super::digest::{Digest, HashingReader};
use super::error::{ImageError, IoContext};
use super::extract::Extractor;
use super::fsutil::{self, TempTree};
use super::zstd::{self, ZstdReader};
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
    Zstd(Box<ZstdReader<R>>),
    Plain(R),
}

impl<R: BufRead> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Gzip(r) => r.read(buf),
            Self::Zstd(r) => r.read(buf),
            Self::Plain(r) => r.read(buf),
        }
    }
}

impl<R: BufRead> Decoded<R> {
    fn into_inner(self) -> R {
        match self {
            Self::Gzip(r) => r.into_inner(),
            Self::Zstd(r) => (*r).into_inner(),
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
    } else if magic.starts_with(&zstd::MAGIC) {
        Decoded::Zstd(Box::new(ZstdReader::new(buffered)))
    } else {
        Decoded::Plain(buffered)
    };
    let mut archive = tar::Archive::new(HashingReader::new(decoded));
    let mut extractor = Extractor::new(root, layer.digest, layer.lowers);
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
    extractor.finish()
}
