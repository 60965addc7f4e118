//! The durable record of one task: its checked definition and who owns it.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};
use skerry_core::spec::TaskDefinition;

use crate::runtime::{record, RuntimeError};
use crate::store::StateLayout;

/// The record's file name inside the task directory.
pub const TASK_FILE: &str = "task.json";

/// Who started the task and is responsible for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Owner {
    /// A foreground `skerry run` (its pid and start ticks).
    Run { pid: i32, start_ticks: u64 },
    /// The agent's supervisor (standalone desired state `source`).
    Agent { source: String },
}

/// One task's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task_id: String,
    pub definition: TaskDefinition,
    /// sha256 of the task definition as given, to notice a changed definition.
    pub source_digest: String,
    pub created_at_ms: u64,
    pub owner: Owner,
}

impl TaskRecord {
    /// Saves the record atomically into its task directory.
    pub fn save(&self, layout: &StateLayout) -> Result<(), RuntimeError> {
        let dir = layout.task(&self.task_id);
        fs::create_dir_all(&dir).map_err(|e| RuntimeError::io(&dir, e))?;
        record::save(&dir.join(TASK_FILE), self)
    }

    /// Loads a task's record; `Ok(None)` when there is none.
    pub fn load(layout: &StateLayout, task_id: &str) -> Result<Option<Self>, RuntimeError> {
        record::load(&layout.task(task_id).join(TASK_FILE))
    }

    /// Whether a `skerry run` owner is still alive.
    pub fn owner_alive(&self) -> bool {
        match &self.owner {
            // A zombie has finished (its parent just has not reaped it yet).
            Owner::Run { pid, start_ticks } => {
                record::process_start_ticks(*pid) == Some(*start_ticks) && !record::is_zombie(*pid)
            }
            Owner::Agent { .. } => false,
        }
    }
}

/// All task ids with a directory, sorted.
pub fn list_tasks(layout: &StateLayout) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(layout.tasks())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    ids.sort();
    ids
}

/// A fresh task id: `<family>-<8 hex>` from the kernel's random source.
pub fn new_task_id(family: &str) -> String {
    let mut bytes = [0u8; 4];
    let ok = fs::File::open(Path::new("/dev/urandom"))
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !ok {
        let t = record::now_ms() ^ u64::from(std::process::id());
        bytes = (t as u32).to_le_bytes();
    }
    format!("{family}-{}", hex::encode(bytes))
}
