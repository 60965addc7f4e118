//! Resumable blob downloads (the containerd model): a blob streams into
//! `ingest/<hex>.partial`; every [`SYNC_EVERY`] bytes, and whenever an attempt ends,
//! the file is fsynced and its length recorded in `ingest/<hex>.offset` (a `record`
//! envelope). The next attempt (after a cut, or after the agent restarted) truncates
//! the file to the recorded offset, re-hashes that prefix and asks for the rest with
//! `Range: bytes=<offset>-`. A 206 answer is appended; a 200 answer (the registry
//! ignored Range) restarts the blob from zero. A complete blob is sha256-checked,
//! fsynced and renamed to `ingest/blobs/<hex>`; one that fails the check is deleted
//! and the caller fetches it again. Nothing here unpacks anything.
//!
//! ```text
//! <images>/ingest/
//!   <hex>.partial      the bytes received so far
//!   <hex>.offset       {"magic":"skerry-ingest",..,"body":{"size":S,"offset":N}}
//!   blobs/<hex>        verified, complete blobs waiting for the pull's commit
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::client::Registry;
use super::PullError;
use crate::images::blobs::BlobDir;
use crate::images::digest::Digest;
use crate::images::error::{ImageError, IoContext};
use crate::images::record;
use crate::store::sync_dir;

const OFFSET_MAGIC: &str = "skerry-ingest";
/// Bytes between two fsync + offset records.
pub(crate) const SYNC_EVERY: u64 = 1 << 20;

#[derive(Serialize, Deserialize)]
struct OffsetRecord {
    size: u64,
    offset: u64,
}

/// The ingest directory of one store.
#[derive(Clone, Debug)]
pub(crate) struct Ingest {
    dir: PathBuf,
    pub(crate) done: BlobDir,
}

/// One blob to fetch.
pub(crate) struct Wanted<'a> {
    pub(crate) digest: &'a Digest,
    pub(crate) size: u64,
}

impl Ingest {
    pub(crate) fn open(dir: PathBuf) -> Result<Self, ImageError> {
        let done = BlobDir::new(dir.join("blobs"));
        fs::create_dir_all(done.dir()).at(done.dir())?;
        Ok(Self { dir, done })
    }

    fn partial(&self, d: &Digest) -> PathBuf {
        self.dir.join(format!("{}.partial", d.hex()))
    }

    fn offset_path(&self, d: &Digest) -> PathBuf {
        self.dir.join(format!("{}.offset", d.hex()))
    }

    /// Bytes of `d` on disk: the whole size if complete, else the recorded offset.
    pub(crate) fn on_disk(&self, d: &Digest) -> u64 {
        if let Some(size) = self.done.size(d) {
            return size;
        }
        self.recorded(d).map_or(0, |r| r.offset)
    }

    fn recorded(&self, d: &Digest) -> Option<OffsetRecord> {
        record::load(&self.offset_path(d), OFFSET_MAGIC)
            .ok()
            .flatten()
    }

    /// Forgets everything about `d` (partial, record and complete copy).
    pub(crate) fn discard(&self, d: &Digest) {
        for path in [self.partial(d), self.offset_path(d), self.done.path(d)] {
            let _ = fs::remove_file(path);
        }
    }

    fn save_offset(
        &self,
        d: &Digest,
        file: &File,
        size: u64,
        offset: u64,
    ) -> Result<(), ImageError> {
        let path = self.partial(d);
        file.sync_data().at(&path)?;
        record::save(
            &self.offset_path(d),
            OFFSET_MAGIC,
            &OffsetRecord { size, offset },
        )
    }

