//! The state directory: where everything the agent knows lives, so that a crash,
//! `kill -9` or a reboot loses nothing. Owns the layout below and atomic writes.
//!
//! ```text
//! <state_dir>/
//!   images/        content-addressed image store (see `images`)
//!   tasks/<id>/    one task: task.json record, containers/<name>/{bundle,logs,monitor}
//!   libcontainer/  libcontainer's own container state, one dir per container id
//!   desired/       standalone mode: task definitions to keep running
//!   outbox/        reports (events) in order, until delivered (see `outbox`)
//!   secrets/       0700: one 0600 file per local secret (see `crate::secrets`)
//!   agent.lock     flock held by the one `skerry agent` of this directory
//! ```

pub mod atomic;
pub mod layout;
pub mod outbox;

pub use atomic::{sync_dir, write_atomic, write_atomic_mode};
pub use layout::StateLayout;
