//! Building blocks of `bridge` networking, over netlink only (no `ip`, no `nft`, no
//! helper process): network namespaces kept by bind mounts ([`netns`]), links,
//! addresses and routes ([`rtnl`]), the bridge/veth plumbing of one container
//! ([`plumb`]) and skerry's nf_tables NAT table ([`nft`]). Address and host-port choices are pure and live in
//! `skerry_core::bridge`.
//!
//! [`bridge`] puts them together for the runtime: a task's allocation
//! ([`tasknet`], host-wide [`claims`]), attach, release and the start-up sweep.

pub mod bridge;
pub mod claims;
pub mod netns;
pub mod nft;
pub mod plumb;
pub mod rtnl;
pub mod tasknet;

use std::path::{Path, PathBuf};

/// Errors of network setup, each naming the call or path involved.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: {1}")]
    Sys(&'static str, nix::errno::Errno),
    #[error("netlink {0}: {1}")]
    Netlink(&'static str, std::io::Error),
    #[error("netlink {0}: cannot decode the reply: {1}")]
    Decode(&'static str, String),
    #[error("no network link named {0}")]
    NoLink(String),
    #[error("the kernel has no {0} support (module not loaded?)")]
    MissingFeature(&'static str),
    #[error("{0}: {1}")]
    Record(PathBuf, String),
    #[error("host port {0} is taken by {1}")]
    PortTaken(String, String),
    #[error("host port {0} is in use on this host (something else is bound to it)")]
    PortInUse(String),
    #[error("{0}")]
    Exhausted(String),
}

impl NetError {
    /// An I/O error at `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        NetError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