    /// One attempt at making `want` complete in `done`. `on_bytes(on_disk)` is called
    /// as bytes land. Returns the bytes received over the network.
    pub(crate) async fn fetch(
        &self,
        reg: &Registry,
        want: &Wanted<'_>,
        cancel: &AtomicBool,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, PullError> {
        let d = want.digest;
        if self.done.size(d) == Some(want.size) {
            return Ok(0);
        }
        let path = self.partial(d);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .at(&path)?;
        let len = file.metadata().at(&path)?.len();
        let mut offset = match self.recorded(d) {
            Some(r) if r.size == want.size => r.offset.min(len),
            _ => 0,
        };
        file.set_len(offset).at(&path)?;
        let mut hasher = hash_prefix(&mut file, offset, &path)?;
        on_bytes(offset);
        let url = reg.blob_url(d.as_str());
        let mut received = 0u64;
        if offset < want.size {
            let resp = reg.get(&url, None, Some(offset)).await?;
            match resp.status().as_u16() {
                206 if offset > 0 && content_range_starts_at(&resp, offset) => {}
                200 | 206 => {
                    if offset > 0 {
                        tracing::warn!(blob = %d, offset, status = resp.status().as_u16(), "registry ignored the Range request: blob restarts from zero");
                    }
                    offset = 0;
                    file.set_len(0).at(&path)?;
                    hasher = Sha256::new();
                }
                404 => {
                    return Err(PullError::BadAnswer {
                        url,
                        reason: "blob unknown to the registry (404)".to_owned(),
                    })
                }
                _ => return Err(reg.status_error(resp, &url).await),
            }
            file.seek(SeekFrom::Start(offset)).at(&path)?;
            let result = self
                .stream(
                    reg,
                    resp,
                    &url,
                    want,
                    &mut file,
                    &mut hasher,
                    &mut offset,
                    &mut received,
                    cancel,
                    on_bytes,
                )
                .await;
            if let Err(e) = result {
                if matches!(e, PullError::BadAnswer { .. }) {
                    self.discard(d);
                } else if offset > 0 {
                    // Keep what arrived for the next attempt, even after a disk error.
                    let _ = self.save_offset(d, &file, want.size, offset);
                }
                return Err(e);
            }
            if offset < want.size {
                self.save_offset(d, &file, want.size, offset)?;
                return Err(PullError::Network {
                    url,
                    reason: format!("answer ended after {offset} of {} bytes", want.size),
                });
            }
        }
        let actual = Digest::from_hex(&hex::encode(hasher.finalize()))?;
        if &actual != d {
            self.discard(d);
            return Err(PullError::BlobMismatch {
                digest: d.to_string(),
                url,
                actual: actual.to_string(),
            });
        }
        file.sync_all().at(&path)?;
        drop(file);
        fs::rename(&path, self.done.path(d)).at(&path)?;
        let _ = fs::remove_file(self.offset_path(d));
        sync_dir(self.done.dir()).at(self.done.dir())?;
        sync_dir(&self.dir).at(&self.dir)?;
        Ok(received)
    }

    #[allow(clippy::too_many_arguments)]
    async fn stream(
        &self,
        reg: &Registry,
        mut resp: reqwest::Response,
        url: &str,
        want: &Wanted<'_>,
        file: &mut File,
        hasher: &mut Sha256,
        offset: &mut u64,
        received: &mut u64,
        cancel: &AtomicBool,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<(), PullError> {
        let path = self.partial(want.digest);
        let mut since_sync = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|e| reg.network(url, &e))? {
            if cancel.load(Ordering::Relaxed) {
                return Err(PullError::Cancelled {
                    reference: want.digest.to_string(),
                });
            }
            *received += chunk.len() as u64;
            if *offset + chunk.len() as u64 > want.size {
                return Err(PullError::BadAnswer {
                    url: url.to_owned(),
                    reason: format!("more than the {} bytes its descriptor says", want.size),
                });
            }
            file.write_all(&chunk).at(&path)?;
            hasher.update(&chunk);
            *offset += chunk.len() as u64;
            since_sync += chunk.len() as u64;
            if since_sync >= SYNC_EVERY {
                self.save_offset(want.digest, file, want.size, *offset)?;
                since_sync = 0;
            }
            on_bytes(*offset);
        }
        Ok(())
    }
}

/// True if a 206's `Content-Range` is `bytes <offset>-...`.
fn content_range_starts_at(resp: &reqwest::Response, offset: u64) -> bool {
    resp.headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|v| v.trim().parse::<u64>().ok())
        == Some(offset)
}

/// Hashes the first `len` bytes of `file` (the prefix kept from earlier attempts).
fn hash_prefix(file: &mut File, len: u64, path: &Path) -> Result<Sha256, ImageError> {
    let mut hasher = Sha256::new();
    file.seek(SeekFrom::Start(0)).at(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want]).at(path)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hasher)
}
