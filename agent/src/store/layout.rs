//! Paths inside the state directory. The only place that knows the layout.

use std::path::{Path, PathBuf};

/// The state directory whose agent owns skerry's plain host-wide names.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/skerry";

/// Paths under one state directory.
#[derive(Debug, Clone)]
pub struct StateLayout {
    root: PathBuf,
}

impl StateLayout {
    /// A layout rooted at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The state directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What makes this agent's host-wide names its own: empty for the default state
    /// directory (`/var/lib/skerry`), else `-` and eight hex digits of the directory's
    /// FNV-1a hash. Several agents (state directories) may share a host; each one's
    /// cgroup parent, nf_tables table and namespace directory carry this suffix.
    pub fn host_suffix(&self) -> String {
        if self.root == Path::new(DEFAULT_STATE_DIR) {
            return String::new();
        }
        // FNV-1a, 32 bits: stable across builds, unlike std's hasher. The key is the
        // one the bridge used before the suffix moved here, so names stay the same.
        let mut h: u32 = 0x811c_9dc5;
        for b in format!("{}\0\0", self.root.display()).bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        format!("-{h:08x}")
    }

    /// The cgroup every task's cgroup sits under, in each hierarchy: `skerry` for the
    /// default state directory, `skerry-<hash>` for any other.
    pub fn cgroup_parent(&self) -> String {
        format!("skerry{}", self.host_suffix())
    }

    /// The image store.
    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }

    /// All task directories.
    pub fn tasks(&self) -> PathBuf {
        self.root.join("tasks")
    }

    /// One task's directory.
    pub fn task(&self, task_id: &str) -> PathBuf {
        self.tasks().join(task_id)
    }

    /// One container's directory inside its task.
    pub fn container(&self, task_id: &str, container: &str) -> PathBuf {
        self.task(task_id).join("containers").join(container)
    }

    /// Shared-scope named volumes (`dockerVolumeConfiguration` scope `shared`).
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// libcontainer's state root (it adds one directory per container id).
    pub fn libcontainer(&self) -> PathBuf {
        self.root.join("libcontainer")
    }

    /// The local secret store (see [`crate::secrets`]).
    pub fn secrets(&self) -> PathBuf {
        self.root.join("secrets")
    }

    /// The outbox of reports (see [`crate::store::outbox`]).
    pub fn outbox(&self) -> PathBuf {
        self.root.join("outbox")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_state_dir_owns_the_plain_names_and_others_get_a_stable_suffix() {
        let default = StateLayout::new(DEFAULT_STATE_DIR);
        assert_eq!(default.host_suffix(), "");
        assert_eq!(default.cgroup_parent(), "skerry");
        let other = StateLayout::new("/tmp/gw-a/state");
        let suffix = other.host_suffix();
        assert_eq!(suffix.len(), 9, "{suffix}");
        assert!(suffix.starts_with('-'), "{suffix}");
        assert_eq!(other.cgroup_parent(), format!("skerry{suffix}"));
        assert_eq!(suffix, StateLayout::new("/tmp/gw-a/state").host_suffix());
        assert_ne!(suffix, StateLayout::new("/tmp/gw-b/state").host_suffix());
        // The bridge named its table and namespace directory from the veth hash of
        // (state dir, "", ""): the suffix keeps those names across the upgrade.
        let veth = crate::net::tasknet::veth_name(Path::new("/tmp/gw-a/state"), "", "");
        assert_eq!(suffix[1..], veth[3..]);
    }
}
