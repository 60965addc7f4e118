//! `PullError`: every way a registry pull fails, each naming the registry, URL, blob or
//! file involved, and whether trying again later can help ([`PullError::is_transient`]).

use std::path::PathBuf;

use crate::images::ImageError;

/// A pull failure. Messages are lowercase, without a final period.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The image store refused something (platform, layer content, store files).
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The connection failed, timed out or broke off.
    #[error("{url}: {reason}")]
    Network { url: String, reason: String },
    /// The system clock is before the agent's time floor: TLS certificates cannot be
    /// checked until it is set.
    #[error("system clock not set (it says {now_secs} s after 1970, before {floor_secs}): cannot check TLS certificates of {registry}")]
    ClockNotSet {
        registry: String,
        now_secs: u64,
        floor_secs: u64,
    },
    /// The registry answered with an error status.
    #[error("{url}: registry answered {status}{}", detail(body))]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    /// The registry refused our credentials (also after logging in again).
    #[error(
        "{registry}: access denied ({status}) for {repository}{}",
        detail(hint)
    )]
    Denied {
        registry: String,
        repository: String,
        status: u16,
        hint: String,
    },
    /// The manifest (tag or digest) does not exist.
    #[error("{reference}: manifest unknown to the registry ({url})")]
    ManifestUnknown { reference: String, url: String },
    /// An answer larger than its limit.
    #[error("{url}: answer larger than the {limit} byte limit")]
    TooLarge { url: String, limit: u64 },
    /// An answer that is not what was asked for.
    #[error("{url}: {reason}")]
    BadAnswer { url: String, reason: String },
    /// A blob whose sha256 is not its digest (discarded; fetched again).
    #[error("blob {digest} from {url}: content is {actual}, discarded")]
    BlobMismatch {
        digest: String,
        url: String,
        actual: String,
    },
    /// Credentials that cannot be used.
    #[error("{path}: {reason}")]
    Credentials { path: PathBuf, reason: String },
    /// Not enough free space for the pull.
    #[error("not enough free space in {path}: the pull needs about {needed} bytes, {available} are free")]
    NoSpace {
        path: PathBuf,
        needed: u64,
        available: u64,
    },
    /// The HTTP client could not be built (bad CA file).
    #[error("registry client for {registry}: {reason}")]
    Client { registry: String, reason: String },
    /// The pull was cancelled (superseded, or the agent stops).
    #[error("pull of {reference} cancelled")]
    Cancelled { reference: String },
    /// Retries were given up after this many attempts in a row without progress.
    #[error("{last} (gave up after {attempts} attempts without progress)")]
    GaveUp {
        attempts: u32,
        #[source]
        last: Box<PullError>,
    },
}

fn detail(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

impl PullError {
    /// True if the same pull may succeed later without anyone changing anything:
    /// network errors, 5xx and 429 answers, a blob damaged in transit.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Network { .. } | Self::BlobMismatch { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }

    /// True if the error says the disk is full (ENOSPC, EDQUOT).
    pub fn is_disk_full(&self) -> bool {
        let errno = match self {
            Self::Image(ImageError::Io { source, .. } | ImageError::Unpack { source, .. }) => {
                source.raw_os_error()
            }
            _ => None,
        };
        matches!(errno, Some(libc::ENOSPC) | Some(libc::EDQUOT))
            || matches!(self, Self::NoSpace { .. })
    }
}
