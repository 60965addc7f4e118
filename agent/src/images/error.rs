//! `ImageError`: every way the image store can fail, each naming the reference, path,
//! blob, layer or tar entry involved, so the operator can act without a debugger.

use std::io;
use std::path::{Path, PathBuf};

/// An image store failure. Messages are lowercase, without a final period.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A filesystem operation failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A reference that is not `name[:tag][@sha256:hex]`.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        reference: String,
        reason: &'static str,
    },
    /// The store holds no image under this reference.
    #[error("image {reference} not found in the store")]
    NotFound { reference: String },
    /// A digest that is not `sha256:` and 64 lowercase hex digits.
    #[error("invalid or unsupported digest {digest:?} (only sha256 is supported)")]
    InvalidDigest { digest: String },
    /// Content whose sha256 differs from the digest it is stored or referenced under.
    #[error("{path}: content digest is {actual}, expected {expected}")]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// A blob whose size differs from its descriptor.
    #[error("blob {digest}: size is {actual} bytes, its descriptor says {expected}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    /// A manifest, index, config or store file over its read limit.
    #[error("{path}: larger than the {limit} byte limit")]
    TooLarge { path: PathBuf, limit: u64 },
    /// A blob the image needs is absent from the source (or the store).
    #[error("blob {digest} is missing from {path}")]
    MissingBlob { digest: String, path: PathBuf },
    /// The import source is neither an OCI layout directory nor an OCI archive.
    #[error("{path}: not an OCI image layout: {reason}")]
    NotOciLayout { path: PathBuf, reason: String },
    /// JSON that does not parse as the expected OCI document.
    #[error("{path}: malformed {what}: {reason}")]
    Malformed {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    /// A manifest, config or layer media type skerry does not handle (e.g. zstd).
    #[error("blob {digest}: unsupported media type {media_type}")]
    UnsupportedMediaType { digest: String, media_type: String },
    /// A single-platform image built for another machine.
    #[error("image {reference} is {image}, this machine is {host}")]
    WrongPlatform {
        reference: String,
        image: String,
        host: String,
    },
    /// A multi-platform image with no entry for this machine.
    #[error("image {reference} has no manifest for linux/{host} (it has: {available})")]
    NoMatchingPlatform {
        reference: String,
        host: String,
        available: String,
    },
    /// A `--platform` that is not `[linux/]arch[/variant]`.
    #[error("invalid platform {platform:?}: {reason}")]
    InvalidPlatform {
        platform: String,
        reason: &'static str,
    },
    /// The import source names no image this store can take.
    #[error("{path}: nothing to import: {reason}")]
    NothingToImport { path: PathBuf, reason: String },
    /// A layer entry that would land outside the layer root, or is otherwise unsafe.
    #[error("layer {layer}: refused entry {entry:?}: {reason}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: String,
    },
    /// An i/o error while unpacking one layer entry (or reading the layer stream).
    #[error("layer {layer}: entry {entry:?}: {source}")]
    Unpack {
        layer: String,
        entry: String,
        #[source]
        source: io::Error,
    },
    /// A store file (refs.json, a lease) with a bad magic, version or checksum.
    #[error("{path}: corrupt store file: {reason}")]
    CorruptFile { path: PathBuf, reason: String },
    /// A lease id that cannot safely become a file name.
    #[error("invalid lease id {lease_id:?}: use 1-128 of [A-Za-z0-9_.-], not starting with '.'")]
    InvalidLeaseId { lease_id: String },
    /// A rootfs that could not be unmounted.
    #[error("unmounting {path}: {source}")]
    Umount {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
}

/// Attaches a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T, ImageError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, ImageError> {
        self.map_err(|source| ImageError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn at(self, path: &Path) -> Result<T, ImageError> {
        self.map_err(|errno| ImageError::Io {
            path: path.to_path_buf(),
            source: io::Error::from(errno),
        })
    }
}
