//! One container's life, through libcontainer, behind a narrow API.
//!
//! The agent side ([`Runtime`]) prepares a container directory (rootfs from the image
//! store, OCI bundle, generated /etc files, `launch.json`) and then starts a
//! per-container monitor process ([`monitor`]); only monitors call libcontainer. The
//! agent and monitors share nothing but files in the container directory (see
//! [`record`]), so either side may crash and the other carries on.

pub mod bundle;
pub mod caps;
pub mod cgroup;
pub mod devfilter;
pub mod devices;
pub mod etcfiles;
pub mod exec;
mod handle;
pub mod init;
pub mod journal;
pub mod logfile;
pub mod monitor;
pub mod record;
pub mod seccomp;
pub mod secret_env;
pub mod user;
pub mod volumes;

use std::path::{Path, PathBuf};

pub use handle::{ContainerState, Runtime, RuntimeConfig, TaskNamespaces};
pub use record::{ExitReason, ExitRecord, MonitorRecord};

/// The monitor's launch plan inside a container directory.
pub const LAUNCH_FILE: &str = "launch.json";
/// The monitor's identity record.
pub const MONITOR_FILE: &str = "monitor.json";
/// The exit record.
pub const EXIT_FILE: &str = "exit.json";
/// The monitor's own diagnostics.
pub const MONITOR_LOG: &str = "monitor.log";

/// Errors of the runtime, each naming the container, path or call involved.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{0}: {1}")]
    Sys(&'static str, nix::errno::Errno),
    /// A record file is malformed.
    #[error("{0}: {1}")]
    Record(PathBuf, String),
    /// The OCI spec could not be built from the task definition.
    #[error("{0}")]
    Spec(String),
    /// The task's `user` could not be resolved.
    #[error("user: {0}")]
    User(String),
    /// libcontainer refused or failed.
    #[error("container {0}: {1}")]
    Libcontainer(String, String),
    /// The image store failed.
    #[error(transparent)]
    Image(#[from] crate::images::ImageError),
    /// The monitor could not start the container.
    #[error("container {0} failed to start: {1}")]
    Start(String, String),
    /// Bridge networking could not be set up or torn down.
    #[error("task {0}: bridge network: {1}")]
    Net(String, String),
    /// The container is not in a state that allows the operation.
    #[error("container {0}: {1}")]
    State(String, String),
}

impl RuntimeError {
    /// An I/O error at `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        RuntimeError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
