//! Content-addressed blobs: `blobs/sha256/<hex>`. A blob is written to a temporary file
//! while hashed, checked against its expected digest and only then renamed to its name:
//! a mismatch never leaves a blob whose content differs from its name. Staged blobs are
//! not flushed (most of an archive may be for other platforms); `adopt` fsyncs a blob
//! as it enters the store. Reads of metadata blobs are size-capped and re-verified.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::digest::{Digest, HashingReader};
use super::error::{ImageError, IoContext};
use super::fsutil::temp_name;
use super::record::read_limited;
use crate::store::sync_dir;

/// One directory of blobs named by their sha256 hex (the store's, or an import's staging).
#[derive(Clone, Debug)]
pub(crate) struct BlobDir {
    dir: PathBuf,
}

impl BlobDir {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// The blob's size if present.
    pub(crate) fn size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.path(digest))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Reads a whole blob of at most `limit` bytes and checks its digest.
    pub(crate) fn read_verified(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, ImageError> {
        let path = self.path(digest);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ImageError::MissingBlob {
                    digest: digest.to_string(),
                    path: self.dir.clone(),
                })
            }
            Err(e) => return Err(e).at(&path),
        };
        let bytes = read_limited(file, limit, &path)?;
        let actual = Digest::of_bytes(&bytes);
        if &actual != digest {
            return Err(mismatch(&path, digest, &actual));
        }
        Ok(bytes)
    }

    /// Streams `reader` into this directory as blob `digest`, refusing it (and storing
    /// nothing) if its sha256 differs or it exceeds `limit`. `origin` names the source
    /// in errors. Returns the blob's size.
    pub(crate) fn write_verified(
        &self,
        reader: impl Read,
        digest: &Digest,
        limit: Option<u64>,
        origin: &Path,
    ) -> Result<u64, ImageError> {
        let tmp = self.dir.join(temp_name(digest.hex()));
        let result = self.write_tmp(reader, digest, limit, origin, &tmp);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn write_tmp(
        &self,
        reader: impl Read,
        digest: &Digest,
        limit: Option<u64>,
        origin: &Path,
        tmp: &Path,
    ) -> Result<u64, ImageError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .at(tmp)?;
        let cap = limit.map_or(u64::MAX, |l| l + 1);
        let mut hashing = HashingReader::new(reader.take(cap));
        io::copy(&mut hashing, &mut file).at(origin)?;
        let (actual, size) = hashing.finish().at(origin)?;
        if let Some(limit) = limit.filter(|&l| size > l) {
            return Err(ImageError::TooLarge {
                path: origin.to_path_buf(),
                limit,
            });
        }
        if &actual != digest {
            return Err(mismatch(origin, digest, &actual));
        }
        file.flush().at(tmp)?;
        fs::rename(tmp, self.path(digest)).at(tmp)?;
        Ok(size)
    }

    /// Moves a verified blob file from another directory on the same filesystem here,
    /// flushing it first (call [`sync`](Self::sync) after the last one).
    pub(crate) fn adopt(&self, from: &Path, digest: &Digest) -> Result<(), ImageError> {
        File::open(from).and_then(|f| f.sync_all()).at(from)?;
        fs::rename(from, self.path(digest)).at(from)
    }

    /// fsyncs the directory (after writes or renames into it).
    pub(crate) fn sync(&self) -> Result<(), ImageError> {
        sync_dir(&self.dir).at(&self.dir)
    }
}

fn mismatch(path: &Path, expected: &Digest, actual: &Digest) -> ImageError {
    ImageError::DigestMismatch {
        path: path.to_path_buf(),
        expected: expected.to_string(),
        actual: actual.to_string(),
    }
}
