//! A task: a set of containers from one task definition, started in `dependsOn` order
//! and stopped in reverse, with a durable record. Used by `skerry run`, `skerry stop`
//! and the standalone supervisor; the runtime does the per-container work.
//!
//! ```text
//! tasks/<task-id>/task.json   TaskRecord (atomic write)
//! tasks/<task-id>/containers/ one directory per container (see runtime)
//! tasks/<task-id>/volumes/    task-scoped volumes
//! ```

mod lifecycle;
mod order;
mod record;

pub use lifecycle::{start_task, stop_task, task_states, TaskError, TaskOutcome};
pub use order::{check_supported, start_order};
pub use record::{list_tasks, new_task_id, Owner, TaskRecord, TASK_FILE};
