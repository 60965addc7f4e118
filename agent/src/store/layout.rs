//! Paths inside the state directory. The only place that knows the layout.

use std::path::{Path, PathBuf};

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
