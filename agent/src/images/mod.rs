//! The image store: content-addressed blobs, OCI layout/archive import, safe layer
//! unpack, container root filesystems (overlay, or a copy when overlay cannot mount),
//! leases, garbage collection and registry pulls (`pull`). It never runs anything from
//! an image.
//!
//! Image content is untrusted: every blob is sha256-checked when it enters the store
//! and again when a layer is unpacked; metadata reads are capped at 4 MiB; layer entries
//! that would land outside their layer are refused (see `unpack`).
//!
//! ```text
//! <state>/images/
//!   blobs/sha256/<hex>   blobs, named by their verified sha256 (write temp, fsync, rename)
//!   layers/<hex>/        one unpacked layer per layer blob digest, shared by all images
//!                        and containers (built in .tmp-*, then renamed into place)
//!   refs.json            reference → manifest digest (a `record` envelope, atomic write)
//!   usage.json           reference → last pull, last use (`usage`)
//!   leases/<lease_id>    one per prepared rootfs: the layers it uses (GC keeps them)
//!   ingest/              pull downloads: <hex>.partial + <hex>.offset, verified blobs/
//!   tmp/                 import staging (.tmp-<pid>-*; GC drops those of dead pids)
//!   lock                 flock: import commit, remove, GC and lease changes serialize
//! ```
//!
//! Contract: [`ImageStore::import`] is all-or-nothing (refs, blobs and layers are
//! unchanged on any error) and unpacks layers eagerly, so a bad layer is refused at
//! import and an imported image can start offline. Call [`ImageStore::prepare_rootfs`]
//! before creating a container and [`ImageStore::release_rootfs`] after deleting it;
//! between the two, [`ImageStore::remove`] untags the image but keeps its layers.

mod blobs;
mod digest;
mod error;
mod extract;
mod fsutil;
mod gc;
mod import;
mod lease;
mod merge;
mod naming;
mod oci;
mod platform;
pub mod pull;
mod record;
mod reference;
mod rootfs;
mod source;
mod store;
mod unpack;
mod usage;
mod zstd;

use serde::{Deserialize, Serialize};

pub use digest::Digest;
pub use error::ImageError;
pub use gc::GcReport;
pub use platform::Platform;
pub use reference::normalize_reference;
pub use store::ImageStore;
pub use usage::{PruneReport, Usage};

/// One tagged image in the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSummary {
    /// Normalized reference (`busybox:latest`, `name@sha256:..`).
    pub reference: String,
    /// The platform manifest's digest (never an index's).
    pub manifest_digest: String,
    /// OCI architecture from the image config (`amd64`, `arm64`).
    pub architecture: String,
    /// Manifest + config + compressed layer blobs, in bytes.
    pub size_bytes: u64,
}

/// An image ready to run on this machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedImage {
    /// The store key it was found under (normalized).
    pub reference: String,
    pub manifest_digest: String,
    /// Layer blob digests, bottom first (the names under `layers/`).
    pub layers: Vec<String>,
    /// The config's diff_ids (uncompressed tar digests), bottom first.
    pub diff_ids: Vec<String>,
    pub defaults: ImageDefaults,
}

/// What the image config says a container runs by default; the task definition
/// overrides each field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDefaults {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// `KEY=value` entries, in image order.
    pub env: Vec<String>,
    /// `None` when the image sets none (or an empty string).
    pub working_dir: Option<String>,
    /// `None` when the image sets none (or an empty string).
    pub user: Option<String>,
}
